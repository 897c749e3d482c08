"""Cross-dispersion profile families and PSF width breathing, independent of tso_trace.

The default scene renders each order's profile as the few Gaussian and Lorentzian
components listed in :mod:`~tso_steps.simulate.modes` - the same kind of profile that
``tso_trace``'s pixel model is built from.  The families here are made differently, so a
tracer tuned to the default profile meets shapes it was not written for:

``"diffraction"``
    The intensity of a one-dimensional pupil with a cubic (coma-like) phase error, so the
    first side lobes are unequal, plus a one-sided scattered halo.  For wide, defocused
    profiles (NIRISS/SOSS) the geometric image of an obscured pupil with an illumination
    gradient (two unequal horns), blurred by the diffraction kernel.
``"undersampled"``
    A kurtotic core (generalised normal, exponent 1.6) at 0.8 times the mode's FWHM,
    integrated over each pixel with a non-uniform intra-pixel response (sensitivity falling
    towards the pixel edges, a small gradient across the pixel, and charge diffusion into
    the neighbours), not a box.  SOSS: sharp-edged horns through the same response.
``"moffat"``
    A split (skewed) Moffat profile, beta 2.5, one side 30 % wider than the other; SOSS:
    two split-Moffat horns of unequal weight.

Every profile is tabulated once at unit FWHM (numerically, on a fine grid), normalised to
unit flux and translated so its intensity-weighted centroid is at 0.  Breathing scales the
profile about that centroid: a focus change is a symmetric blur, which keeps the centroid
of the light where it is, so the TRUE position of the trace in a column is the centroid
of the continuous profile, ``trace centre + cross-dispersion pointing offset``, whatever the
width (see :func:`true_positions`).  Pixel values are the profile integrated against the
pixel's response (a midpoint rule on ``_SUBSAMPLE`` points per pixel), so a shift moves the
light smoothly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

__all__ = [
    "FAMILIES",
    "Breathing",
    "ProfileFamily",
    "breathing_scale",
    "get_family",
    "true_positions",
]

#: Profile families :func:`~tso_steps.simulate.simulate_tso` accepts (``"default"``: the
#: mode's own component profile).
FAMILIES = ("default", "diffraction", "undersampled", "moffat")

_GRID_HALF = 40.0  # tabulated range, in units of the FWHM
_GRID_STEP = 0.002  # tabulation step, FWHM units
_SUBSAMPLE = 24  # response samples per pixel
_WIDE_FWHM = 6.0  # px: profiles at least this wide are "defocused" (two-horned SOSS)


@dataclass(frozen=True)
class Breathing:
    """PSF width breathing: a smooth drift plus a step at a tilt event.

    The fractional FWHM change of integration ``i`` is ``drift(i) + step * (i >= k)``; the
    drift is a random smooth curve (a cubic polynomial plus a slow sinusoid with a random
    phase, from the simulation's seed) rescaled to a peak-to-peak of ``amplitude``.

    Parameters
    ----------
    amplitude : float
        Peak-to-peak fractional FWHM change of the smooth drift (0.02: 2 %).
    step : float
        Size of the step at ``step_integration`` (fraction); its sign is drawn at random.
    step_integration : int or None
        0-based integration of the step (None: the jitter's tilt integration if it has one,
        else a random integration in the middle half of the exposure).
    """

    amplitude: float = 0.02
    step: float = 0.005
    step_integration: int | None = None


def breathing_scale(config, nints, rng, tilt_integration=None):
    """Per-integration FWHM multiplier ``1 + drift + step``.

    Parameters
    ----------
    config : Breathing or None
        None: no breathing (all ones).
    nints : int
    rng : `numpy.random.Generator`
    tilt_integration : int or None
        Integration of the jitter's tilt event (used when ``config.step_integration`` is None).

    Returns
    -------
    ndarray, shape ``(nints,)``
    """
    scale = np.ones(nints)
    if config is None or nints < 2:
        return scale
    t = np.linspace(-1.0, 1.0, nints)
    coeffs = rng.normal(size=4)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 2.0)
    drift = np.polynomial.polynomial.polyval(t, coeffs) + np.sin(2 * np.pi * t / period + phase)
    span = np.ptp(drift)
    drift = config.amplitude * (drift - drift.mean()) / (span if span > 0 else 1.0)
    k = config.step_integration
    if k is None:
        k = (
            tilt_integration
            if tilt_integration is not None
            else rng.integers(nints // 4, 3 * nints // 4 + 1)
        )
    sign = rng.choice([-1.0, 1.0])
    step = np.where(np.arange(nints) >= int(k), sign * config.step, 0.0)
    return scale + drift + step


def _fwhm(grid, values):
    above = grid[values >= 0.5 * values.max()]
    return above[-1] - above[0]


def _normalised(grid, values):
    """Unit flux, unit FWHM, centroid at 0: returns ``(grid, density)`` for interpolation."""
    values = np.clip(values, 0.0, None)
    values = values / np.trapezoid(values, grid)
    centroid = np.trapezoid(grid * values, grid)
    width = _fwhm(grid, values)
    return (grid - centroid) / width, values * width


def _pupil_psf(grid, coma):
    """Intensity of a 1-D unit pupil with cubic phase ``coma`` (radians at the edge)."""
    n = 32768
    pupil_x = np.linspace(-1.0, 1.0, 257)
    field = np.zeros(n, complex)
    field[: pupil_x.size] = np.exp(1j * coma * pupil_x**3)
    intensity = np.abs(np.fft.fftshift(np.fft.fft(field))) ** 2
    freq = np.fft.fftshift(np.fft.fftfreq(n, d=pupil_x[1] - pupil_x[0]))
    return np.interp(grid, freq * 2.0, intensity, left=0.0, right=0.0)


def _halo(grid, weight, left, right):
    """One-sided (asymmetric) exponential halo of unit-normalised shape times ``weight``."""
    scale = np.where(grid >= 0, right, left)
    shape = np.exp(-np.abs(grid) / scale)
    return weight * shape / np.trapezoid(shape, grid)


def _split_moffat(grid, alpha, beta, skew):
    a = np.where(grid >= 0, alpha * (1 + skew), alpha * (1 - skew))
    return (1 + (grid / a) ** 2) ** -beta


def _gen_normal(grid, alpha, power):
    return np.exp(-((np.abs(grid) / alpha) ** power))


def _narrow_profile(name, grid):
    if name == "diffraction":
        core = _pupil_psf(grid, coma=1.6)
        core = core / np.trapezoid(core, grid)
        return core + _halo(grid, 0.05, 1.2, 3.5)
    if name == "undersampled":
        core = _gen_normal(grid, 0.5, 1.6)
        core = core / np.trapezoid(core, grid)
        return core + _halo(grid, 0.03, 2.0, 2.0)
    if name == "moffat":
        return _split_moffat(grid, 0.6, 2.5, 0.13)
    raise ValueError(name)


def _wide_profile(name, grid):
    """Defocused two-horned profiles; ``grid`` in units of the mode's FWHM."""
    if name == "diffraction":
        # Geometric image of an obscured pupil, brighter on one side, blurred by diffraction.
        pupil = (np.abs(grid) <= 0.5) & (np.abs(grid) >= 0.12)
        geometric = pupil * (1.0 + 0.5 * grid)
        kernel = _pupil_psf(grid / 0.06, coma=1.0)
        blurred = fftconvolve(geometric, kernel / kernel.sum(), mode="same")
        return blurred / np.trapezoid(blurred, grid) + _halo(grid, 0.1, 0.4, 0.9)
    if name == "undersampled":
        horns = 0.55 * _gen_normal(grid + 0.33, 0.05, 3.0) + 0.45 * _gen_normal(
            grid - 0.33, 0.05, 3.0
        )
        body = 0.3 * _gen_normal(grid, 0.3, 4.0)
        return horns + body
    if name == "moffat":
        return (
            0.58 * _split_moffat(grid + 0.32, 0.08, 2.5, 0.2)
            + 0.42 * _split_moffat(grid - 0.32, 0.08, 2.5, -0.1)
            + 0.1 * _split_moffat(grid, 0.25, 2.5, 0.0)
        )
    raise ValueError(name)


def _response(name):
    """Sample offsets (px from the pixel centre) and weights of a pixel's response."""
    if name == "undersampled":
        # Sensitivity 1 - 0.3 (2v)^2 + 0.1 (2v) inside the pixel, diffused (sigma 0.2 px).
        v = (np.arange(3 * _SUBSAMPLE) + 0.5) / _SUBSAMPLE - 1.5
        inner = np.where(np.abs(v) <= 0.5, 1 - 0.3 * (2 * v) ** 2 + 0.1 * (2 * v), 0.0)
        diffusion = np.exp(-0.5 * ((v[:, None] - v[None, :]) / 0.2) ** 2)
        diffusion /= diffusion.sum(axis=0, keepdims=True)
        weights = diffusion @ inner
        return v, weights / weights.sum()
    v = (np.arange(_SUBSAMPLE) + 0.5) / _SUBSAMPLE - 0.5
    return v, np.full(v.size, 1.0 / _SUBSAMPLE)


@dataclass(frozen=True)
class ProfileFamily:
    """A tabulated cross-dispersion profile family for one profile width regime.

    Attributes
    ----------
    name : str
    wide : bool
        Defocused (two-horned) variant.
    grid, density : ndarray
        Profile at unit FWHM, unit flux, centroid 0 (grid in FWHM units).
    fwhm_factor : float
        The family's FWHM relative to the mode's nominal FWHM.
    """

    name: str
    wide: bool
    grid: np.ndarray
    density: np.ndarray
    fwhm_factor: float

    def pixel_values(self, edges_centre, fwhm):
        """Pixel values of a unit-flux profile, for pixels at offsets from the centroid.

        Parameters
        ----------
        edges_centre : ndarray, shape ``(n_cross, ncols)``
            Pixel centres minus the profile's centroid, px.
        fwhm : ndarray, shape ``(ncols,)``
            The mode's nominal FWHM per column times the breathing factor, px.

        Returns
        -------
        ndarray, shape ``(n_cross, ncols)``
        """
        v, w = _response(self.name)
        width = np.asarray(fwhm, float) * self.fwhm_factor
        u = (edges_centre[..., None] + v) / width[None, :, None]
        density = np.interp(u, self.grid, self.density, left=0.0, right=0.0)
        return np.einsum("rck,k->rc", density, w) / width[None, :]


def get_family(name, nominal_fwhm):
    """The :class:`ProfileFamily` called ``name`` for a mode of nominal FWHM ``nominal_fwhm`` px."""
    if name not in FAMILIES or name == "default":
        raise ValueError(f"psf_family must be one of {FAMILIES}, got {name!r}.")
    wide = nominal_fwhm >= _WIDE_FWHM
    grid = np.arange(-_GRID_HALF, _GRID_HALF + _GRID_STEP / 2, _GRID_STEP)
    values = _wide_profile(name, grid) if wide else _narrow_profile(name, grid)
    unit_grid, density = _normalised(grid, values)
    # Wide profiles are drawn at the mode's width (the horns' span sets it); narrow ones at
    # the mode's FWHM, the undersampled family narrower still.
    factor = 0.8 if (name == "undersampled" and not wide) else 1.0
    return ProfileFamily(name, wide, unit_grid, density, factor)


def true_positions(centres, cross_shift):
    """True per-integration, per-column trace position: centroid of the continuous profile.

    Parameters
    ----------
    centres : ndarray, shape ``(nints, norders, n_disp)``
        Trace centre of every integration (the nominal centre at the column's dispersion
        coordinate minus the dispersion offset), px.
    cross_shift : ndarray, shape ``(nints,)``
        Cross-dispersion pointing offset, px.

    Returns
    -------
    ndarray, shape ``(nints, norders, n_disp)``
    """
    return centres + np.asarray(cross_shift, float)[:, None, None]
