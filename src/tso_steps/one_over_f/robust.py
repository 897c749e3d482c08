"""Robust, weighted statistics along one axis, fast on many short rows (plain numpy)."""

from __future__ import annotations

import warnings

import numpy as np

from tso_steps.stats import MAD_TO_SIGMA

__all__ = ["mad_std", "nanmedian", "robust_level"]


def robust_level(values, weights, kappa=4.0, niter=2):
    """Clipped, inverse-variance weighted mean along the last axis.

    Starts from the median of the usable samples, then ``niter`` times rejects samples
    farther than ``kappa`` standard deviations (``1 / sqrt(weight)``) and takes the weighted
    mean of the rest.

    Parameters
    ----------
    values : ndarray
        Samples; NaN samples are ignored.
    weights : ndarray, broadcastable to ``values``
        Inverse variances (``1 / unit**2``); 0 excludes a sample.
    kappa : float
        Clipping threshold in standard deviations.
    niter : int
        Clipping iterations.

    Returns
    -------
    level : ndarray
        ``values.shape[:-1]``; NaN where no sample is usable.
    count : ndarray of int
        Samples kept.
    total : ndarray
        Sum of the weights kept: ``1 / total`` is the variance of the level.
    """
    values = np.asarray(values, dtype=np.float32)
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float32), values.shape)
    usable = (weights > 0) & np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no usable pixel
        center = _nanmedian_last(np.where(usable, values, np.float32(np.nan)))
        # squared distances against kappa**2 / weight: no square roots of the whole array
        x = np.where(usable, values, np.float32(0.0))
        wx = np.where(usable, weights, np.float32(0.0))
        kappa2 = np.float32(kappa**2)
        keep = usable
        for _ in range(max(int(niter), 1)):
            offset = x - center[..., None].astype(np.float32)
            keep = usable & (offset * offset * wx <= kappa2)
            w = np.where(keep, wx, np.float32(0.0))
            total = w.sum(axis=-1, dtype=np.float64)
            center = np.where(total > 0, (w * x).sum(axis=-1, dtype=np.float64) / total, np.nan)
    return center, keep.sum(axis=-1), total


def _nanmedian_last(x, max_samples=4096):
    """NaN-median along the last axis by sorting.

    Much faster than ``np.nanmedian`` on many short rows; long rows are subsampled (used to
    start the clipping, where an approximate median is enough).
    """
    step = max(1, x.shape[-1] // max_samples)
    ordered = np.sort(x[..., ::step], axis=-1)  # NaN sort to the end
    count = np.isfinite(ordered).sum(axis=-1)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0)[..., None] // 2, axis=-1)
    high = np.take_along_axis(ordered, (count // 2)[..., None], axis=-1)
    median = 0.5 * (low + high)[..., 0]
    return np.where(count > 0, median, np.nan)


def nanmedian(x, axis=-1, max_samples=None):
    """NaN-ignoring median along one axis, by sorting (fast for many short rows).

    Parameters
    ----------
    x : ndarray
    axis : int
    max_samples : int, optional
        Subsample longer axes to about this many values (an approximate median).

    Returns
    -------
    ndarray
        NaN where no finite value exists.
    """
    moved = np.moveaxis(np.asarray(x), axis, -1)
    if max_samples:
        return _nanmedian_last(moved, max_samples)
    return _nanmedian_last(moved, moved.shape[-1] + 1)


def mad_std(x, axis=-1, max_samples=None):
    """Robust standard deviation (1.4826 x MAD) along one axis, ignoring NaN."""
    x = np.moveaxis(np.asarray(x, dtype=np.float32), axis, -1)
    center = nanmedian(x, -1, max_samples)
    return MAD_TO_SIGMA * nanmedian(np.abs(x - center[..., None]), -1, max_samples)
