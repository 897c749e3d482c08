"""Robust time-series statistics shared by the steps (outliers, jumps, background, 1/f).

All functions work on plain arrays whose first axis is time (integrations), ignore NaN and
masked samples, and never let a masked sample blank a statistic.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "MAD_TO_SIGMA",
    "fill_masked_in_time",
    "relative_flux",
    "robust_std",
    "rolling_median",
]

#: Ratio of the standard deviation to the median absolute deviation for a Gaussian.
MAD_TO_SIGMA = 1.482602218505602


def robust_std(values, axis=None, center=None):
    """Standard deviation estimated from the median absolute deviation, ignoring NaN.

    Parameters
    ----------
    values : array-like
    axis : int or tuple of int, optional
    center : array-like, optional
        Reference value(s) broadcastable against ``values``; default the NaN-median.

    Returns
    -------
    ndarray or float
        ``1.4826 * median(|values - center|)``; NaN where no finite value exists.
    """
    values = np.asarray(values, dtype=np.float64)
    if center is None:
        center = np.nanmedian(values, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        deviation = np.abs(values - center)
    return MAD_TO_SIGMA * np.nanmedian(deviation, axis=axis)


def fill_masked_in_time(series, mask=None):
    """Replace NaN or masked samples by linear interpolation along the first (time) axis.

    Each pixel's series is interpolated from its own unmasked samples; samples before the
    first or after the last good one take the nearest good value. A pixel with no good
    sample stays NaN.

    Parameters
    ----------
    series : ndarray, shape ``(ntime, ...)``
    mask : ndarray of bool, optional
        True where a sample must not be used (in addition to NaN).

    Returns
    -------
    ndarray of float32 or float64
        A filled copy (the dtype of ``series`` when floating, else float64).
    """
    series = np.asarray(series)
    dtype = series.dtype if np.issubdtype(series.dtype, np.floating) else np.float64
    filled = series.astype(dtype, copy=True)
    bad = ~np.isfinite(filled)
    if mask is not None:
        bad |= mask
    if not bad.any():
        return filled
    flat = filled.reshape(filled.shape[0], -1)
    bad_flat = bad.reshape(bad.shape[0], -1)
    columns = np.flatnonzero(bad_flat.any(axis=0))
    time = np.arange(flat.shape[0])
    for column in columns:
        good = ~bad_flat[:, column]
        if good.any():
            flat[~good, column] = np.interp(time[~good], time[good], flat[good, column])
        else:
            flat[:, column] = np.nan
    return filled


def rolling_median(series, window, mask=None):
    """Running median along the first (time) axis, robust to NaN and masked samples.

    Masked and NaN samples are first replaced by interpolation from the pixel's own good
    neighbours in time (:func:`fill_masked_in_time`), so a bad sample can neither blank nor
    drag the median; the ends of the series are reflected.

    Parameters
    ----------
    series : ndarray, shape ``(ntime, ...)``
    window : int
        Number of samples in the window (an even number is increased by one).
    mask : ndarray of bool, optional
        True where a sample must not be used.

    Returns
    -------
    ndarray
        Same shape as ``series``.
    """
    window = int(window)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if window % 2 == 0:
        window += 1
    window = min(window, 2 * (series.shape[0] // 2) + 1)
    filled = fill_masked_in_time(series, mask)
    size = (window,) + (1,) * (filled.ndim - 1)
    all_bad = ~np.isfinite(filled)
    if all_bad.any():
        filled[all_bad] = 0.0
    result = ndimage.median_filter(filled, size=size, mode="reflect")
    result[all_bad] = np.nan
    return result


def relative_flux(cube, mask=None, bright_quantile=0.5):
    """Each integration's flux relative to the exposure's median frame.

    The ratio is the median over well-exposed pixels (the brightest half of the median
    frame by default) of ``frame / median_frame``, so a transit, an eclipse or a ramp shows
    up as a per-integration scale and not as a change of individual pixels.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, ny, nx)`` or ``(nints, n)``
    mask : ndarray of bool, optional
        True where a sample must not be used.
    bright_quantile : float
        Pixels whose median-frame level is above this quantile of the positive median-frame
        values are used (0.5: the brightest half).

    Returns
    -------
    ndarray of float64, shape ``(nints,)``
        Scale factors with median 1; 1 where nothing could be measured.
    """
    data = np.asarray(cube, dtype=np.float64).reshape(cube.shape[0], -1)
    if mask is not None:
        data = np.where(mask.reshape(data.shape), np.nan, data)
    reference = np.nanmedian(data, axis=0)
    positive = np.isfinite(reference) & (reference > 0)
    if not positive.any():
        return np.ones(cube.shape[0])
    threshold = np.quantile(reference[positive], bright_quantile)
    bright = positive & (reference >= threshold)
    ratio = np.nanmedian(data[:, bright] / reference[bright], axis=1)
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)
    norm = np.nanmedian(ratio)
    if not np.isfinite(norm) or norm == 0:
        return np.ones(cube.shape[0])
    ratio = ratio / norm
    return np.where(np.isfinite(ratio), ratio, 1.0)
