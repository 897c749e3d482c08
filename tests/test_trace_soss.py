"""tso_trace's SOSS pieces on arrays: pastasoss's centre convention and the shared wheel fit."""

import numpy as np
import pytest

from tso_steps.trace.column_fit import fit_columns
from tso_steps.trace.soss_centre import soss_profile_centre
from tso_steps.trace.soss_prior import (
    SossTracePrior,
    fit_soss_orders,
    fit_soss_prior,
    soss_prior_centres,
)
from tso_steps.trace.template import _edge_centre, build_template

STEP = 0.05
U = np.arange(-20.0, 20.0 + STEP / 2, STEP)


def _horns(u, left=1.0, right=1.0, half=5.5, edge=0.6):
    """Flat-topped SOSS-like profile: a 23 px plateau with soft edges and two horns on it."""
    plateau = 0.5 * (np.tanh((u + 11.5) / edge) - np.tanh((u - 11.5) / edge))
    return plateau + 0.4 * (
        left * np.exp(-0.5 * ((u + half) / 1.5) ** 2)
        + right * np.exp(-0.5 * ((u - half) / 1.5) ** 2)
    )


def _brute_force_centre(u, value, lag_step=1e-3):
    """The definition, evaluated directly: argmax over lags of sum(value * kernel(u - lag))."""
    lags = np.arange(-5.0, 5.0, lag_step)
    best, best_lag = -np.inf, np.nan
    for lag in lags:
        d = u - lag
        k = np.exp(-0.5 * ((d - 7.5) / 3.0) ** 2) + np.exp(-0.5 * ((d + 7.5) / 3.0) ** 2)
        c = float(np.sum(value * k))
        if c > best:
            best, best_lag = c, lag
    return best_lag


@pytest.mark.parametrize("shift", [-1.3, 0.0, 0.37, 2.2])
@pytest.mark.parametrize(
    "profile",
    [
        lambda u: _horns(u),
        lambda u: _horns(u, half=5.0),
        lambda u: _horns(u, 0.0, 0.0),  # no horns: a plain plateau
    ],
)
def test_centre_of_a_symmetric_profile_is_its_centre_of_symmetry(profile, shift):
    assert soss_profile_centre(U, profile(U - shift)) == pytest.approx(shift, abs=2e-3)


@pytest.mark.parametrize("left, right", [(1.0, 0.6), (0.5, 1.0), (1.3, 0.9)])
def test_unequal_horns_follow_the_definition_not_the_half_maximum_edges(left, right):
    value = _horns(U, left, right)
    centre = soss_profile_centre(U, value)
    assert centre == pytest.approx(_brute_force_centre(U, value), abs=3e-3)
    # Unequal horns move the convention's centre by tenths of a pixel (which way depends on
    # where the horns sit relative to the kernel's +-7.5 px); the half-maximum edges do not.
    assert abs(centre) > 0.1
    assert abs(_edge_centre(U, value)) < 0.01


def test_profiles_without_a_centre_in_range_give_nan():
    assert np.isnan(soss_profile_centre(U, np.zeros_like(U)))
    assert np.isnan(soss_profile_centre(U, np.exp(U / 4.0)))  # no peak within the search
    # A profile much narrower than the +-7.5 px kernel is not SOSS-like: its correlation peaks
    # where one Gaussian of the pair sits on it, beyond the search, so it has no such centre.
    assert np.isnan(soss_profile_centre(U, np.exp(-0.5 * (U / 2.0) ** 2)))


def test_column_fits_return_centres_in_the_convention():
    # An image of a curved, asymmetric SOSS-like trace at known rows: the column fits with a
    # template built in pastasoss's convention return, column by column, the convention's
    # centre of the pixel-integrated profile; with the default template, its half-maximum
    # edges' midpoint.
    fine = np.arange(-30.0, 30.0 + STEP / 2, STEP)
    profile = _horns(fine, 1.0, 0.7)
    cumulative = np.cumsum(profile) * STEP
    pixelated = np.interp(fine + 0.5, fine, cumulative) - np.interp(fine - 0.5, fine, cumulative)
    convention = soss_profile_centre(fine, pixelated)
    edges = _edge_centre(fine, pixelated)
    assert abs(convention - edges) > 0.1  # the two definitions differ on this profile
    columns = np.arange(300)
    origin = 40.0 + 5.0 * np.sin(columns / 60.0)  # every pixel phase is sampled
    lower = np.arange(80, dtype=float)[:, None] - 0.5 - origin[None, :]
    image = np.interp(lower + 1.0, fine, cumulative) - np.interp(lower, fine, cumulative)
    weight = np.ones_like(image)
    for centre, expected in ((soss_profile_centre, convention), (None, edges)):
        guess = origin + expected + 0.3  # first guess 0.3 px off
        template = build_template(image, guess, 16.0, centre=centre)
        fitted, *_ = fit_columns(image, weight, guess, template, 16.0)
        np.testing.assert_allclose(fitted - origin, expected, atol=0.01)


def _measured(order, dpw, dy, pwcpos=245.78, noise=0.08, seed=1, shape_error=0.0):
    rng = np.random.default_rng(seed + order)
    truth = soss_prior_centres(pwcpos + dpw, order, 2048) + dy
    x = np.arange(2048)
    centers = truth + shape_error * np.sin(x / 90.0) + rng.normal(0, noise, 2048)
    return centers, np.full(2048, noise)


def test_joint_fit_recovers_one_wheel_angle_and_one_offset():
    measured = {k: _measured(k, 0.03, 0.25) for k in (1, 2)}
    # contaminated columns (a field star's spectrum): far off, must be rejected
    c1, e1 = measured[1]
    c1[300:400] += 3.0
    fits = fit_soss_orders(measured, 245.78)
    assert fits[1].dpwcpos == fits[2].dpwcpos and fits[1].dy == fits[2].dy
    assert fits[1].dpwcpos == pytest.approx(0.03, abs=0.002)
    assert fits[1].dy == pytest.approx(0.25, abs=0.02)
    assert not fits[1].used[300:400].any() and fits[1].used[1000:1100].all()


def test_order2_alone_turns_its_shape_errors_into_a_wheel_angle():
    # Why the orders are fitted together: order 2's columns lie on one side of its pivot,
    # where rotation and offset are nearly degenerate, so a 0.2 px shape error of its model
    # moves its own fit far from the true wheel angle; order 1 pins the angle.
    measured = {
        1: _measured(1, 0.02, 0.1),
        2: _measured(2, 0.02, 0.1, shape_error=0.2),
    }
    c2, _ = measured[2]
    c2[:900] = np.nan  # order 2 is measured over x ~ 900-1800 only
    alone = fit_soss_prior(*measured[2], 245.78, 2)
    joint = fit_soss_orders(measured, 245.78)[2]
    truth = soss_prior_centres(245.80, 2, 2048) + 0.1
    lit = np.isfinite(c2) & np.isfinite(truth)
    err_alone = np.sqrt(np.mean((alone.center - truth)[lit] ** 2))
    err_joint = np.sqrt(np.mean((joint.center - truth)[lit] ** 2))
    assert abs(joint.dpwcpos - 0.02) < abs(alone.dpwcpos - 0.02)
    assert err_joint < 0.5 * err_alone


def test_priors_sharing_a_store_fit_both_orders_together():
    shared = {}
    priors = [SossTracePrior(245.78, k, shared=shared) for k in (1, 2)]
    for k, prior in zip((1, 2), priors, strict=True):
        prior.fit(*_measured(k, -0.01, 0.2))
    refit = priors[0].fit(*shared[1])
    assert refit.dpwcpos == pytest.approx(priors[1].last.dpwcpos, abs=1e-9)
    assert refit.dy == pytest.approx(priors[1].last.dy, abs=1e-9)
    alone = SossTracePrior(245.78, 1)  # no store: fitted alone, as before
    alone.fit(*_measured(1, -0.01, 0.2))
    assert alone.last.dpwcpos == pytest.approx(-0.01, abs=0.003)
