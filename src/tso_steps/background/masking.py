"""The source mask of the background fit: trace or centroid band plus a thresholded image."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tso_steps.masks import image_mask

__all__ = ["flattened_image", "illuminated_pixels"]


def flattened_image(image, line_axis=0, percentile=20.0):
    """An image with a low percentile of every line subtracted.

    A strong background step or gradient would pass :func:`~tso_steps.masks.image_mask`'s
    threshold as if it were source; the low percentile of each line across the dispersion
    follows the background but not the (narrow) trace.

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
    line_axis : int
        Axis along which each line runs: 0 (columns, spectrum along x; imaging) or 1 (rows,
        spectrum along y).
    percentile : float
        Percentile of each line taken as its background.

    Returns
    -------
    ndarray, shape ``(ny, nx)``
    """
    image = np.asarray(image, dtype=np.float64)
    with np.errstate(all="ignore"):
        level = np.nanpercentile(image, percentile, axis=line_axis, keepdims=True)
    return image - np.nan_to_num(level)


def illuminated_pixels(image, line_axis=0, n_sigma=3.0, dilation=4, bad=None, streak=15):
    """Pixels lit by any source in a (median) image whose background varies smoothly.

    Two thresholds are combined: one on the image median-filtered over 3 x 3 pixels
    (compact sources, zeroth orders), and, for spectra, one on the image median-filtered
    over 3 x ``streak`` pixels along the dispersion, which reaches about ``sqrt(streak / 3)``
    times fainter and so catches the faint wings of a trace that would otherwise pull a
    background fit up.

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
        Median image, any units; NaN ignored.
    line_axis : int or None
        See :func:`flattened_image`; None for imaging (no dispersion: no streak filter).
    n_sigma : float
        Threshold above the background, robust sigma.
    dilation : int
        Pixels of dilation around the thresholded pixels.
    bad : ndarray of bool, optional
        Pixels excluded from the statistics.
    streak : int
        Length along the dispersion of the second filter (1: none).

    Returns
    -------
    ndarray of bool
    """
    flat = flattened_image(image, 0 if line_axis is None else line_axis)
    lit = image_mask(flat, n_sigma=n_sigma, dilation=dilation, bad=bad)
    if line_axis is not None and streak > 1:
        size = (3, streak) if line_axis == 0 else (streak, 3)
        filled = np.where(np.isfinite(flat), flat, np.nanmedian(flat))
        smooth = ndimage.median_filter(filled, size=size, mode="nearest")
        if bad is not None:
            smooth = np.where(bad, np.nan, smooth)
        lit |= image_mask(smooth, n_sigma=n_sigma, dilation=dilation, smooth=1, bad=bad)
    return lit
