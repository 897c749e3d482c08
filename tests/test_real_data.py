"""Science on data we did not make: the public program 1512 NIRISS/SOSS frame.

The frame (tests/data/real/, see PROVENANCE.md) is the median rateints of a real SOSS
exposure; a CubeModel is built from it with a few integrations of added noise and the
header keywords calwebb writes (tests/real_frames.py).  The comparison traces come from
pastasoss at the frame's pupil-wheel position; "illuminated" columns are those where the
per-column profile fit is significant (S/N > min_snr) and pastasoss models the order:
order 1 x = 4-2043, order 2 x ~ 910-1810 (it leaves the array near x ~ 1810 and is too faint,
and overlapped by order 1's wing and a field star, bluewards of x ~ 900).
"""

import numpy as np
import pytest

from real_frames import SOSS_PWCPOS, soss_cube
from tso_steps import (
    Background2DStep,
    CentroidStep,
    JitterCorrectStep,
    MovingApertureStep,
    OptimalExtractStep,
    PixelTimingStep,
    TraceStep,
    TSOOutlierStep,
)
from tso_steps.trace.soss_prior import soss_prior_centres
from tso_steps.trace.step import measure_trace


@pytest.fixture(scope="module")
def cube():
    return soss_cube(nints=4, seed=11)


def _versus_pastasoss(center, order):
    truth = soss_prior_centres(SOSS_PWCPOS, order, center.size)
    d = center - truth
    ok = np.isfinite(d)
    return d[ok], np.flatnonzero(ok)


@pytest.fixture(scope="module")
def traces(cube):
    return {
        "prior": measure_trace(cube)[0],
        "spline": measure_trace(cube, soss_prior=False)[0],
        "cubic": measure_trace(cube, soss_prior=False, degree=3)[0],
    }


def test_soss_reference_traces_follow_the_real_curvature(traces):
    d1, cols1 = _versus_pastasoss(traces["prior"].center[0], 1)
    d2, cols2 = _versus_pastasoss(traces["prior"].center[1], 2)
    assert cols1.min() <= 10 and cols1.max() >= 2035  # order 1 across the whole array
    assert cols2.min() <= 950 and cols2.max() >= 1780
    # measured order 1: 0.43 px rms (seed 0), 0.64 px (seed 11), max 0.7-1.06 px; order 2:
    # 0.22 px rms; a global cubic (seed 0): 2.46 px rms, 11 px max
    assert np.sqrt(np.mean(d1**2)) < 0.7 and np.abs(d1).max() < 1.2
    assert np.sqrt(np.mean(d2**2)) < 0.3 and np.abs(d2).max() < 0.6
    c1, _ = _versus_pastasoss(traces["cubic"].center[0], 1)
    assert np.sqrt(np.mean(d1**2)) < 0.3 * np.sqrt(np.mean(c1**2))


@pytest.mark.xfail(
    strict=True,
    reason="issue 11 target not met: on this frame the measured traces sit +0.15 to +0.6 px "
    "(order 1) from pastasoss at the header PWCPOS, with every estimator tried",
)
def test_soss_reference_traces_agree_with_pastasoss_to_a_tenth_of_a_pixel(traces):
    for order in (1, 2):
        d, _ = _versus_pastasoss(traces["prior"].center[order - 1], order)
        assert np.sqrt(np.mean(d**2)) <= 0.1


def test_data_driven_spline_follows_the_real_curvature_without_a_prior(traces):
    d1, cols1 = _versus_pastasoss(traces["spline"].center[0], 1)
    c1, _ = _versus_pastasoss(traces["cubic"].center[0], 1)
    assert cols1.size > 2000
    # measured 0.71 px (seed 0) and 0.81 px (seed 11) rms, 1.8 px max (x ~ 500-1000); the
    # cubic: 2.46 px rms, 11 px max
    assert np.sqrt(np.mean(d1**2)) < 0.9 and np.abs(d1).max() < 2.0
    assert np.sqrt(np.mean(d1**2)) < 0.4 * np.sqrt(np.mean(c1**2))


@pytest.mark.parametrize("name", ["prior", "spline"])
def test_reference_traces_are_smooth_and_continuous(traces, name):
    for k in range(2):
        center = traces[name].center[k]
        lit = np.flatnonzero(np.isfinite(center))
        assert np.isfinite(center[lit[0] : lit[-1] + 1]).all()  # no holes inside the span
        curvature = np.abs(np.diff(center[lit], 2))
        assert curvature.max() < 0.07  # px per column^2 (the real order 1 has ~3e-4)


def test_without_pwcpos_the_step_falls_back_to_the_spline(caplog):
    model = soss_cube(nints=2, seed=3, pwcpos=None)
    result = TraceStep.call(model)
    assert any("without PWCPOS" in r.message for r in caplog.records)
    d1, _ = _versus_pastasoss(result.trace_center[0], 1)
    assert np.sqrt(np.mean(d1**2)) < 0.9


@pytest.mark.parametrize(
    "step",
    [
        PixelTimingStep,
        TSOOutlierStep,
        Background2DStep,
        TraceStep,
        JitterCorrectStep,
        OptimalExtractStep,
        CentroidStep,
        MovingApertureStep,
    ],
    ids=lambda s: s.class_alias,
)
def test_every_step_accepts_the_real_frame_or_refuses_it_clearly(cube, step):
    try:
        result = step.call(cube)
    except (TypeError, ValueError) as error:  # a refusal must say why (imaging-only steps)
        message = str(error)
        assert "tso_" in message or "imag" in message.lower(), message
        assert step in (CentroidStep, MovingApertureStep), message
        return
    assert result is not None
    np.testing.assert_array_equal(cube.data, soss_cube(nints=4, seed=11).data)  # input intact
