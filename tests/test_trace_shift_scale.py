"""The shift scale check of tso_trace against the centre of light (trace/shift_scale.py)."""

import numpy as np
import pytest
from scipy.special import erf

from tso_steps.trace.shift_scale import MIN_SPREAD, shift_scale

NY, NX, SIGMA, FLUX, READ = 24, 96, 0.55, 2e4, 5.0


def _cube(shifts, seed=0):
    """Pixel-integrated Gaussian cores (sigma 0.55 px: undersampled), photon + read noise."""
    rng = np.random.default_rng(seed)
    edges = np.arange(NY + 1)[None, :, None] - 0.5
    centre = 11.3 + 0.004 * np.arange(NX)[None, None, :] + np.asarray(shifts)[:, None, None]
    z = (edges - centre) / (np.sqrt(2) * SIGMA)
    light = FLUX * 0.5 * np.diff(erf(z), axis=1) + 20.0
    var = light + READ**2
    return light + rng.normal(size=light.shape) * np.sqrt(var), var


def _pixels(halfwidth=4):
    centre = 11.3 + 0.004 * np.arange(NX)
    rows, cols, cen = [], [], []
    for x in range(NX):
        for y in range(
            int(np.ceil(centre[x] - halfwidth)), int(np.floor(centre[x] + halfwidth)) + 1
        ):
            rows.append(y)
            cols.append(x)
            cen.append(centre[x])
    return np.array(rows), np.array(cols), np.array(cen), np.zeros(len(rows), int)


def _check(scale, rms, nints=60, error=1e-4, seed=1):
    truth = np.random.default_rng(seed).normal(0.0, rms, nints)
    cube, var = _cube(truth, seed)
    reference = cube.mean(axis=0)
    ref_var = var.mean(axis=0) / nints
    rows, cols, cen, order = _pixels()
    # a fit that got the derivative wrong: shifts `scale` times the truth, plus its noise
    fitted = scale * truth + np.random.default_rng(seed + 1).normal(0.0, error, nints)
    result = shift_scale(
        cube, None, reference, ref_var, rows, cols, cen, order, fitted, np.full(nints, error),
    )  # fmt: skip
    return truth, fitted, result


@pytest.mark.parametrize("scale", [0.66, 0.8, 1.25])
def test_a_mis_scaled_fit_is_rescaled_to_the_truth(scale):
    truth, fitted, result = _check(scale, rms=0.05)
    assert result.applied
    corrected = fitted * result.factor
    slope = np.polyfit(truth, corrected, 1)[0]
    # the centre of light of a pixel-integrated sigma-0.55 px core moves with the light to
    # better than 1 % (aliasing at one cycle per pixel: exp(-2 pi^2 sigma^2) = 0.003)
    assert abs(slope - 1) < 0.02
    assert abs(result.slope * scale - 1) < 0.02


def test_a_well_scaled_fit_is_left_alone():
    _, _, result = _check(1.0, rms=0.05)
    assert not result.applied and result.factor == 1.0
    assert abs(result.slope - 1) < 3 * result.slope_error + 0.01


def test_a_steady_trace_is_not_rescaled():
    # the shifts span less than sqrt(MIN_SPREAD) times their error: the slope would be biased
    rms = 0.5 * np.sqrt(MIN_SPREAD) * 1e-3
    _, _, result = _check(0.7, rms=rms, error=1e-3)
    assert not result.applied and result.factor == 1.0
    assert "moved too little" in result.reason


def test_lost_integrations_and_a_cosmic_ray_do_not_matter():
    truth = np.random.default_rng(3).normal(0.0, 0.05, 40)
    cube, var = _cube(truth, 3)
    cube[5] = np.nan  # a lost integration
    cube[9, 11, 40] += 5e4  # a cosmic ray on the core
    reference = np.nanmean(cube, axis=0)
    rows, cols, cen, order = _pixels()
    fitted = 0.75 * truth
    fitted[5] = np.nan
    result = shift_scale(
        cube, None, reference, var.mean(axis=0) / 39, rows, cols, cen, order, fitted,
        np.full(40, 1e-4),
    )  # fmt: skip
    assert result.applied
    assert abs(result.factor * 0.75 - 1) < 0.02


def test_a_small_mis_scale_is_within_the_tolerance_and_left_alone():
    # 3 % is significant at this signal-to-noise but within the expected response's own
    # systematic accuracy (TOLERANCE)
    truth, _, result = _check(0.97, rms=0.05)
    assert not result.applied and result.factor == 1.0
    assert abs(result.slope * 0.97 - 1) < 0.02
    # the centre of light itself follows the truth, in px
    light = result.centre_of_light
    assert abs(np.polyfit(truth, light, 1)[0] - 1) < 0.02
