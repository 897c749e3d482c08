"""The empirical cross-dispersion profile of an order: :class:`Template` and how it is built.

Columns of the median frame are spline-resampled around their centres and median-combined
(see :mod:`tso_steps.trace.reference` for the method and its sources).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tso_steps.stats import FWHM_PER_SIGMA
from tso_steps.trace.orders import _fwhm

__all__ = ["Template", "build_template", "fill_bad", "spline_coefficients"]

# FWHM^2 of a one-pixel box (for a Gaussian core): removed from the pixelated profile's FWHM.
_PIXEL_FWHM2 = FWHM_PER_SIGMA**2 / 12.0
_STEP = 0.05  # template grid spacing, pixels


@dataclass
class Template:
    """Empirical cross-dispersion profile of one order (unit integral, centred on 0).

    Attributes
    ----------
    u : ndarray
        Offsets from the centre, pixels (grid step 0.05 px).
    value, slope : ndarray
        Profile and its derivative on ``u``.
    fwhm_pixelated : float
        FWHM of the pixel-integrated profile, pixels.
    support : float
        Half-extent of the profile's main lobe (down to 1 % of its peak), pixels.
    """

    u: np.ndarray
    value: np.ndarray
    slope: np.ndarray
    fwhm_pixelated: float
    support: float = np.inf

    @property
    def fwhm(self):
        """float : FWHM with the one-pixel box removed in quadrature (exact for a Gaussian)."""
        return float(np.sqrt(max(self.fwhm_pixelated**2 - _PIXEL_FWHM2, 0.25)))

    def __call__(self, u, derivative=False):
        """Profile (or its derivative) at offsets ``u``; zero outside the grid."""
        table = self.slope if derivative else self.value
        return np.interp(u, self.u, table, left=0.0, right=0.0)


def fill_bad(image, good):
    """Replace bad pixels by linear interpolation along the dispersion (for splines only).

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
    good : ndarray of bool, same shape

    Returns
    -------
    ndarray
        A copy; rows without a good pixel are 0.
    """
    filled = np.where(good, image, np.nan)
    cols = np.arange(image.shape[1])
    for row in np.flatnonzero((~good).any(axis=1)):
        ok = good[row]
        filled[row] = np.interp(cols, cols[ok], image[row, ok]) if ok.any() else 0.0
    return filled


def spline_coefficients(image):
    """Cubic spline coefficients of an image, as :func:`build_template` interpolates it.

    For callers that build several templates from one image (one per segment of columns):
    filtering the whole image once instead of once per template.
    """
    return ndimage.spline_filter(image, order=3)


def build_template(image, centers, halfwidth, centre=None, coeffs=None):
    """Empirical profile: columns spline-resampled around their centres and median-combined.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Bad pixels already filled (no NaN).
    centers : ndarray, shape ``(n_disp,)``
        Current centre per column (NaN: column not used).
    halfwidth : float
        Half-extent of the template, pixels.
    centre : callable, optional
        ``centre(u, value) -> float``: where the profile ``value`` sampled on offsets ``u``
        (pixels) has its centre; the template is shifted so that this point is 0, so column
        fits return centres in that convention.  NaN rejects the template.  Default: the
        midpoint of the half-maximum edges of the main lobe.
    coeffs : ndarray, optional
        ``spline_coefficients(image)``, when the caller already has them.

    Returns
    -------
    Template or None
        None when the columns hold no positive flux.
    """
    cols = np.flatnonzero(np.isfinite(centers))
    u = np.arange(-halfwidth - 2.0, halfwidth + 2.0 + _STEP / 2, _STEP)
    coeffs = spline_coefficients(image) if coeffs is None else coeffs
    yy = centers[cols][:, None] + u[None, :]
    xx = np.broadcast_to(cols[:, None].astype(np.float64), yy.shape)
    samples = ndimage.map_coordinates(
        coeffs, [yy.ravel(), xx.ravel()], order=3, mode="mirror", prefilter=False
    )
    samples = samples.reshape(yy.shape)
    inside = (yy >= 0) & (yy <= image.shape[0] - 1)
    edge = np.abs(u) > halfwidth
    with np.errstate(all="ignore"):
        background = np.nanmedian(np.where(edge[None, :] & inside, samples, np.nan), axis=1)
    samples = samples - np.where(np.isfinite(background), background, 0.0)[:, None]
    norm = np.sum(np.where(edge, 0.0, samples), axis=1) * _STEP
    keep = norm > 0
    samples = np.where(inside, samples / np.where(keep, norm, 1.0)[:, None], np.nan)[keep]
    if not keep.any():
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = np.nanmedian(samples, axis=0)
    value = np.where(np.isfinite(value) & ~edge, value, 0.0)
    if not value.max() > 0:
        return None
    # Default centre: midpoint of the half-maximum edges of the main lobe.  For a symmetric
    # profile this is its centre of symmetry; for SOSS's two-horned profile, whose horn
    # heights change along the order, it does not follow the horns (a centroid in a window
    # does, by up to 1 px on the real program 1512 frame), and a neighbouring order or
    # contaminant inside the fitting window does not enter it.
    centre = (centre or _edge_centre)(u, value)
    if not np.isfinite(centre):
        return None
    shifted = np.interp(u, u - centre, value, left=0.0, right=0.0)
    shifted /= shifted.sum() * _STEP
    return Template(
        u, shifted, np.gradient(shifted, _STEP), _fwhm(shifted, _STEP), _support(u, shifted)
    )


def _edge_centre(u, value):
    """Midpoint of the outermost half-maximum crossings of the profile's main lobe."""
    peak = int(np.argmax(value))
    half = value[peak] / 2.0
    labels, _ = ndimage.label(value >= 0.2 * value[peak])
    lobe = np.flatnonzero((labels == labels[peak]) & (value >= half))
    lo, hi = lobe[0], lobe[-1]
    if lo == 0 or hi == value.size - 1:
        return np.nan
    left = u[lo - 1] + (half - value[lo - 1]) / (value[lo] - value[lo - 1]) * _STEP
    right = u[hi] + (value[hi] - half) / (value[hi] - value[hi + 1]) * _STEP
    return 0.5 * (left + right)


def _support(u, value, level=0.01):
    """Half-extent about 0 of the samples of ``value`` above ``level`` x peak.

    The outermost samples, not the run holding the peak: a profile whose middle dips below
    the level (an obscured or two-horned pupil image) keeps both of its sides in the window.
    """
    above = u[value >= level * value.max()]
    return float(max(-above.min(), above.max()))
