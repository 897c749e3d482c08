"""tso_trace: reference trace and per-integration positions against the simulator's truth."""

import warnings

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps.scoring import shift_cramer_rao
from tso_steps.simulate import Jitter, simulate_tso
from tso_steps.trace import (
    ImagingExposureError,
    TraceStep,
    dispersion_axis,
    expected_orders,
    reference_trace,
)
from tso_steps.vectors import get_vectors

CROPS = {
    "NRC_TSGRISM": (64, 256),
    "NIS_SOSS": (256, 256),
    "NRS_BRIGHTOBJ": (32, 256),
    "MIR_LRS-SLITLESS": (256, 72),
}


def _simulate(mode, nints=40, **kwargs):
    options = dict(ngroups=3, seed=2, products=("rateints",), crop=CROPS[mode])
    options.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=nints, **options)


def _cramer_rao(truth, rateints, integration, h=1e-3):
    """Cramer-Rao bound of the cross-dispersion position (shifts are (dx, dy))."""
    column = 1 if truth.dispersion_axis == 1 else 0
    return shift_cramer_rao(truth, rateints, integration, column, h)


def test_dispersion_axis_comes_from_exposure_type():
    assert dispersion_axis("NRC_TSGRISM") == 1
    assert dispersion_axis("NIS_SOSS") == 1
    assert dispersion_axis("NRS_BRIGHTOBJ") == 1
    assert dispersion_axis("MIR_LRS-SLITLESS") == 0
    assert expected_orders("NIS_SOSS", "SUBSTRIP256") == 2
    assert expected_orders("NIS_SOSS", "SUBSTRIP96") == 1
    with pytest.raises(ImagingExposureError, match="imaging"):
        dispersion_axis("NRC_TSIMAGE")


def test_imaging_exposure_is_rejected():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso("NRC_TSIMAGE", nints=3, ngroups=2, seed=1, products=("rateints",))
    with pytest.raises(ImagingExposureError):
        TraceStep().run(sim.rateints)


def test_single_integration_and_all_nan_are_rejected():
    sim = _simulate("NRS_BRIGHTOBJ", nints=2)
    one = datamodels.CubeModel(data=sim.rateints.data[:1].copy())
    one.update(sim.rateints)
    with pytest.raises(ValueError, match="at least 2"):
        TraceStep().run(one)
    empty = sim.rateints.copy()
    empty.data[:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        TraceStep().run(empty)


@pytest.mark.parametrize("mode", ["NIS_SOSS", "MIR_LRS-SLITLESS", "NRC_TSGRISM"])
def test_reference_trace_matches_truth_with_cosmic_rays_and_bad_pixels(mode, tmp_path):
    sim = _simulate(mode, nints=20)
    model = sim.rateints.copy()
    rng = np.random.default_rng(5)
    # A column of hot pixels and scattered dead pixels on the trace.
    hot = rng.integers(0, model.data.shape[2] if mode != "MIR_LRS-SLITLESS" else 256, 30)
    truth = sim.truth
    for x in hot:
        if mode == "MIR_LRS-SLITLESS":
            y, xx = x, int(round(np.nanmean(truth.trace_center[0])))
        else:
            y, xx = int(round(np.nanmean(truth.trace_center[0]))), x
        model.data[:, y, xx] = 1e6
        model.dq[:, y, xx] |= 1
    result = TraceStep().run(model)
    centers = result.trace_center
    assert centers.shape == truth.trace_center.shape
    for k in range(centers.shape[0]):
        both = np.isfinite(centers[k]) & np.isfinite(truth.trace_center[k])
        assert both.sum() >= 0.9 * np.isfinite(truth.trace_center[k]).sum()
        error = centers[k][both] - truth.trace_center[k][both]
        assert np.sqrt(np.mean(error**2)) < 0.05, (mode, k)
    path = tmp_path / "traced_rateints.fits"
    result.save(path)
    with datamodels.open(path) as back:
        np.testing.assert_array_equal(back.trace_center, centers)
        assert back.meta.cal_step.tso_trace == "COMPLETE"
        vectors = get_vectors(back)
        assert {"trace_position", "trace_width"} <= set(vectors.colnames)
    assert not np.shares_memory(result.data, sim.rateints.data)


@pytest.mark.parametrize(
    ("mode", "max_ratio", "nints"),
    [
        ("NRC_TSGRISM", 1.1, 40),
        ("NIS_SOSS", 1.1, 40),
        ("MIR_LRS-SLITLESS", 1.1, 40),
        # An RMS from 40 integrations is itself uncertain by ~11 %; NIRSpec's small crop is
        # cheap, so 150 integrations pin its ratio down (0.90-1.03 over seeds 2-4).
        ("NRS_BRIGHTOBJ", 1.1, 150),
    ],
)
def test_position_error_is_near_cramer_rao(mode, max_ratio, nints):
    # Jitter across the dispersion only, so the truth is one shift per integration.
    axis = 1 if mode != "MIR_LRS-SLITLESS" else 0
    rms = (0.0, 0.03) if axis == 1 else (0.03, 0.0)
    sim = _simulate(mode, nints=nints, jitter=Jitter(rms=rms), cosmic_rays=False, one_over_f=False)
    result = TraceStep().run(sim.rateints)
    vectors = get_vectors(result)
    measured = np.asarray(vectors["trace_position"])
    truth = sim.truth.shift_cross_dispersion
    error = (measured - measured.mean()) - (truth - truth.mean())
    rms_error = np.sqrt(np.mean(error**2))
    crb = np.sqrt(
        np.mean([_cramer_rao(sim.truth, sim.rateints, i) ** 2 for i in range(len(truth))])
    )
    print(f"{mode}: rms error {rms_error:.5f} px, CRB {crb:.5f} px, ratio {rms_error / crb:.3f}")
    assert rms_error <= max_ratio * crb
    # The formal errors describe the scatter.
    assert 0.7 < np.median(vectors["trace_shift_error"]) / rms_error < 1.3
    # Width: the truth FWHM of the simulated profile, within 20 %.
    width = np.nanmedian(sim.truth.trace_width[0])
    assert abs(np.median(vectors["trace_width"]) / width - 1) < 0.2


def test_thousandth_pixel_step_is_recovered():
    nints = 40
    sim = _simulate(
        "NRS_BRIGHTOBJ",
        nints=nints,
        ngroups=20,
        jitter=Jitter(rms=0.0, tilt_integration=nints // 2, tilt=(0.0, 0.001)),
        cosmic_rays=False,
    )
    vectors = get_vectors(TraceStep().run(sim.rateints))
    position = np.asarray(vectors["trace_position"])
    sigma = np.asarray(vectors["trace_shift_error"])
    half = nints // 2
    step = position[half:].mean() - position[:half].mean()
    error = np.sqrt(np.sum(sigma[half:] ** 2) / half**2 + np.sum(sigma[:half] ** 2) / half**2)
    print(f"step {step:.5f} +- {error:.5f} px (truth 0.001)")
    assert error < 0.0004
    assert abs(step - 0.001) < 2 * error


def test_reference_trace_on_plain_arrays_finds_two_orders():
    y = np.arange(80.0)[:, None]
    x = np.arange(300.0)[None, :]
    c1 = 20.0 + 0.02 * x
    c2 = 55.0 - 0.00005 * (x - 150) ** 2
    image = 1000 * np.exp(-0.5 * ((y - c1) / 1.3) ** 2) + 300 * np.exp(-0.5 * ((y - c2) / 1.3) ** 2)
    image = image + 5.0
    ref = reference_trace(image, np.full(image.shape, 1.0), norders=2)
    np.testing.assert_allclose(ref.center[0], c1[0], atol=0.01)
    np.testing.assert_allclose(ref.center[1], c2[0], atol=0.01)
    np.testing.assert_allclose(ref.fwhm, 2.3548 * 1.3, rtol=0.1)
