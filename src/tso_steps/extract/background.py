"""Local background under a trace: band pixels outside the aperture, smoothed along it."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

__all__ = ["column_levels", "smooth_background"]


def column_levels(data, good, offset, shifts, halfwidth):
    """Median of the band pixels outside the aperture, per integration and column.

    Parameters
    ----------
    data : ndarray, shape ``(nints, nrow, n_disp)``
    good : ndarray of bool, shape ``(nints, nrow, n_disp)``
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels.
    shifts : ndarray, shape ``(nints,)``
    halfwidth : float
        Aperture half-width, pixels: pixels more than ``halfwidth + 1`` from the trace count.

    Returns
    -------
    level : ndarray, shape ``(nints, n_disp)``
        NaN where no pixel is available.
    count : ndarray of int, shape ``(nints, n_disp)``
    """
    rel = np.abs(offset[None] - np.asarray(shifts, float)[:, None, None])
    outer = good & (rel > halfwidth + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        level = np.nanmedian(np.where(outer, data, np.nan), axis=1)
    return level, outer.sum(axis=1)


def smooth_background(level, count, window=31, static=True):
    """Background per integration and column from :func:`column_levels`.

    A running mean over ``window`` columns (weighted by the number of pixels): the
    background is smooth along the dispersion.  With ``static`` the per-column levels are
    first median-combined over integrations: a background measured from about as many
    pixels as the aperture holds would double the white-noise variance of a
    per-integration subtraction, while a static one adds almost none (readout-stripe offsets
    that change every integration are the 1/f-aware fit's job).

    Parameters
    ----------
    level : ndarray, shape ``(nints, n_disp)``
    count : ndarray of int, shape ``(nints, n_disp)``
    window : int
        Columns averaged (1: each column on its own).
    static : bool
        One background for all integrations (the median over integrations).

    Returns
    -------
    ndarray, shape ``(nints, n_disp)``
        Per-pixel background level (0 where no pixel is available).
    """
    if static:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            level = np.broadcast_to(np.nanmedian(level, axis=0), level.shape)
        count = np.broadcast_to(np.sum(count, axis=0), count.shape)
    have = np.isfinite(level) & (count > 0)
    weight = np.where(have, count, 0).astype(float)
    value = np.where(have, level, 0.0) * weight
    size = max(int(window), 1)
    if size > 1:
        value = ndimage.uniform_filter1d(value, size, axis=-1, mode="constant")
        weight = ndimage.uniform_filter1d(weight, size, axis=-1, mode="constant")
    with np.errstate(all="ignore"):
        return np.where(weight > 0, value / weight, 0.0)
