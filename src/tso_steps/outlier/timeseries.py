"""Fast masked time-series primitives on blocks of pixels.

Every function here takes a block ``y`` of shape ``(npix, ntime)``: one row per pixel (or
spectral bin), time along the last, contiguous axis, because the rank selections that
dominate the cost are several times faster along a contiguous axis.  ``bad`` is a boolean
array of the same shape, True where a sample must not be used.  None of these functions
knows about data models; they are candidates for :mod:`tso_steps.stats`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from tso_steps.stats import MAD_TO_SIGMA, nanmedian_last, order_statistics

__all__ = [
    "fill_masked",
    "fit_regressors",
    "group_median",
    "masked_median",
    "robust_scale",
    "sampled_rolling_median",
]


# Variance of a unit Gaussian truncated at +-4 sigma: the clipped standard deviation is
# divided by its square root so that it is unbiased for Gaussian noise.
_CLIP = 4.0
_TRUNCATED_STD = 0.99946


def fill_masked(y, bad):
    """Replace bad samples by linear interpolation between each row's good neighbours.

    Samples before the first or after the last good one take the nearest good value; a row
    with no good sample becomes NaN.  Fully vectorised (no loop over rows).

    Parameters
    ----------
    y : ndarray, shape ``(npix, ntime)``
    bad : ndarray of bool, same shape

    Returns
    -------
    ndarray of float32 or float64
        A filled copy (float32 stays float32).
    """
    y = np.array(y, dtype=np.float32 if y.dtype == np.float32 else np.float64)
    bad = bad | ~np.isfinite(y)
    if not bad.any():
        return y
    ntime = y.shape[1]
    index = np.arange(ntime)
    prev = np.where(bad, -1, index)
    np.maximum.accumulate(prev, axis=1, out=prev)
    nxt = np.where(bad, ntime, index)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
    rows, cols = np.nonzero(bad)
    p, n = prev[rows, cols], nxt[rows, cols]
    has_p, has_n = p >= 0, n < ntime
    yp = y[rows, np.clip(p, 0, ntime - 1)]
    yn = y[rows, np.clip(n, 0, ntime - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(has_p & has_n, (cols - p) / np.maximum(n - p, 1), 0.0)
    value = np.where(has_p, yp + frac * np.where(has_n, yn - yp, 0.0), yn)
    value[~has_p & ~has_n] = np.nan
    y[rows, cols] = value
    return y


def sampled_rolling_median(y, window, step=1, tol=None):
    """Running median along time of a gap-free block, evaluated every ``step`` samples.

    Medians are computed in windows of ``window`` samples centred on every ``step``-th
    sample (windows are kept at full width at the ends of the series) and linearly
    interpolated in between; ``step=1`` is the exact running median.  Where two consecutive
    sampled medians of a row differ by more than ``tol`` (a step in the series, e.g. a trace
    moving during a tilt event) the medians in between are computed exactly, so a jump is
    never smeared into a ramp.  A baseline divided by the relative flux varies slowly
    elsewhere, so ``step = window // 5`` costs about a fifth of the exact median.

    Parameters
    ----------
    y : ndarray, shape ``(npix, ntime)``
        Must be finite where it matters (fill masked samples first, :func:`fill_masked`).
    window : int
        Samples per window; an even value is increased by one and the window is limited to
        the series length.
    step : int
        Spacing, in samples, of the window centres.
    tol : float or ndarray of shape ``(npix,)``, optional
        Change between sampled medians above which the interval is computed exactly
        (default: never).

    Returns
    -------
    ndarray of float64, shape ``(npix, ntime)``
    """
    npix, ntime = y.shape
    window = int(window) | 1
    if window > ntime:
        window = ntime if ntime % 2 else ntime - 1
    half = window // 2
    step = max(1, int(step))

    def medians_at(rows, centres):
        source = y if rows is None else y[rows]
        starts = np.clip(np.asarray(centres) - half, 0, ntime - window)
        return _window_medians(source, starts, window)

    centres = np.arange(0, ntime, step)
    if centres[-1] != ntime - 1:
        centres = np.append(centres, ntime - 1)
    medians = medians_at(None, centres)
    if step == 1:
        return medians
    time = np.arange(ntime)
    upper = np.clip(np.searchsorted(centres, time, side="right"), 1, centres.size - 1)
    lower = upper - 1
    weight = ((time - centres[lower]) / (centres[upper] - centres[lower])).astype(y.dtype)
    result = medians[:, lower] * (1 - weight) + medians[:, upper] * weight
    if tol is None:
        return result
    jumps = np.abs(np.diff(medians, axis=1)) > np.reshape(tol, (-1, 1))
    for interval in np.flatnonzero(jumps.any(axis=0)):
        inside = np.arange(centres[interval] + 1, centres[interval + 1])
        if inside.size:
            rows = np.flatnonzero(jumps[:, interval])
            result[np.ix_(rows, inside)] = medians_at(rows, inside)
    return result


def _window_medians(y, starts, window, chunk_bytes=2**21):
    """Median of ``y[:, s : s + window]`` for every start ``s``: ``(nrows, len(starts))``.

    The windows of a few starts at a time are gathered into one contiguous
    ``(nrows, nstarts, window)`` copy (about ``chunk_bytes``) and partitioned along its
    last axis in one call: the same order statistic, without a Python-level call per
    window.
    """
    nrows = y.shape[0]
    half = window // 2
    out = np.empty((nrows, len(starts)), dtype=y.dtype)
    if nrows == 0 or len(starts) == 0:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(y, window, axis=1)
    per_start = max(1, nrows * window * y.itemsize)
    step = max(1, int(chunk_bytes // per_start))
    for first in range(0, len(starts), step):
        part = windows[:, starts[first : first + step]]
        out[:, first : first + step] = np.partition(part, half, axis=2)[..., half]
    return out


def _split_infinities(y, bad):
    """Bad samples set to -inf at even and +inf at odd positions along each row.

    Bad samples then fall on both sides of every good one in about equal numbers, so the
    middle rank of the whole row is the median of its good samples to within half the
    imbalance, and a single partition at a fixed rank finds it.
    """
    odd = (np.arange(y.shape[-1]) % 2).astype(bool)
    return np.where(bad, np.where(odd, np.inf, -np.inf), y)


def masked_median(y, bad):
    """Median of each row over its good samples (NaN for a row with none).

    Bad samples are pushed to both ends of the row (:func:`_split_infinities`), so when they
    are unevenly split between even and odd positions the result is off the exact median by
    half the imbalance in rank, a difference far below the scatter for the rows of a few
    hundred samples with a few bad ones this is used on.

    Parameters
    ----------
    y : ndarray, shape ``(npix, ntime)``
    bad : ndarray of bool, same shape

    Returns
    -------
    ndarray of float64, shape ``(npix,)``
    """
    bad = bad | ~np.isfinite(y)
    ntime = y.shape[-1]
    middle = order_statistics(
        _split_infinities(y, bad), [(ntime - 1) // 2, ntime // 2], overwrite=True
    )
    with np.errstate(invalid="ignore"):
        result = 0.5 * (middle[..., 0] + middle[..., -1])
    result[bad.all(axis=-1) | ~np.isfinite(result)] = np.nan
    return result


def robust_scale(residual, bad):
    """Per-row scatter of a zero-centred residual, robust to outliers but efficient.

    A first estimate from the median absolute value (MAD) sets a 4-sigma clip; the result is
    the RMS of the unclipped good samples corrected for the truncation, which is about
    twice as statistically efficient as the MAD alone (what matters with a few hundred
    integrations, where the scatter estimate sets the effective threshold).

    Parameters
    ----------
    residual : ndarray, shape ``(npix, ntime)``
    bad : ndarray of bool, same shape

    Returns
    -------
    ndarray of float64, shape ``(npix,)``
        Standard deviation per row; NaN where a row has no good sample.
    """
    mad = MAD_TO_SIGMA * masked_median(np.abs(residual), bad)
    keep = ~bad & (np.abs(residual) <= _CLIP * mad[:, None])
    count = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(np.where(keep, residual * residual, 0.0).sum(axis=1) / count)
    rms /= _TRUNCATED_STD
    return np.where(count >= 3, rms, mad)


def regressor_leverage(good, design, ridge=1e-6):
    """Leverage of every sample in its row's fit by :func:`fit_regressors`.

    The diagonal of the hat matrix, ``h = x_t (X'WX + ridge)^-1 x_t'`` for a good sample
    (0 for a bad one): the fraction of a sample's own value that its fitted regression
    takes up.  A residual is ``(1 - h)`` times the deviation it would have in a fit without
    that sample, and its variance is ``(1 - h) sigma^2``.

    Parameters
    ----------
    good : ndarray of bool, shape ``(npix, ntime)``
    design : ndarray, shape ``(ntime, k)``
    ridge : float
        As in :func:`fit_regressors`.

    Returns
    -------
    ndarray of float64, shape ``(npix, ntime)``
    """
    ntime, k = design.shape
    full = np.linalg.inv(design.T @ design + ridge * ntime * np.eye(k))
    shared = np.einsum("tk,kl,tl->t", design, full, design)
    hat = np.where(good, shared[None, :], 0.0)
    partial = np.flatnonzero(~good.all(axis=1))
    if partial.size:
        weight = good[partial].astype(np.float64)
        outer = (design[:, :, None] * design[:, None, :]).reshape(ntime, k * k)
        gram = (weight @ outer).reshape(-1, k, k) + ridge * ntime * np.eye(k)
        inverse = np.linalg.inv(gram)
        hat[partial] = np.einsum("tk,pkl,tl->pt", design, inverse, design) * weight
    return hat


def fit_regressors(residual, good, design, ridge=1e-6):
    """Per-row weighted least-squares fit of a residual on shared regressors.

    Solves ``residual[p] ~ design @ coef[p]`` for every row ``p`` using only its good
    samples.  Rows without bad samples share one normal matrix; the others get their own
    small ``k x k`` system, solved in a batch.

    Parameters
    ----------
    residual : ndarray, shape ``(npix, ntime)``
        Bad samples may hold any finite value; they get zero weight.
    good : ndarray of bool, shape ``(npix, ntime)``
    design : ndarray, shape ``(ntime, k)``
        Regressors, ideally centred and of unit variance (see
        :func:`tso_steps.motion.motion_design_matrix`).
    ridge : float
        Tikhonov term added to the normal equations, relative to the number of samples, so a
        row with too few good samples gets small coefficients instead of a singular system.

    Returns
    -------
    ndarray of float64, shape ``(npix, k)``
    """
    ntime, k = design.shape
    rhs = np.where(good, residual, 0.0) @ design
    full = design.T @ design + ridge * ntime * np.eye(k)
    coef = rhs @ np.linalg.inv(full)
    partial = np.flatnonzero(~good.all(axis=1))
    if partial.size:
        weight = good[partial].astype(np.float64)
        outer = (design[:, :, None] * design[:, None, :]).reshape(ntime, k * k)
        gram = (weight @ outer).reshape(-1, k, k) + ridge * ntime * np.eye(k)
        coef[partial] = np.linalg.solve(gram, rhs[partial][..., None])[..., 0]
    return coef


def group_median(y, bad, groups, min_good=5):
    """Median, at every time, over groups of rows (e.g. the pixels of one detector line).

    This is the common-mode (1/f, amplifier offset) term of a block: every pixel read in
    the same line by the same output shares one additive offset per integration.

    Parameters
    ----------
    y : ndarray, shape ``(npix, ntime)``
    bad : ndarray of bool, same shape
    groups : sequence of ndarray of int
        Each an array of row indices of shape ``(ngroups, size)``: ``ngroups`` groups of
        ``size`` rows each (arrays of different sizes may be passed separately).
    min_good : int
        Groups with fewer good samples at a time get 0 there.

    Returns
    -------
    ndarray of float64, shape ``(npix, ntime)``
        Each row holds its group's median (0 for rows in no group).
    """
    result = np.zeros(y.shape, dtype=y.dtype)
    # groups of one size are taken together (every statistic is per group): fewer, larger calls
    sizes = {}
    for index in groups:
        sizes.setdefault(index.shape[1], []).append(index)
    for index in (np.concatenate(same) for same in sizes.values()):
        # (ngroups, ntime, size): the medians over a group run along the last, contiguous
        # axis, where a partition is several times faster
        ngroups, size = index.shape
        ntime = y.shape[1]
        values = np.ascontiguousarray(y[index].transpose(0, 2, 1)).reshape(-1, size)
        unusable = np.ascontiguousarray(bad[index].transpose(0, 2, 1)).reshape(-1, size)
        unusable |= ~np.isfinite(values)
        median, ngood, scatter, stale = _clipped_group_medians(values, unusable, min_good)
        median = median.reshape(ngroups, ntime)
        if size < _SHORT_SEGMENT:
            dropped = _drop_event_offsets(median)
            stale = np.union1d(stale, np.flatnonzero(dropped != median))
            median = dropped
        if stale.size:
            scatter[stale] = _group_scatter(values[stale], unusable[stale], median.ravel()[stale])
        gain = _offset_gain(scatter.reshape(ngroups, ntime), median, ngood.reshape(ngroups, ntime))
        result[index] = (median * gain)[:, None, :]
    return result


def _clipped_group_medians(values, unusable, min_good):
    """Median of every column after the one-sided event clip of :func:`group_median`.

    ``values`` and ``unusable`` are ``(ncolumns, size)`` (``unusable`` is updated in place
    with the clipped samples).  Cosmic-ray events only add charge: a halo covering much of
    a short line (NIRSpec's 32-pixel columns) would pull the median up, so samples far above
    it are left out and the median taken again.  Only the columns that lost a sample in a
    pass are taken again in the next: the others would give the same values.

    Returns
    -------
    median, ngood, scatter : ndarray, shape ``(ncolumns,)``
        Median, number of good samples, and robust scatter about the median.
    stale : ndarray of int
        Columns whose ``scatter`` belongs to an earlier median (recompute before use).
    """
    median, ngood = _group_median(values, unusable, min_good)
    scatter = _group_scatter(values, unusable, median)
    todo = np.arange(values.shape[0])
    part, part_bad = values, unusable
    for npass in range(_EVENT_PASSES):
        if npass:
            part, part_bad = values[todo], unusable[todo]
            median[todo], ngood[todo] = _group_median(part, part_bad, min_good)
            scatter[todo] = _group_scatter(part, part_bad, median[todo])
        high = part > (median[todo] + _EVENT_SIGMA * scatter[todo])[:, None]
        changed = (high & ~part_bad).any(axis=1)
        if not changed.any():
            return median, ngood, scatter, todo[:0]
        unusable[todo] = part_bad | high
        todo = todo[changed]
    median[todo], ngood[todo] = _group_median(values[todo], unusable[todo], min_good)
    return median, ngood, scatter, todo


def _drop_event_offsets(median):
    """Replace one-integration spikes of a group's offset by its running median over time.

    An event that covers most of a short line (a snowball halo on a 32-pixel NIRSpec
    column) adds a large positive offset at one time, which would remove the event from its
    own pixels.  Line-correlated noise and pointing changes move offsets too, but a step
    (a tilt) or a drift persists over neighbouring integrations, so only offsets far above
    the running median of ``_EVENT_WINDOW`` integrations, in robust sigma of the offsets'
    successive differences, are taken as events.
    """
    if median.shape[1] < _EVENT_WINDOW:
        return median
    trend = ndimage.median_filter(median, size=(1, _EVENT_WINDOW), mode="nearest")
    departure = median - trend
    # noise of the offsets from their successive differences: blind to steps and drifts,
    # and not shrunk the way departures from a running median through each point are
    step = np.abs(np.diff(median, axis=1))
    spread = MAD_TO_SIGMA / np.sqrt(2.0) * np.median(step, axis=1, keepdims=True)
    spike = (departure > _EVENT_OFFSET_SIGMA * spread) & (spread > 0)
    return np.where(spike, trend, median)


#: Segments shorter than this (pixels) can be mostly covered by one snowball or shower,
#: whose halos reach tens of pixels; longer ones hold an event in far fewer than half
#: their pixels, so their medians are not pulled by it and are left as measured.
_SHORT_SEGMENT = 128

#: Running-median window (integrations) and threshold (robust sigma) of event offsets.
_EVENT_WINDOW = 5
_EVENT_OFFSET_SIGMA = 5.0


#: Passes and threshold (robust sigma above the median) of the one-sided event clip.
_EVENT_PASSES = 3
_EVENT_SIGMA = 3.0


def _group_median(values, unusable, min_good):
    """Median over the good samples of each column ``(..., size)``, and their number.

    Bad samples are pushed to both ends (:func:`_split_infinities`) and the order statistics
    at the middle ranks (:func:`~tso_steps.stats.order_statistics`) give the median.
    """
    size = values.shape[-1]
    middle = order_statistics(
        _split_infinities(values, unusable), [(size - 1) // 2, size // 2], overwrite=True
    )
    with np.errstate(invalid="ignore"):
        median = 0.5 * (middle[..., 0] + middle[..., -1])
    ngood = size - unusable.sum(axis=-1)
    median[(ngood < min_good) | ~np.isfinite(median)] = 0.0
    return median, ngood


def _group_scatter(values, unusable, median):
    """Robust scatter of each column's good samples about its median."""
    deviation = np.where(unusable, np.nan, np.abs(values - median[..., None]))
    return MAD_TO_SIGMA * nanmedian_last(deviation, overwrite=True)


def _offset_gain(scatter, median, ngood):
    """Wiener gain of each group's offsets: the share of their variance that is not noise.

    The median of ``n`` samples of scatter ``s`` has a variance of about ``pi/2 s^2 / n``;
    where the offsets over time vary little more than that (no line-correlated noise, a
    short line), subtracting them only adds noise and the bias of any event covering the
    line, so they are scaled down by ``1 - noise / total`` (per group, over all times).
    ``scatter`` (:func:`_group_scatter`), ``median`` and ``ngood`` are
    ``(ngroups, ntime)``.

    Returns
    -------
    ndarray, shape ``(ngroups, 1)``
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        noise = np.nanmean(0.5 * np.pi * scatter**2 / np.maximum(ngood, 1), axis=1)
        total = np.nanmean(median.astype(np.float64) ** 2, axis=1)
        gain = np.clip(1.0 - noise / total, 0.0, 1.0)
    return np.where(np.isfinite(gain), gain, 0.0)[:, None].astype(median.dtype)
