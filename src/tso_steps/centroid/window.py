"""Locate the source in a median frame and choose a fit window from the PSF's size."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans
from scipy import ndimage

__all__ = [
    "FitWindow",
    "fill_nans",
    "find_window",
    "median_frame",
    "symmetric_com",
    "window_background",
]

# The window reaches this far past the radius where the azimuthal profile of the median
# frame drops below ``edge_fraction`` of its peak: room for jitter and the PSF's faint wings.
_MARGIN = 3.0
_MIN_RADIUS = 3.0


@dataclass(frozen=True)
class FitWindow:
    """A circular window around the source of a median frame.

    Attributes
    ----------
    x, y : float
        Centre of mass of the background-subtracted median frame inside the window,
        0-based pixels.
    radius : float
        Window radius, pixels.
    background : float
        Background of the median frame (median of the pixels outside the window), data units.
    """

    x: float
    y: float
    radius: float
    background: float

    def mask(self, shape):
        """Boolean image, True inside the window.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx)``.

        Returns
        -------
        ndarray of bool
        """
        yy, xx = np.indices(shape)
        return (xx - self.x) ** 2 + (yy - self.y) ** 2 <= self.radius**2

    def box(self, shape, pad=2):
        """Slices of the smallest box holding the window plus ``pad`` pixels, clipped to shape.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx)``.
        pad : int
            Extra pixels on every side.

        Returns
        -------
        tuple of slice
        """
        r = self.radius + pad
        y0 = max(int(np.floor(self.y - r)), 0)
        y1 = min(int(np.ceil(self.y + r)) + 1, shape[0])
        x0 = max(int(np.floor(self.x - r)), 0)
        x1 = min(int(np.ceil(self.x + r)) + 1, shape[1])
        return slice(y0, y1), slice(x0, x1)


def median_frame(data, mask=None, chunk_pixels=1 << 18):
    """NaN- and mask-aware median over integrations.

    Computed over slabs of whole rows (about ``chunk_pixels`` samples per slab) so the
    working copy stays small for long exposures.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
    mask : ndarray of bool, optional
        True where a sample must not be used.  Non-finite samples are always ignored.
    chunk_pixels : int
        Samples per slab (integrations x rows x columns).

    Returns
    -------
    ndarray, shape ``(ny, nx)``, float64
        NaN where a pixel has no usable sample.
    """
    nints, ny, nx = data.shape
    rows = max(1, chunk_pixels // max(nints * nx, 1))
    out = np.empty((ny, nx), dtype=np.float64)
    for y0 in range(0, ny, rows):
        slab = np.array(data[:, y0 : y0 + rows], dtype=np.float32)
        if mask is not None:
            slab[mask[:, y0 : y0 + rows]] = np.nan
        with warnings.catch_warnings():
            # an all-NaN pixel is expected (a bad column) and becomes NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            out[y0 : y0 + rows] = np.nanmedian(slab, axis=0)
    return out


def fill_nans(image):
    """Replace NaN pixels by a Gaussian-weighted mean of their neighbours (1 px sigma).

    Needed before spline interpolation, which spreads one NaN over the whole image.

    Parameters
    ----------
    image : ndarray, 2-D

    Returns
    -------
    ndarray
        A copy; pixels with no finite neighbour within a few pixels become 0.
    """
    out = np.asarray(image, dtype=np.float64)
    if np.isfinite(out).all():
        return out.copy()
    out = interpolate_replace_nans(out, Gaussian2DKernel(1.0), boundary="extend")
    return np.where(np.isfinite(out), out, 0.0)


def window_background(image, inside):
    """Median of the finite pixels outside a window (0 if fewer than 10 remain).

    Parameters
    ----------
    image : ndarray, 2-D
    inside : ndarray of bool
        True inside the window.

    Returns
    -------
    float
    """
    outside = image[~inside]
    outside = outside[np.isfinite(outside)]
    return float(np.median(outside)) if outside.size >= 10 else 0.0


def _com(image, weights_mask):
    """Centre of mass of ``image`` over ``weights_mask`` (finite pixels only)."""
    yy, xx = np.indices(image.shape)
    use = weights_mask & np.isfinite(image)
    w = image[use]
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("The median frame has no positive source flux in the search region.")
    return float((xx[use] * w).sum() / total), float((yy[use] * w).sum() / total)


def symmetric_com(image, missing, inside, x, y, n_iter=10):
    """Centre of mass inside a window, missing pixels filled from their point reflection.

    A pixel with no data (a dead column across the PSF) would pull a plain centre of mass
    away from itself; filling it with the (interpolated) value at its mirror position about
    the current centre assumes only that the PSF is point-symmetric, and is iterated with the
    centre.

    Parameters
    ----------
    image : ndarray, 2-D
        Background-subtracted image; values at ``missing`` pixels are ignored.
    missing : ndarray of bool
        Pixels without data.
    inside : ndarray of bool
        The window.
    x, y : float
        Starting centre, pixels of ``image``.
    n_iter : int
        Maximum iterations.

    Returns
    -------
    x, y : float
    """
    base = fill_nans(np.where(missing, np.nan, image))
    lost = missing & inside
    if not lost.any():
        return _com(base, inside)
    yb, xb = np.nonzero(lost)
    filled = base.copy()
    for _ in range(n_iter):
        coords = np.array([2.0 * y - yb, 2.0 * x - xb])
        filled[yb, xb] = ndimage.map_coordinates(base, coords, order=3, mode="nearest")
        x_new, y_new = _com(filled, inside)
        moved = np.hypot(x_new - x, y_new - y)
        x, y = x_new, y_new
        if moved < 1e-5:
            break
    return x, y


def _profile_edge(image, x, y, edge_fraction):
    """Radius where the azimuthal mean profile falls below ``edge_fraction`` of its peak."""
    yy, xx = np.indices(image.shape)
    r = np.hypot(xx - x, yy - y)
    finite = np.isfinite(image)
    rbin = np.floor(r[finite]).astype(int)
    sums = np.bincount(rbin, weights=image[finite])
    counts = np.bincount(rbin)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = sums / counts
    profile[counts == 0] = np.nan
    peak_at = int(np.nanargmax(profile))
    peak = profile[peak_at]
    below = np.nonzero(profile[peak_at:] < edge_fraction * peak)[0]
    if below.size == 0:
        return float(len(profile))
    return float(peak_at + below[0])


def find_window(image, *, center=None, radius=None, edge_fraction=0.01, n_iter=5):
    """Find the source in a median frame and choose a circular window around it.

    The source starts at the centre of mass of the pixels brighter than 20 % of the
    background-subtracted peak (this finds the middle of a defocused ring as well as an
    in-focus core), or at ``center``.  The radius is where the azimuthal mean profile drops
    below ``edge_fraction`` of its peak, plus 3 pixels.  The centre is then refined as the
    centre of mass inside the window, with the background re-measured outside it.

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
        Median frame, data units; NaN where unknown.
    center : tuple of float, optional
        ``(x, y)`` starting position, 0-based pixels.
    radius : float, optional
        Window radius in pixels (default: from the profile).
    edge_fraction : float
        Profile level, relative to its peak, that marks the PSF's edge.
    n_iter : int
        Centre-of-mass refinements.

    Returns
    -------
    FitWindow

    Raises
    ------
    ValueError
        If the image has no finite pixel or no positive source.
    """
    image = np.asarray(image, dtype=np.float64)
    if not np.isfinite(image).any():
        raise ValueError("The median frame is entirely NaN.")
    background = float(np.nanmedian(image))
    sub = image - background
    if center is None:
        peak = np.nanmax(sub)
        if not peak > 0:
            raise ValueError("The median frame has no source above its background.")
        x, y = _com(sub, sub > 0.2 * peak)
    else:
        x, y = float(center[0]), float(center[1])
    if radius is None:
        radius = max(_profile_edge(sub, x, y, edge_fraction) + _MARGIN, _MIN_RADIUS)
    for _ in range(n_iter):
        window = FitWindow(x, y, float(radius), background)
        inside = window.mask(image.shape)
        background = window_background(image, _grown(window, image))
        x_new, y_new = _com(image - background, inside)
        moved = np.hypot(x_new - x, y_new - y)
        x, y = x_new, y_new
        if moved < 1e-4:
            break
    return FitWindow(x, y, float(radius), background)


def _grown(window, image):
    """Window grown by 2 px: pixels kept out of the background estimate."""
    bigger = FitWindow(window.x, window.y, window.radius + 2.0, window.background)
    return bigger.mask(image.shape)
