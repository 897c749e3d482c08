"""Pixel-integrated profile model for undersampled traces.

When the cross-dispersion core is narrower than about two pixels (NIRSpec, NIRCam grism,
MIRI LRS), the sampled profile does not determine how pixel values change under a sub-pixel
shift: a spline or Fourier interpolant of the samples gets the derivative wrong by 5-50 %,
which scales every measured shift.  Here the continuous profile is one split-normal core
(a Gaussian with different widths on either side, continuous at its peak, so skewed cores
such as a coma-distorted diffraction pattern are represented) peaking at the reference
centre, plus a non-negative mixture of much broader split-normal wings (a ladder
of widths, each with a few left/right width ratios), integrated exactly over each pixel and
fitted per block of columns to the exposure's own mean frame by non-negative least squares.
Its derivative with respect to the centre is then analytic at every sub-pixel phase.

The single core is deliberate: a nearly horizontal trace samples every column of a block at
almost the same sub-pixel phase, and there a free mixture of narrow components fits the
pixel values equally well with different pixel-edge values, i.e. different derivatives;
the mean frame's noise then picks one.  The core's width and skew are chosen by
chi-square on a grid (coordinate descent); wings start at ``WING_RATIO`` core widths, a
separation that keeps them from reopening that degeneracy whatever the profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.special import ndtr

__all__ = ["PixelProfiles", "fit_pixel_profiles"]

SIGMAS = 0.25 * 2.0 ** (np.arange(11) / 2.0)  # wing widths, 0.25 to 8 px, ratio 2**0.5
WING_SKEWS = (0.7, 1.0, 1.0 / 0.7)  # right/left width ratios of the wings
CORE_SIGMAS = 0.3 * 1.03 ** np.arange(60)  # core (geometric-mean) widths, 0.3 to 1.7 px
CORE_SKEWS = 1.15 ** np.arange(-5, 6)  # core right/left width ratios, 0.5 to 2
# Wings at least this many times broader than the core: closer ones reopen the degeneracy.
WING_RATIO = 2.5


def _split_cdf(x, left, right):
    """Cumulative distribution of a unit split normal (widths ``left``/``right``), peak at 0."""
    total = left + right
    neg = 2.0 * left / total * ndtr(np.minimum(x, 0.0) / left)
    pos = right / total * (2.0 * ndtr(np.maximum(x, 0.0) / right) - 1.0)
    return neg + pos


def _split_pdf(x, left, right):
    """Density of the split normal of :func:`_split_cdf`."""
    width = np.where(x < 0, left, right)
    return 2.0 / (np.sqrt(2.0 * np.pi) * (left + right)) * np.exp(-0.5 * (x / width) ** 2)


def _basis(u, left, right, offset=0.0):
    """Pixel integrals of unit split normals peaking at ``offset``, pixel centres at ``u``."""
    u = np.asarray(u, dtype=np.float64)[..., None] - np.asarray(offset)[..., None]
    return _split_cdf(u + 0.5, left, right) - _split_cdf(u - 0.5, left, right)


def _basis_slope(u, left, right, offset=0.0):
    """Derivative of :func:`_basis` with respect to ``u``."""
    u = np.asarray(u, dtype=np.float64)[..., None] - np.asarray(offset)[..., None]
    return _split_pdf(u + 0.5, left, right) - _split_pdf(u - 0.5, left, right)


def _split_widths(sigma, skew):
    """Left and right widths of geometric-mean width ``sigma`` and ratio ``skew``."""
    return sigma / np.sqrt(skew), sigma * np.sqrt(skew)


@dataclass
class PixelProfiles:
    """Per-column pixel-integrated profile of one order.

    Attributes
    ----------
    weights : ndarray, shape ``(n_disp, ncomp)``
        Mixture weights per column (the column's flux times the profile; 0 where not traced).
    background : ndarray, shape ``(n_disp,)``
        Constant background per column (data units).
    left, right : ndarray, shape ``(n_disp, ncomp)``
        Split-normal widths of the components on either side of their peak, pixels.
    offset : ndarray, shape ``(n_disp,)``
        Peak of every component relative to the reference centre, pixels.
    """

    weights: np.ndarray
    background: np.ndarray
    left: np.ndarray
    right: np.ndarray
    offset: np.ndarray

    def value(self, u, columns):
        """Model pixel values (without background) at offsets ``u`` from the centre."""
        basis = _basis(u, self.left[columns], self.right[columns], self.offset[columns])
        return np.einsum("...k,...k->...", basis, self.weights[columns])

    def slope(self, u, columns):
        """Derivative of :meth:`value` with respect to ``u``."""
        basis = _basis_slope(u, self.left[columns], self.right[columns], self.offset[columns])
        return np.einsum("...k,...k->...", basis, self.weights[columns])

    def centroid(self, columns):
        """Centroid of the continuous profile relative to the reference centre, pixels."""
        left, right = self.left[columns], self.right[columns]
        # Mean of a split normal: sqrt(2/pi) (right - left), about its peak.
        mean = np.sqrt(2.0 / np.pi) * (right - left)
        w = self.weights[columns]
        total = np.sum(w, axis=-1)
        with np.errstate(all="ignore"):
            c = np.sum(w * mean, axis=-1) / total
        return np.where(total > 0, c, 0.0) + self.offset[columns]


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


def _components(core, skew, wing_list):
    """Left/right widths of the core ``(core, skew)`` and of the wings ``wing_list``."""
    cl, cr = _split_widths(core, skew)
    left = np.concatenate([[cl], [w[0] for w in wing_list]])
    right = np.concatenate([[cr], [w[1] for w in wing_list]])
    return left, right


def _wings(core):
    sig = SIGMAS[SIGMAS >= WING_RATIO * core]
    return [_split_widths(s, k) for s in sig for k in WING_SKEWS]


def _core_and_wings(u, values, sw):
    """Core width and skew and the non-negative weights of the core plus broader wings.

    Coordinate descent on the grids ``CORE_SIGMAS`` x ``CORE_SKEWS``:
    each trial is one non-negative least-squares fit of the core and the wings at least
    ``WING_RATIO`` times broader, scored by its residual norm.

    Returns
    -------
    left, right : ndarray, shape ``(ncomp,)``
        Component widths (px); unused slots have weight 0.
    weights : ndarray, shape ``(ncomp,)``
    offset : float
    """
    target = values * sw

    def trial(core, skew, offset):
        left, right = _components(core, skew, _wings(core))
        design = _basis(u, left, right, offset) * sw[:, None]
        coef, rnorm = nnls(design, target, maxiter=2000)
        return rnorm, (left, right, coef, offset)

    state = {"core": 0.8, "skew": 1.0, "offset": 0.0}
    # The peak stays at the reference centre: a free offset trades against the skew and the
    # pixel phase (NIRSpec diffraction-like profile: shift scale 0.68 with it, 1.02 without).
    grids = {"core": CORE_SIGMAS, "skew": CORE_SKEWS}
    best = None
    for _ in range(2):
        for name, grid in grids.items():
            results = [trial(**{**state, name: value}) for value in grid]
            k = int(np.argmin([r[0] for r in results]))
            state[name] = grid[k]
            best = results[k][1]
    left, right, coef, offset = best
    ncomp = 1 + SIGMAS.size * len(WING_SKEWS)
    out_l, out_r, out_w = np.ones(ncomp), np.ones(ncomp), np.zeros(ncomp)
    out_l[: left.size], out_r[: right.size], out_w[: coef.size] = left, right, coef
    return out_l, out_r, out_w, offset


def _fit_shapes(image, weight, centers, halfwidth, block):
    """Component widths and weights per block of columns around fixed centres."""
    n_cross, n_disp = image.shape
    ncomp = 1 + SIGMAS.size * len(WING_SKEWS)
    weights = np.zeros((n_disp, ncomp))
    left = np.ones((n_disp, ncomp))
    right = np.ones((n_disp, ncomp))
    offset = np.zeros(n_disp)
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
        lw, rw, shape, off = _core_and_wings(u[inside], norm[inside], np.sqrt(w[inside]))
        weights[part] = flux[:, None] * shape[None, :]
        left[part], right[part], offset[part] = lw, rw, off
        background[part] = bkg
    return PixelProfiles(weights, background, left, right, offset)
