"""Clipped, inverse-variance weighted levels along one axis (plain numpy)."""

from __future__ import annotations

import warnings

import numpy as np

from tso_steps.stats import nanmedian_last, subsample_last

__all__ = ["MEDIAN_SAMPLES", "robust_level", "start_level"]

#: Samples of a row the starting median looks at (every k-th of a longer row).
MEDIAN_SAMPLES = 4096


def robust_level(values, weights, kappa=4.0, niter=2, start=None):
    """Clipped, inverse-variance weighted mean along the last axis.

    Starts from the median of the usable samples (or ``start``), then ``niter`` times
    rejects samples farther than ``kappa`` standard deviations (``1 / sqrt(weight)``) and
    takes the weighted mean of the rest.

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
    start : ndarray, optional
        The starting level, ``values.shape[:-1]`` (default: the median of the usable
        samples, of about :data:`MEDIAN_SAMPLES` of them in long rows); given when
        ``values`` holds only some of a row's samples (:func:`start_level`).

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
    # converted before broadcasting: weights shared by all frames are converted once
    weights = np.asarray(weights, dtype=np.float32)
    usable = (weights > 0) & np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no usable pixel
        center = start_level(values, usable) if start is None else np.asarray(start)
        # squared distances against kappa**2 / weight: no square roots of the whole array
        x = np.where(usable, values, np.float32(0.0))
        wx = np.where(usable, weights, np.float32(0.0))
        kappa2 = np.float32(kappa**2)
        keep = usable
        for _ in range(max(int(niter), 1)):
            # in place: the same float32 operations as offset * offset * wx, fewer arrays
            offset = x - center[..., None].astype(np.float32)
            offset *= offset
            offset *= wx
            keep = offset <= kappa2
            keep &= usable
            w = np.where(keep, wx, np.float32(0.0))
            total = w.sum(axis=-1, dtype=np.float64)
            w *= x
            center = np.where(total > 0, w.sum(axis=-1, dtype=np.float64) / total, np.nan)
    return center, keep.sum(axis=-1), total


def start_level(values, usable):
    """The starting level of :func:`robust_level`: the median of the usable samples.

    Long rows are subsampled to about :data:`MEDIAN_SAMPLES` values (every k-th sample,
    before masking, so the samples looked at do not depend on which are usable).

    Parameters
    ----------
    values : ndarray
    usable : ndarray of bool, broadcastable to ``values``

    Returns
    -------
    ndarray, ``values.shape[:-1]``
        NaN where no sample is usable.
    """
    usable = np.broadcast_to(usable, values.shape)
    sub = subsample_last(values, MEDIAN_SAMPLES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nanmedian_last(
            np.where(subsample_last(usable, MEDIAN_SAMPLES), sub, np.float32(np.nan))
        )
