"""tso_trace's per-integration fit on arrays: the width history, the window, the shift models."""

import numpy as np
from scipy.special import erf

from tso_steps.trace.breathing import condition_on_smooth_width
from tso_steps.trace.movers import FrameMover
from tso_steps.trace.pixel_profile import fit_pixel_profiles
from tso_steps.trace.positions import integration_positions
from tso_steps.trace.window import information_window


def _joint_estimates(rng, nints=200, coupling=0.5, rho=-0.8, sigma=(0.01, 0.02)):
    """Joint (shift, width) estimates whose errors are correlated as a Fisher matrix says."""
    cov = np.array(
        [[sigma[0] ** 2, rho * sigma[0] * sigma[1]], [rho * sigma[0] * sigma[1], sigma[1] ** 2]]
    )
    fisher = np.broadcast_to(np.linalg.inv(cov), (nints, 2, 2)).copy()
    t = np.linspace(-1, 1, nints)
    width = 0.01 * np.sin(2.5 * t) + 0.005 * (t > 0.2)  # drift plus a step
    shift = rng.normal(0.0, 0.03, nints)
    noise = rng.multivariate_normal([0.0, 0.0], cov, nints)
    return shift, width, shift + noise[:, 0], width + noise[:, 1], fisher


def test_shift_at_the_smoothed_width_reaches_the_conditional_bound():
    rng = np.random.default_rng(1)
    shift, width, est_shift, est_width, fisher = _joint_estimates(rng)
    chi2 = np.ones(shift.size)
    cond, smooth, error = condition_on_smooth_width(est_shift, est_width, fisher, chi2)
    joint_rms = np.std(est_shift - shift)
    cond_rms = np.std(cond - shift)
    conditional_bound = 1.0 / np.sqrt(fisher[0, 0, 0])
    # Joint errors are 1/sqrt(1 - rho^2) = 1.67x the bound with the width known.
    assert joint_rms > 1.5 * conditional_bound
    assert cond_rms < 1.15 * conditional_bound
    # The smoothed history follows the drift and the step far better than one integration.
    assert np.std(smooth - width) < 0.3 * np.std(est_width - width)
    # Its errors describe the scatter.
    assert 0.8 < np.median(error) / cond_rms < 1.25


def test_few_integrations_keep_the_joint_estimates():
    rng = np.random.default_rng(2)
    _, _, est_shift, est_width, fisher = _joint_estimates(rng, nints=5)
    cond, smooth, error = condition_on_smooth_width(est_shift, est_width, fisher, np.ones(5))
    np.testing.assert_array_equal(cond, est_shift)
    np.testing.assert_array_equal(smooth, est_width)
    np.testing.assert_allclose(error, np.sqrt(np.linalg.inv(fisher)[:, 0, 0]))


def _pixelated(rows, centre, left, right):
    """Pixel integrals of a unit split Gaussian (widths left/right of its peak)."""

    def cdf(x):
        below = left / (left + right) * (1 + erf(x / (np.sqrt(2) * left)))
        above = (left + right * erf(x / (np.sqrt(2) * right))) / (left + right)
        return np.where(x < 0, below, above)

    return cdf(rows + 0.5 - centre) - cdf(rows - 0.5 - centre)


def test_window_grows_on_the_side_a_profile_extends_to():
    rows = np.arange(80.0)[:, None]
    n_disp = 40
    # A wide one-sided profile whose reference centre sits near its steep edge.
    frame = 1e4 * _pixelated(rows, 40.0, 1.0, 8.0) * np.ones((1, n_disp)) + 5.0
    variance = frame.copy()
    centers = np.full((1, n_disp), 40.0)
    extent = information_window(frame, variance, centers, np.array([4.0]))
    below, above = extent[0]
    assert below == 4.0  # never narrower than the reference window
    assert above > 12.0  # the long side holds information far out
    # A neighbouring order stops the window half-way.
    two = np.vstack([centers, np.full((1, n_disp), 60.0)])
    extent = information_window(frame, variance, two, np.array([4.0, 4.0]))
    assert extent[0, 1] <= 10.0


def test_band_limited_mover_moves_a_well_sampled_profile_exactly():
    rows = np.arange(64.0)[:, None]
    frame = 1e3 * np.exp(-0.5 * ((rows - 31.3) / 3.0) ** 2) * np.ones((1, 8))
    variance = np.full(frame.shape, 1e-6)
    r, c = np.nonzero(np.abs(rows - 31.3) <= 9 * np.ones((1, 8)))
    mover = FrameMover(frame, variance, r, c, np.full(r.size, 31.3), np.zeros(r.size, int), [None])
    model, slope = mover(np.array([0.0, 0.37]))
    expected = 1e3 * np.exp(-0.5 * ((rows - 31.67) / 3.0) ** 2) * np.ones((1, 8))
    np.testing.assert_allclose(model[1], expected[r, c], atol=1e-3)
    analytic = -(rows - 31.3) / 9.0 * frame
    np.testing.assert_allclose(slope[0], analytic[r, c], atol=1e-3)


def test_band_limited_mover_interpolates_its_exact_transform_to_1e7():
    # A 1.2 px sigma core (near the Nyquist limit) in two orders whose pixels are listed
    # order by order, not by column: between the 1/32 px nodes the Hermite interpolation of
    # the frame and its slope stays within (pi / 32)**4 / 384 of the peak, at a node and
    # beyond 1 px it is the exact transform.
    rows = np.arange(64.0)[:, None]
    cols = np.arange(24.0)[None, :]
    centres = (20.0 + 0.05 * cols, 45.0 - 0.03 * cols)
    frame = sum(1e3 * np.exp(-0.5 * ((rows - c) / 1.2) ** 2) for c in centres)
    variance = np.full(frame.shape, 1e-6)
    picked = [np.nonzero(np.abs(rows - c) <= 6) for c in centres]
    r = np.concatenate([p[0] for p in picked])
    c = np.concatenate([p[1] for p in picked])
    order = np.concatenate([np.full(p[0].size, k) for k, p in enumerate(picked)])
    centre = np.array([centres[k][0, x] for k, x in zip(order, c, strict=True)])
    mover = FrameMover(frame, variance, r, c, centre, order, [None, None])
    dy = np.array([0.0, 0.0123, -0.3712, 0.999, 1.3, -2.0])
    model, slope = mover(dy)
    np.testing.assert_allclose(model[0], frame[r, c], atol=1e-3)  # each pixel its own value
    exact_model, exact_slope = mover.table.exact(dy)
    bound = (np.pi / 32) ** 4 / 384
    assert np.abs(model - exact_model).max() < bound * np.abs(exact_model).max()
    assert np.abs(slope - exact_slope).max() < bound * np.abs(exact_slope).max()
    for k in (0, 4, 5):  # a node, and shifts of 1 px or more: exact
        np.testing.assert_array_equal(model[k], exact_model[k])
        np.testing.assert_array_equal(slope[k], exact_slope[k])


def _cube(profile_rows, shifts, rng, flux=2e4, background=20.0):
    """Integrations of one order (40 columns) moved by ``shifts``, photon noise only."""
    n_disp = 40
    data = np.stack([flux * profile_rows(dy) * np.ones((1, n_disp)) for dy in shifts])
    data = data + background
    variance = data.copy()
    return data + rng.normal(size=data.shape) * np.sqrt(variance), variance


def test_the_shift_model_that_explains_the_integrations_is_chosen():
    # A band-limited profile (the intensity of a 1-D pupil: sinc^2, 2 px FWHM): the
    # band-limited interpolation moves it exactly, a Gaussian-cored pixel model does not;
    # the fit keeps the model whose residuals vary least between integrations.
    rng = np.random.default_rng(3)
    rows = np.arange(32.0)[:, None]
    fine = np.linspace(-0.5, 0.5, 41)

    def sinc2(dy):
        u = (rows - 15.3 - dy + fine[None, :]) / 2.26
        return (np.sinc(u) ** 2).mean(axis=1, keepdims=True) / 2.26

    shifts = rng.normal(0.0, 0.05, 40)
    cube, variance = _cube(sinc2, shifts, rng)
    mean = cube.mean(axis=0)
    centers = np.full((1, 40), 15.3)
    profile = fit_pixel_profiles(mean, 1.0 / variance.mean(axis=0), centers[0], 4.0)
    with_model = integration_positions(cube, variance, mean, centers, [4.0], profiles=[profile])
    fourier = integration_positions(cube, variance, mean, centers, [4.0])
    np.testing.assert_allclose(with_model.shift, fourier.shift)
    slope = np.polyfit(shifts - shifts.mean(), fourier.shift - fourier.shift.mean(), 1)[0]
    assert abs(slope - 1.0) < 0.02
