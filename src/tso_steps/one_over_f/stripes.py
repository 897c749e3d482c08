"""Measure and rebuild readout stripes ("slow-by-slow, fast-by-fast") on plain arrays.

A detector frame is read as a sequence of *lines* along the fast axis; each output
(amplifier) samples its own part of every line.  Two readout artefacts add to every pixel:

* per output and per pixel parity along the output's samples, a constant offset over the
  frame (pre-amplifier reset offset, even/odd column effect) - the *slow-by-slow* term;
* per line and per output, a level that wanders from line to line (1/f noise of the
  SIDECAR pre-amplifier) - the *fast-by-fast* term.

:class:`tso_steps.readout.LineLayout` maps a frame to a ``(n_lines, n_fast)`` view in which
every line is a row and knows which output and parity each fast position belongs to.
:func:`fit_stripes` measures both terms from weighted pixels (usually the unilluminated ones,
or all pixels after a source model has been subtracted) with an iteratively clipped weighted
mean, and :func:`stripe_image` rebuilds the frames of stripes to subtract.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tso_steps.one_over_f.outputs import combine_outputs, fill_levels
from tso_steps.one_over_f.reads import segment_columns
from tso_steps.one_over_f.robust import robust_level, start_level
from tso_steps.one_over_f.wiener import wiener_levels

__all__ = ["StripeFit", "fit_stripes", "segment_times", "stripe_image"]


@dataclass
class StripeFit:
    """Stripes measured on a stack of frames.

    Attributes
    ----------
    offsets : ndarray, shape ``(nframes, ngroups)``
        Slow-by-slow offset of each column group (see
        :meth:`tso_steps.readout.LineLayout.column_groups`).
    levels : ndarray, shape ``(nframes, n_lines * nseg, namp)``
        Fast-by-fast level of each segment of each line and output, after the offsets.
    filled : ndarray of bool, shape like ``levels``
        Levels predicted from other outputs or neighbouring segments (too few pixels).
    odd_even : bool
        Whether the offsets are per output and parity or per output only.
    nseg : int
        Segments per line and output.
    variance : ndarray or None
        Measurement variance of each level (``inf`` where not measured); set by
        :func:`fit_stripes` with ``raw`` or ``covariance``.
    """

    offsets: np.ndarray
    levels: np.ndarray
    filled: np.ndarray
    odd_even: bool = True
    nseg: int = 1
    variance: np.ndarray | None = None


def fit_stripes(
    lines,
    weights,
    layout,
    odd_even=True,
    min_pixels=5,
    kappa=4.0,
    segment=None,
    covariance=None,
    raw=False,
    outputs=None,
    plan=None,
):
    """Measure slow-by-slow offsets and fast-by-fast levels of a stack of frames.

    Parameters
    ----------
    lines : ndarray, shape ``(nframes, n_lines, n_fast)``
        Frames in line view (:meth:`~tso_steps.readout.LineLayout.to_lines`) with the source
        removed or masked; NaN where a pixel is unusable in that frame.
    weights : ndarray, shape ``(n_lines, n_fast)`` or like ``lines``
        Inverse variance of each pixel; 0 for pixels not to use (illuminated, bad).
    layout : `~tso_steps.readout.LineLayout`
    odd_even : bool
        Fit separate offsets to even and odd samples of each output.
    min_pixels : int
        Fewer usable pixels than this in a segment of one output: its level is predicted
        from the other outputs and neighbouring segments (:func:`fill_levels`).
    kappa : float
        Clipping threshold (standard deviations).
    segment : int, optional
        Samples per segment: each output's line is split into segments of about this many
        consecutive reads, each with its own level (default: one level per line).
    covariance : ndarray, optional
        Covariance of the levels in cell lag and output pair
        (:func:`~tso_steps.one_over_f.wiener.level_covariance`): every level is then the
        Wiener estimate from all measured cells of its frame
        (:func:`~tso_steps.one_over_f.wiener.wiener_levels`) instead of its own measurement
        combined with the other outputs and filled from neighbouring lines.
    raw : bool
        Return the measured levels as they are (NaN where not measured), with their
        variances in ``StripeFit.variance``: the input of ``level_covariance``.
    outputs : OutputModel, optional
        How the outputs follow each other
        (:func:`~tso_steps.one_over_f.outputs.learn_output_model`),
        fixed for the exposure; default fitted to these frames (the levels of a frame then
        depend on the frames fitted with it).
    plan : `~tso_steps.one_over_f.reads.ReadPlan`, optional
        :func:`~tso_steps.one_over_f.reads.plan_reads` of ``weights`` (2-D) with these
        ``odd_even`` and ``segment``: only the weighted pixels are read (the same result,
        faster when few are weighted).

    Returns
    -------
    StripeFit
    """
    lines = np.asarray(lines)
    nframes, n_lines, _ = lines.shape
    # weights shared by all frames stay one frame (robust_level broadcasts them)
    weights = np.asarray(weights)
    weights = weights[None] if weights.ndim == 2 else np.broadcast_to(weights, lines.shape)
    groups = layout.column_groups(odd_even)
    offsets = np.zeros((nframes, int(groups.max()) + 1))
    for group in range(offsets.shape[1]):
        if plan is not None:
            offsets[:, group] = _planned_offset(lines, plan.offsets[group], kappa)
            continue
        columns = np.flatnonzero(groups == group)
        values = lines[:, :, columns].reshape(nframes, -1)
        group_weights = weights[:, :, columns].reshape(weights.shape[0], -1)
        level, _, _ = robust_level(values, group_weights, kappa)
        offsets[:, group] = np.nan_to_num(level)
    # fast-by-fast on what the offsets leave: (frame, line, segment, output, sample)
    index = layout.by_amp()
    nsamp = index.shape[1]
    nseg = 1 if not segment else max(1, int(round(nsamp / segment)))
    if plan is not None and plan.levels is not None:
        residual = plan.levels.take(lines) - offsets[:, plan.groups]
        levels, count, total = robust_level(residual, plan.levels.weights, kappa)
    else:
        seg_index = segment_columns(index, nseg)
        residual = lines[:, :, seg_index] - offsets[:, groups][:, None, seg_index]
        seg_weights = np.where(seg_index >= 0, weights[:, :, seg_index], 0.0)
        levels, count, total = robust_level(residual, seg_weights, kappa)
    levels = levels.reshape(nframes, n_lines * nseg, layout.namp)
    count = count.reshape(levels.shape)
    measured = (count >= min_pixels) & np.isfinite(levels)
    with np.errstate(divide="ignore"):
        variance = np.where(measured, 1.0 / total.reshape(levels.shape), np.inf)
    if raw or covariance is not None:
        order = np.argsort(segment_times(layout, nseg))
        fit = StripeFit(offsets, np.where(measured, levels, np.nan), ~measured, odd_even, nseg)
        fit.variance = variance
        if raw:
            return fit
        est = np.empty_like(levels)
        est[:, order] = wiener_levels(
            levels[:, order], variance[:, order], measured[:, order], covariance
        )
        fit.levels = est
        return fit
    if layout.namp > 1 and measured.any():
        levels = combine_outputs(levels, variance, measured, model=outputs)
    if not measured.all():
        order = np.argsort(segment_times(layout, nseg))  # fill in read-time order
        filled = np.empty_like(levels)
        filled[:, order] = fill_levels(levels[:, order], measured[:, order], model=outputs)
        levels = filled
    return StripeFit(offsets, levels, ~measured, odd_even, nseg)


def _planned_offset(lines, reads, kappa):
    """One column group's offset in every frame from its planned samples."""
    used, start = reads
    values = used.take(lines)
    center = None
    if start is not None:
        sub = start.take(lines)
        center = start_level(sub, (start.weights > 0) & np.isfinite(sub))
    level, _, _ = robust_level(values, used.weights, kappa, start=center)
    return np.nan_to_num(level)


def segment_times(layout, nseg):
    """Mean read tick of each (line, segment), flattened line-major like the levels."""
    index = layout.by_amp()
    seg_index = segment_columns(index, nseg)
    columns = [seg_index[s, 0][seg_index[s, 0] >= 0] for s in range(nseg)]
    return np.stack([layout.ticks[:, c].mean(axis=1) for c in columns], axis=1).ravel()


def stripe_image(fit, layout, dtype=np.float32, smooth=True):
    """Frames of stripes, ``(nframes, ny, nx)``, from a :class:`StripeFit`.

    Parameters
    ----------
    fit : StripeFit
    layout : `~tso_steps.readout.LineLayout`
    dtype : dtype
        Output type.
    smooth : bool
        Interpolate the levels linearly in read time between segment centres (the 1/f
        noise is continuous in time); False: one constant per segment.

    Returns
    -------
    ndarray
        Offsets plus levels at every pixel, in the original (not line-view) orientation.
    """
    nframes = fit.levels.shape[0]
    n_lines = layout.ticks.shape[0]
    groups = layout.column_groups(fit.odd_even)
    centres = segment_times(layout, fit.nseg)
    if smooth and centres.size > 1 and np.isfinite(fit.levels).all():
        return _interpolated_image(fit, layout, dtype)
    index = layout.by_amp()
    seg_index = segment_columns(index, fit.nseg)  # (nseg, namp, length)
    out = np.empty((nframes, n_lines, layout.n_fast), dtype=dtype)
    levels = fit.levels.reshape(nframes, n_lines, fit.nseg, layout.namp)
    ticks = layout.ticks[:, index[0]].astype(np.float64)  # simultaneous for every output
    order = np.argsort(centres)
    for amp in range(layout.namp):
        columns = index[amp]
        if smooth and centres.size > 1:
            for frame in range(nframes):
                values = levels[frame, :, :, amp].ravel()[order]
                out[frame][:, columns] = np.interp(ticks, centres[order], values)
        else:
            positions = seg_index[:, amp]
            for seg in range(fit.nseg):
                cols = positions[seg][positions[seg] >= 0]
                out[:, :, cols] = levels[:, :, seg, amp][:, :, None]
    out += fit.offsets[:, groups][:, None, :].astype(dtype)
    return np.ascontiguousarray(layout.from_lines(out))


def _interpolated_image(fit, layout, dtype):
    """:func:`stripe_image` with ``smooth`` and finite levels, from a map made once.

    ``np.interp`` of every output's levels in read time at every pixel, by the same
    operations: the interval of each pixel does not change from frame to frame.
    """
    nframes = fit.levels.shape[0]
    centres = np.sort(segment_times(layout, fit.nseg))
    order = np.argsort(segment_times(layout, fit.nseg))
    table_f, table_s, step, offset_of = _interpolation_map(layout, fit.nseg, fit.odd_even)
    fp = fit.levels.reshape(nframes, -1, layout.namp)[:, order]  # (frames, cells, outputs)
    fp = np.ascontiguousarray(np.swapaxes(fp, 1, 2))  # one row of cells per output
    slope = np.diff(fp, axis=-1) / np.diff(centres)
    offsets = fit.offsets.astype(dtype)
    out = np.empty((nframes, *table_f.shape), dtype=dtype)
    for frame in range(nframes):
        # np.interp's ``slope * (x - xp[j]) + fp[j]`` (step 0 where it returns fp[j])
        values = np.take(slope[frame], table_s) * step + np.take(fp[frame], table_f)
        out[frame] = values
        out[frame] += np.take(offsets[frame], offset_of)
    return out


@functools.lru_cache(maxsize=8)
def _interpolation_map(layout, nseg, odd_even):
    """Where each pixel (frame orientation) interpolates the levels of its output.

    Returns ``(fp index, slope index, x - xp[j], offset group)`` images: indices into the
    ``(namp, n_cells)`` level table and the ``(namp, n_cells - 1)`` slope table.
    """
    xp = np.sort(segment_times(layout, nseg))
    n = xp.size
    index = layout.by_amp()
    ticks = layout.ticks[:, index[0]].astype(np.float64)  # (n_lines, nsamp)
    j = np.searchsorted(xp, ticks, side="right") - 1  # xp[j] <= x < xp[j + 1]
    inside = (j >= 0) & (j < n - 1)
    at_f = np.clip(j, 0, n - 1)  # before the first centre: fp[0]; from the last: fp[-1]
    at_s = np.clip(j, 0, n - 2)
    step = np.where(inside, ticks - xp[at_s], 0.0)
    amp_of = np.empty(layout.n_fast, dtype=np.intp)
    sample_of = np.empty(layout.n_fast, dtype=np.intp)
    amp_of[index] = np.arange(layout.namp)[:, None]
    sample_of[index] = np.arange(index.shape[1])
    table_f = (amp_of * n + at_f[:, sample_of]).astype(np.int32)  # (n_lines, n_fast)
    table_s = (amp_of * (n - 1) + at_s[:, sample_of]).astype(np.int32)
    groups = np.broadcast_to(layout.column_groups(odd_even).astype(np.int8), table_f.shape)
    return tuple(
        np.ascontiguousarray(layout.from_lines(a))
        for a in (table_f, table_s, step[:, sample_of], groups)
    )
