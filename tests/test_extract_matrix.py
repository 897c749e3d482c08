"""tso_extract on cross-dispersion profiles it does not model, faint and bright, breathing off/on.

The scenes are built here from analytic profiles (pixel-integrated by sub-sampling), with
their own truth; the reference is Horne extraction handed the true noiseless source.
"""

import numpy as np
import pytest

from tso_steps.extract.core import ExtractOptions, extract_order

NINTS, NCROSS, NDISP = 40, 40, 120


def _profile(family, off, scale):
    f = (np.arange(9) + 0.5) / 9 - 0.5
    u = (off[..., None] + f) / scale
    if family == "moffat":
        v = (1 + (u / 1.6) ** 2) ** -2.2
    elif family == "asymmetric":
        core = np.where(u < 0, np.exp(-0.5 * (u / 1.2) ** 2), np.exp(-0.5 * (u / 2.0) ** 2))
        v = core + 0.15 * np.exp(-0.5 * ((u - 4.0) / 1.0) ** 2)
    elif family == "undersampled":
        v = np.exp(-0.5 * (u / 0.55) ** 2) + 0.02 * (1 + u**2 / 4) ** -2
    else:  # SOSS-like: wide, double-horned
        v = np.exp(-0.5 * ((np.abs(u) - 4.5) / 2.2) ** 2) + 0.03 * (1 + (u / 6) ** 2) ** -2
    return v.mean(-1)


def _width_scale(breathing, nints=None):
    """Profile width per integration: 2 % drift plus a 1 % step at the tilt, or steady."""
    nints = nints or NINTS
    scale = np.ones(nints)
    if breathing:
        scale += 0.02 * np.linspace(-0.5, 0.5, nints)
        scale += np.where(np.arange(nints) >= nints // 2, 0.01, 0.0)
    return scale


def _scene(family, flux, breathing, seed, background=30.0, read_noise=10.0, nints=None):
    nints = nints or NINTS
    rng = np.random.default_rng(seed)
    x = np.arange(NDISP)
    centre = NCROSS / 2 + 1.5 * np.sin(x / NDISP * np.pi) - 0.75 + rng.uniform(-0.5, 0.5)
    shifts = np.cumsum(rng.normal(0, 0.02, nints))
    shifts -= shifts.mean()
    shifts[nints // 2 :] += 0.3
    scale = _width_scale(breathing, nints)
    spectrum = flux * (1 + 0.5 * np.cos(x / 25.0))
    rows = np.arange(NCROSS)[:, None]
    wide = np.arange(-80, 81)[:, None] + np.zeros(NDISP)
    source = np.array(
        [
            spectrum
            * _profile(family, rows - (centre + shifts[i]), scale[i])
            / _profile(family, wide, scale[i]).sum(0)
            for i in range(nints)
        ]
    )
    expected = source + background
    data = rng.poisson(expected) + rng.normal(0, read_noise, source.shape)
    var_poisson = np.broadcast_to(np.median(expected, axis=0), source.shape).copy()
    var_rnoise = np.full(source.shape, read_noise**2)
    return data, var_poisson, var_rnoise, source, centre, shifts


def _relative_scatter(flux):
    white = np.nansum(flux, axis=1)
    return np.std(white) / abs(np.mean(white))


def _scores(family, flux, breathing, seed=2, halfwidth=8.0, nints=None):
    """White-light scatter of ours and of the best fixed box over the true-profile Horne's."""
    data, vp, vr, source, centre, shifts = _scene(family, flux, breathing, seed, nints=nints)
    args = (data, vp, vr, np.zeros(data.shape, bool), centre, shifts)
    options = ExtractOptions(halfwidth=halfwidth)
    ref = _relative_scatter(extract_order(*args, options, true_profile=source).extraction.flux)
    result = extract_order(*args, options)
    # boxes handed the true profile only to fill bad pixels (there are none): no profile fit
    boxes = [
        _relative_scatter(
            extract_order(
                *args, ExtractOptions(halfwidth=h, method="box"), true_profile=source
            ).extraction.flux
        )
        for h in (2, 3, 4, 6, 8)
    ]
    return _relative_scatter(result.extraction.flux) / ref, min(boxes) / ref, result


@pytest.mark.parametrize("family", ["moffat", "asymmetric", "undersampled", "soss"])
@pytest.mark.parametrize("breathing", [False, True])
def test_faint_source_extraction_near_true_profile_and_box(family, breathing):
    ours, box, _ = _scores(family, 30.0, breathing)
    # 40 integrations: the scatter ratio itself is uncertain by a few per cent
    assert ours < 1.04  # measured 0.98-1.025 with seed 2
    assert ours < box  # boxes 1.04-1.31


@pytest.mark.parametrize("family", ["moffat", "asymmetric", "undersampled", "soss"])
@pytest.mark.parametrize("breathing", [False, True])
def test_bright_source_extraction_near_true_profile(family, breathing):
    # 100 integrations: the width of a breathing PSF is followed through a random walk, which
    # needs a series; measured 0.99-1.01 (boxes 1.00-1.07) with seed 2
    ours, box, _ = _scores(family, 3000.0, breathing, nints=100)
    assert ours < 1.03
    assert ours < box + 0.01  # the box ratio is uncertain by ~0.02 at 100 integrations


def test_breathing_width_is_measured():
    data, vp, vr, _, centre, shifts = _scene("asymmetric", 3000.0, True, seed=3, nints=100)
    args = (data, vp, vr, np.zeros(data.shape, bool), centre, shifts)
    widths = extract_order(*args, ExtractOptions(halfwidth=8.0)).widths
    scale = _width_scale(True, 100)
    # measured: correlation 0.996, slope 0.94 (seeds 3, 4)
    assert np.corrcoef(widths, scale)[0, 1] > 0.98
    assert 0.85 < np.polyfit(scale, widths, 1)[0] < 1.1
    steady = _scene("asymmetric", 3000.0, False, seed=3, nints=100)
    args = (*steady[:3], np.zeros(data.shape, bool), *steady[4:])
    assert np.ptp(extract_order(*args, ExtractOptions(halfwidth=8.0)).widths) < 1e-3
