"""tso_extract's profile pieces: the pixel-integrated spline, the super-resolved fit, breathing."""

import numpy as np
from scipy.interpolate import BSpline
from scipy.special import erf

from tso_steps.extract.breathing import random_walk_smooth
from tso_steps.extract.pixel_spline import PixelSpline
from tso_steps.extract.profile import build_profile


def _dense(spline, u, kind):
    """Basis rows of ``spline`` as full vectors (nbasis,) per offset."""
    j0, rows = spline.rows(np.asarray(u, float), kind)
    full = np.zeros((len(u), spline.nbasis))
    for k in range(len(u)):
        for p in range(spline.nonzero):
            if 0 <= j0[k] + p < spline.nbasis:
                full[k, j0[k] + p] = rows[k, p]
    return full


def _pixel_average(knots, coeffs, u, stretch=0.0, shift=0.0, n=4000):
    """Pixel average of the spline phi((v - shift) / (1 + stretch)) / (1 + stretch), by sums."""
    v = np.asarray(u, float)[:, None] + (np.arange(n) + 0.5) / n - 0.5
    phi = BSpline(knots, coeffs, 3, extrapolate=False)((v - shift) / (1 + stretch))
    return np.nan_to_num(phi).mean(axis=1) / (1 + stretch)


def test_pixel_spline_rows_are_pixel_integrals_and_their_derivatives():
    spline = PixelSpline(-5.0, 5.0, per_pixel=4)
    knots = spline.first + spline.spacing * np.arange(spline.nbasis + 4)
    coeffs = np.random.default_rng(1).normal(size=spline.nbasis)
    u = np.array([-4.6, -2.3, 0.1, 0.5, 1.77, 4.9])
    value = _dense(spline, u, "value") @ coeffs
    assert np.allclose(value, _pixel_average(knots, coeffs, u), atol=1e-7)
    eps = 1e-4
    for kind, key in (("width", "stretch"), ("shift", "shift")):
        plus = _pixel_average(knots, coeffs, u, **{key: eps})
        minus = _pixel_average(knots, coeffs, u, **{key: -eps})
        numeric = (plus - minus) / (2 * eps)
        assert np.allclose(_dense(spline, u, kind) @ coeffs, numeric, atol=1e-5), kind


def _undersampled_scene(nints=30, nrow=16, ndisp=90, sigma=0.5, seed=2):
    """Noiseless pixel-integrated Gaussian (FWHM 1.2 px) on a curved, jittered trace."""
    rng = np.random.default_rng(seed)
    cols = np.arange(ndisp)
    centre = 8.0 + 0.8 * np.sin(cols / 20.0)
    shifts = rng.normal(0, 0.05, nints)

    def pixels(shift):
        edges = np.arange(nrow + 1)[:, None] - 0.5 - (centre[None, :] + shift)
        cdf = 0.5 * (1 + erf(edges / (np.sqrt(2) * sigma)))
        return np.diff(cdf, axis=0)

    return centre, shifts, pixels


def test_profile_is_recovered_at_phases_it_was_not_seen_at():
    centre, shifts, pixels = _undersampled_scene()
    flux = 1000.0
    data = np.array([flux * pixels(s) for s in shifts])
    offset = np.arange(data.shape[1])[:, None] - centre[None, :]
    good = np.ones(data.shape, bool)
    variance = np.full(data.shape, 1.0)
    profile = build_profile(data, variance, good, offset, shifts, halfwidth=4.0, window=0)
    for new in (0.23, -0.41):  # a tilt event to phases no integration had
        truth = pixels(new)
        truth = np.where(np.abs(offset - new) <= 4.0, truth, 0.0)
        truth /= truth.sum(axis=0)
        fitted = profile.evaluate(np.array([new]))[0]
        # a pixel-grid profile moved by interpolation errs by ~5 % of the peak here
        assert np.max(np.abs(fitted - truth)) < 3e-3 * truth.max()


def test_random_walk_keeps_a_steady_width_constant():
    # white measurement noise of known, uneven variance: the random walk loses to a constant
    # by the information criterion in nearly every series (false alarms ~1-2 %)
    walks = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        sigma = rng.uniform(0.5, 2.0, 200)
        smooth, step = random_walk_smooth(rng.normal(0.0, sigma), sigma**2)
        if step == 0.0:
            assert np.ptp(smooth) < 1e-12
        walks += step > 0
    assert walks <= 2


def test_random_walk_follows_a_drift_and_a_step():
    rng = np.random.default_rng(5)
    n = 300
    truth = 0.02 * np.linspace(-0.5, 0.5, n) + np.where(np.arange(n) >= n // 2, 0.01, 0.0)
    sigma = np.full(n, 0.003)
    smooth, step = random_walk_smooth(truth + rng.normal(0, sigma), sigma**2)
    assert step > 0
    # the measurement noise is 0.003: the smoothed series is several times closer
    assert np.std(smooth - truth) < 0.0012
    estimate = truth.copy()
    estimate[::7] = np.nan  # unmeasured integrations are interpolated
    smooth, _ = random_walk_smooth(estimate + rng.normal(0, sigma), sigma**2)
    assert np.all(np.isfinite(smooth))


def test_banded_solve_of_all_columns_matches_a_dense_solve_per_column():
    from tso_steps.extract.pixel_spline import NormalEquations

    spline = PixelSpline(-3.0, 3.0)
    rng = np.random.default_rng(5)
    ndisp, n = 6, 400
    u = rng.uniform(-3.0, 3.0, n * ndisp)
    columns = np.repeat(np.arange(ndisp), n)
    equations = NormalEquations.accumulate(
        spline, u, columns, rng.uniform(0.5, 2.0, u.size), rng.normal(size=u.size), ndisp
    )
    equations.band[..., 2] = 0.0  # a column without samples is left at zero
    equations.rhs[:, 2] = 0.0
    coeffs = equations.solve(0.01)
    m, nb = spline.nonzero, spline.nbasis
    second = np.diff(np.eye(nb), 2, axis=0)
    for x in range(ndisp):
        gram = np.zeros((nb, nb))
        for d in range(m):
            idx = np.arange(nb - d)
            gram[idx, idx + d] = gram[idx + d, idx] = equations.band[d, : nb - d, x]
        scale = equations.band[0, :, x].mean()
        if scale == 0:
            assert np.all(coeffs[:, x] == 0)
            continue
        gram += 0.01 * scale * second.T @ second + 1e-9 * scale * np.eye(nb)
        expected = np.linalg.solve(gram, equations.rhs[:, x])
        assert np.allclose(coeffs[:, x], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_triangle_sums_from_shared_cumulative_sums_equal_padded_filtering():
    from tso_steps.extract.profile import _triangle_sum

    values = np.random.default_rng(2).normal(size=(3, 50))
    for half in (0, 1, 4, 24, 49, 60):
        size = half + 1
        out = values
        for _ in range(2):  # two box filters of zero-padded copies
            pad = np.zeros((3, size))
            total = np.cumsum(np.concatenate([pad, out, pad], axis=-1), axis=-1)
            out = total[..., size:] - total[..., :-size]
        expected = out[..., size - 1 : size - 1 + 50] / size
        assert np.array_equal(_triangle_sum(values, half), expected)
        cumulative = np.cumsum(values, axis=-1)
        assert np.array_equal(_triangle_sum(cumulative, half, cumulative=True), expected)
