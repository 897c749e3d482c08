"""Pixel-integrated symmetric profile model for undersampled traces.

When the cross-dispersion core is narrower than about two pixels (NIRSpec, NIRCam grism,
MIRI LRS), the sampled profile does not determine how pixel values change under a sub-pixel
shift: a spline or Fourier interpolant of the samples gets the derivative wrong by 5-50 %,
which scales every measured shift.  Here the continuous profile is one centred Gaussian
core plus a non-negative mixture of much broader centred Gaussian wings (a ladder of
widths), integrated exactly over each pixel, fitted per block of columns to the exposure's
own mean frame by non-negative least squares.  Its derivative with respect to the centre
is then analytic at every sub-pixel phase.

The single core is deliberate: a nearly horizontal trace samples every column of a block at
almost the same sub-pixel phase, and there a free mixture of narrow components fits the
pixel values equally well with different pixel-edge values, i.e. different derivatives;
the mean frame's noise then picks one, and the shifts came out 3-7 % too large on NIRSpec.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.special import ndtr

__all__ = ["PixelProfiles", "fit_pixel_profiles"]

SIGMAS = 0.25 * 2.0 ** (np.arange(21) / 4.0)  # wing widths, 0.25 to 8 px, ratio 2**0.25
CORE_SIGMAS = 0.3 * 1.02 ** np.arange(90)  # core widths tried, 0.3 to 1.75 px
# Wings at least this many times broader than the core: closer ones reopen the degeneracy
# (1.5 left a 3-6 % scale error on NIRSpec; 2.5 and 3 give 0.99-1.00).
WING_RATIO = 2.5


def _basis(u, sigmas=SIGMAS):
    """Pixel integrals of unit Gaussians centred at 0, for pixel centres at offsets ``u``."""
    u = np.asarray(u, dtype=np.float64)[..., None]
    return ndtr((u + 0.5) / sigmas) - ndtr((u - 0.5) / sigmas)


def _basis_slope(u, sigmas=SIGMAS):
    """Derivative of :func:`_basis` with respect to ``u``."""
    u = np.asarray(u, dtype=np.float64)[..., None]
    norm = 1.0 / np.sqrt(2.0 * np.pi)
    return (
        norm
        * (np.exp(-0.5 * ((u + 0.5) / sigmas) ** 2) - np.exp(-0.5 * ((u - 0.5) / sigmas) ** 2))
        / sigmas
    )


@dataclass
class PixelProfiles:
    """Per-column pixel-integrated profile of one order.

    Attributes
    ----------
    weights : ndarray, shape ``(n_disp, ncomp)``
        Mixture weights per column (the column's flux times the profile; 0 where not traced).
    sigmas : ndarray, shape ``(n_disp, ncomp)``
        Gaussian widths of the components per column, pixels.
    background : ndarray, shape ``(n_disp,)``
        Constant background per column (data units).
    """

    weights: np.ndarray
    background: np.ndarray
    sigmas: np.ndarray

    def value(self, u, columns):
        """Model pixel values (without background) at offsets ``u`` from the centre."""
        return np.einsum("...k,...k->...", _basis(u, self.sigmas[columns]), self.weights[columns])

    def slope(self, u, columns):
        """Derivative of :meth:`value` with respect to ``u``."""
        return np.einsum(
            "...k,...k->...", _basis_slope(u, self.sigmas[columns]), self.weights[columns]
        )


def fit_pixel_profiles(image, weight, centers, halfwidth, block=32):
    """Fit the pixel-integrated mixture profile to blocks of columns of the mean frame.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Mean frame (bad pixels filled; their ``weight`` is 0).
    weight : ndarray, shape ``(n_cross, n_disp)``
        Inverse variance.
    centers : ndarray, shape ``(n_disp,)``
        Centres (NaN: column not traced).
    halfwidth : float
        Pixels within this distance of the centre are fitted.
    block : int
        Columns sharing one normalised profile shape (their fluxes are fitted separately).

    Returns
    -------
    PixelProfiles
    """
    return _fit_shapes(image, weight, centers, halfwidth, block)


def _core_and_wings(u, values, sw):
    """Widths and non-negative weights of one Gaussian core plus broader wings.

    The core width is chosen by chi-square on the ``CORE_SIGMAS`` grid (the pixel values of
    a single pixel-integrated Gaussian do determine its width); wings are the ``SIGMAS``
    at least ``WING_RATIO`` times broader (see the module docstring for why).

    Returns
    -------
    sigmas, weights : ndarray, shape ``(SIGMAS.size + 1,)``
        Component widths (px) and weights; unused slots have weight 0.
    """
    best, best_chi2 = None, np.inf
    target = values * sw
    for core in CORE_SIGMAS:
        wings = SIGMAS[SIGMAS >= WING_RATIO * core]
        sig = np.concatenate([[core], wings])
        design = _basis(u, sig) * sw[:, None]
        coef, rnorm = nnls(design, target, maxiter=2000)
        if rnorm < best_chi2:
            best, best_chi2 = (core, wings, coef), rnorm
    core, wings, coef = best
    sigmas = np.ones(SIGMAS.size + 1)
    shape = np.zeros(SIGMAS.size + 1)
    sigmas[: wings.size + 1] = np.concatenate([[core], wings])
    shape[: wings.size + 1] = coef
    return sigmas, shape


def _fit_shapes(image, weight, centers, halfwidth, block):
    """Component widths and weights per block of columns around fixed centres."""
    n_cross, n_disp = image.shape
    nsig = SIGMAS.size + 1
    weights = np.zeros((n_disp, nsig))
    sigmas = np.ones((n_disp, nsig))
    background = np.zeros(n_disp)
    cols = np.flatnonzero(np.isfinite(centers))
    rows = np.arange(n_cross, dtype=np.float64)
    for part in np.array_split(cols, max(int(round(cols.size / block)), 1)):
        if part.size == 0:
            continue
        # Column fluxes and backgrounds first (box sums), then one shape per block.
        u = rows[:, None] - centers[part][None, :]
        inside = np.abs(u) <= halfwidth
        ring = (np.abs(u) > halfwidth) & (np.abs(u) <= halfwidth + 4)
        values = image[:, part]
        bkg = np.array(
            [np.median(v[r]) if r.any() else 0.0 for v, r in zip(values.T, ring.T, strict=True)]
        )
        flux = np.sum(np.where(inside, values - bkg, 0.0), axis=0)
        ok = flux > 0
        if not ok.any():
            continue
        norm = (values - bkg) / np.where(ok, flux, 1.0)
        w = weight[:, part] * flux**2 * inside * ok
        sig, shape = _core_and_wings(u[inside], norm[inside], np.sqrt(w[inside]))
        weights[part] = flux[:, None] * shape[None, :]
        sigmas[part] = sig
        background[part] = bkg
    return PixelProfiles(weights, background, sigmas)
