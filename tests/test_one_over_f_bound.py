"""The white-light information bound of benchmarks/one_over_f_bound.py (issue 12).

Its read schedule and covariance are written independently of the production code; here they
are held to the simulator (its clock, and the covariance of the noise it draws), and the
FFT + conjugate-gradient bound to the dense-matrix formula on a tiny frame.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from one_over_f_bound import (  # noqa: E402
    CovarianceOperator,
    NoiseSpec,
    ReadSchedule,
    bound,
    nuisance_columns,
    posterior_mean,
    slope_coefficient,
)
from tso_steps.simulate.clocking import DetectorClock  # noqa: E402
from tso_steps.simulate.effects import DetectorNoise  # noqa: E402
from tso_steps.simulate.noise import CorrelatedNoise  # noqa: E402
from tso_steps.simulate.ramp import ReadPlan  # noqa: E402

LAYOUTS = [
    ("NIRCAM", (64, 2048), -1, 2, 4, 1, 1),
    ("NIRCAM", (64, 2048), -1, 2, 1, 1, 1),
    ("NIRSPEC", (32, 2048), 2, 1, 1, 1032, 1),
    ("NIRISS", (256, 2048), -2, -1, 1, 1, 1793),
    ("MIRI", (416, 72), 1, 2, 4, 1, 529),
    ("NIRCAM", (64, 64), -1, 2, 1, 169, 169),
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda c: f"{c[0]}-{c[4]}out-{c[1][0]}")
def test_read_schedule_is_the_simulators(layout):
    mine = ReadSchedule.build(*layout)
    clock = DetectorClock(*layout[:5], xstart=layout[5], ystart=layout[6])
    assert mine.frame_ticks == clock.frame_ticks
    np.testing.assert_array_equal(mine.ticks, clock.ticks)
    np.testing.assert_array_equal(mine.outputs, clock.outputs)
    np.testing.assert_array_equal(mine.positions, clock.positions)


def test_slope_coefficient_is_the_simulators():
    for plan in (ReadPlan(4, 1, 0, 0.34061), ReadPlan(5, 4, 2, 0.3)):
        mine = slope_coefficient(plan.ngroups, plan.frame_time, plan.nframes, plan.groupgap)
        assert mine == pytest.approx(plan.variance_coefficients(plan.ngroups)[1], rel=1e-12)


def _tiny(noutputs=4, **spectrum):
    clock = DetectorClock("NIRCAM", (6, 32), -1, 2, noutputs)
    layout = ("NIRCAM", (6, 32), -1, 2, noutputs)
    spec = NoiseSpec(**spectrum)
    rng = np.random.default_rng(3)
    white_var = rng.uniform(20.0, 200.0, clock.shape)
    return clock, ReadSchedule.build(*layout), spec, white_var


@pytest.mark.parametrize(
    "spectrum", [{}, {"alpha": 0.7, "white": 0.3}, {"alpha": 1.3, "knee": 50.0}], ids=str
)
def test_covariance_matches_the_simulators_draws(spectrum):
    """Variances of three sums of the simulator's correlated noise, 3000 frames."""
    clock, schedule, spec, _ = _tiny(**spectrum)
    config = DetectorNoise(preamp=0.0, **spectrum)
    noise = CorrelatedNoise(config, clock, np.random.default_rng(11))
    n = 3000
    frames = noise.integration(n)[0].reshape(n, -1)
    white = noise.white_part(n)
    white = None if white is None else white.reshape(n, -1)
    op = CovarianceOperator(schedule, spec, np.zeros(clock.shape))
    rng = np.random.default_rng(5)
    box = np.zeros(clock.shape)
    box[2:5] = 1.0
    for vector in (box.ravel(), rng.standard_normal(box.size), np.eye(box.size)[7] + 1.0):
        for draws, apply in ((frames, op.K), (white, op.R)):
            if draws is None:
                continue
            model = float(vector @ apply(vector)[:, 0])
            measured = float(np.var(draws @ vector))
            assert measured / model == pytest.approx(1.0, abs=4 * np.sqrt(2.0 / n))


def test_fft_covariance_is_the_cosine_sum():
    spec = NoiseSpec(alpha=1.3, knee=50.0)
    n = scipy.fft.next_fast_len(253, real=True)
    direct = spec.autocovariance(np.arange(n), n)
    via_fft = scipy.fft.irfft(spec.eigenvalues(n), n=n)
    np.testing.assert_allclose(via_fft, direct, atol=1e-12)
    assert direct[0] == pytest.approx(1.0)


def _dense(schedule, spec, white_var):
    """The covariance matrices K and R written out pixel by pixel."""
    n_fft = scipy.fft.next_fast_len(schedule.frame_ticks, real=True)
    t = schedule.ticks.ravel()
    o = schedule.outputs.ravel()
    p = schedule.positions.ravel() % 2
    lag = np.abs(t[:, None] - t[None, :])
    pink = spec.autocovariance(lag.ravel(), n_fft).reshape(lag.shape)
    same_o = o[:, None] == o[None, :]
    same_t = lag == 0
    c = spec.slope_coeff
    k = c * (1 - spec.white) * (spec.common**2 + spec.per_output**2 * same_o) * pink
    k += c * spec.odd_even**2 * (same_o & (p[:, None] == p[None, :]))
    r = np.diag(white_var.ravel()) + c * spec.white * (
        spec.common**2 * same_t + spec.per_output**2 * (same_t & same_o)
    )
    return k, r


@pytest.mark.parametrize("noutputs", [1, 4])
@pytest.mark.parametrize("spectrum", [{}, {"alpha": 0.7, "white": 0.3}], ids=str)
def test_bound_matches_the_dense_formula(noutputs, spectrum):
    clock, schedule, spec, white_var = _tiny(noutputs, slope_coeff=1.7, **spectrum)
    op = CovarianceOperator(schedule, spec, white_var)
    k, r = _dense(schedule, spec, white_var)
    sigma = k + r
    box = np.zeros(clock.shape, bool)
    box[2:5, 3:29] = True
    b = box.ravel().astype(float)
    source = np.exp(-0.5 * (np.arange(6)[:, None] - 3.2) ** 2) * np.linspace(1, 3, 32)[None]
    for s in (None, nuisance_columns(source), nuisance_columns(source, 8)):
        got = bound(op, box, s)
        v_post = b @ k @ b - b @ k @ np.linalg.solve(sigma, k @ b)
        if s is not None:
            h = s.T @ np.linalg.solve(sigma, k @ b)
            v_post += h @ np.linalg.solve(s.T @ np.linalg.solve(sigma, s), h)
        assert got["v_white"] == pytest.approx(b @ r @ b, rel=1e-10)
        assert got["v_prior"] == pytest.approx(b @ k @ b, rel=1e-10)
        assert got["v_post"] == pytest.approx(v_post, rel=1e-6)


def test_posterior_mean_reaches_the_bound_on_draws():
    """Error of E[c|y] on draws from the dense model has the computed posterior variance."""
    clock, schedule, spec, white_var = _tiny(4, slope_coeff=1.0)
    op = CovarianceOperator(schedule, spec, white_var)
    k, r = _dense(schedule, spec, white_var)
    rng = np.random.default_rng(8)
    n = 2000
    c = rng.multivariate_normal(np.zeros(k.shape[0]), k, n, method="cholesky")
    e = rng.standard_normal((n, k.shape[0])) * np.sqrt(white_var.ravel())
    box = np.zeros(clock.shape, bool)
    box[2:5] = True
    source = 50.0 * np.exp(-0.5 * (np.arange(6)[:, None] - 3.2) ** 2) * np.ones((1, 32))
    s = nuisance_columns(source)
    y = (c + e + 0.9 * source.ravel()).reshape(n, *clock.shape)
    c_hat = posterior_mean(op, y, s).reshape(n, -1)
    err = (c_hat - c) @ box.ravel()
    got = bound(op, box, s)
    assert np.var(err) / got["v_post"] == pytest.approx(1.0, abs=4 * np.sqrt(2.0 / n))
    # and the estimator's score (box sum of y - c_hat - source) is the computed one
    score = np.var((y.reshape(n, -1) - c_hat - 0.9 * source.ravel()) @ box.ravel())
    assert np.sqrt(score / got["v_white"]) == pytest.approx(got["ratio_pm"], rel=0.08)
