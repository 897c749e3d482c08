"""Which pixels :func:`~tso_steps.one_over_f.stripes.fit_stripes` reads: a plan made once.

Every frame of a run is fitted with the same pixel weights, and most pixels often have
none (with the source model off only the unilluminated third of a NIRSpec frame does).
:func:`plan_reads` lists, once per weights image, the weighted pixels of every slow-by-slow
offset and of every (line, segment, output) level; ``fit_stripes`` then gathers those
samples alone instead of whole lines.  The samples used are the same, so are the levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tso_steps.one_over_f.robust import MEDIAN_SAMPLES
from tso_steps.stats import subsample_last

__all__ = ["ReadPlan", "Reads", "plan_reads", "segment_columns"]


@dataclass(frozen=True)
class Reads:
    """Some samples of a frame and their weights.

    Attributes
    ----------
    index : ndarray of int32
        Position of each sample in a frame raveled in its own (not line-view) orientation.
    weights : ndarray of float32, shape of ``index``
        Their weights (0: padding, not used).
    transposed : bool
        The line view is the frame transposed (fast axis along y).
    """

    index: np.ndarray
    weights: np.ndarray
    transposed: bool

    @classmethod
    def at(cls, lines, fast, weights, shape, transposed):
        """Samples at line-view ``(lines, fast)`` of ``shape = (n_lines, n_fast)`` frames."""
        index = fast * shape[0] + lines if transposed else lines * shape[1] + fast
        return cls(index.astype(np.int32), np.asarray(weights, dtype=np.float32), transposed)

    def take(self, lines):
        """These samples of line-view frames ``(nframes, n_lines, n_fast)``."""
        frames = np.swapaxes(lines, -1, -2) if self.transposed else lines
        frames = np.ascontiguousarray(frames).reshape(frames.shape[0], -1)  # usually a view
        return np.take(frames, self.index, axis=1)


@dataclass(frozen=True)
class ReadPlan:
    """The samples ``fit_stripes`` reads for one weights image (:func:`plan_reads`).

    Attributes
    ----------
    offsets : tuple of (Reads, Reads or None)
        Per column group: its weighted samples, and the samples its starting median looks
        at (None when they are the weighted samples: rows of at most
        :data:`~tso_steps.one_over_f.robust.MEDIAN_SAMPLES`).
    levels : Reads or None
        Weighted samples of each (line, segment, output), ``(n_lines, nseg, namp, width)``,
        padded with weight 0; None when a segment is longer than ``MEDIAN_SAMPLES`` (its
        starting median would subsample: ``fit_stripes`` then reads whole lines).
    groups : ndarray of int8 or None
        Column group of each sample of ``levels`` (whose offset it carries).
    nseg : int
        Segments per line and output.
    """

    offsets: tuple
    levels: Reads | None
    groups: np.ndarray | None
    nseg: int


def plan_reads(weights, layout, odd_even=True, segment=None):
    """The :class:`ReadPlan` of one weights image.

    Parameters
    ----------
    weights : ndarray, shape ``(n_lines, n_fast)``
        Pixel weights in line view, shared by every frame (0: not used).
    layout : `~tso_steps.readout.LineLayout`
    odd_even, segment
        As given to :func:`~tso_steps.one_over_f.stripes.fit_stripes`.

    Returns
    -------
    ReadPlan
    """
    weights = np.asarray(weights, dtype=np.float32)  # robust_level's weights
    shape = weights.shape
    transposed = layout.fast_axis == 0
    groups = layout.column_groups(odd_even)
    lines = np.arange(shape[0])
    offsets = []
    for group in range(int(groups.max()) + 1):
        columns = np.flatnonzero(groups == group)
        at_line = np.repeat(lines, columns.size)  # fit_stripes' (line, column) order
        at_fast = np.tile(columns, shape[0])
        w = weights[:, columns].ravel()
        used = Reads.at(at_line[w > 0], at_fast[w > 0], w[w > 0], shape, transposed)
        start = None
        if w.size > MEDIAN_SAMPLES:  # every k-th sample, weighted or not
            start = Reads.at(
                *(subsample_last(a, MEDIAN_SAMPLES) for a in (at_line, at_fast, w)),
                shape,
                transposed,
            )
        offsets.append((used, start))
    index = layout.by_amp()
    nseg = 1 if not segment else max(1, int(round(index.shape[1] / segment)))
    seg_index = segment_columns(index, nseg)
    if seg_index.shape[-1] > MEDIAN_SAMPLES:
        return ReadPlan(tuple(offsets), None, None, nseg)
    w = np.where(seg_index >= 0, weights[:, seg_index], np.float32(0.0))
    ok = w > 0
    width = max(int(ok.sum(axis=-1).max()), 1)
    # each row's weighted samples first, in their order; the rest pads with weight 0
    order = np.argsort(~ok, axis=-1, kind="stable")[..., :width]
    columns = np.take_along_axis(np.broadcast_to(seg_index, w.shape), order, axis=-1)
    w = np.take_along_axis(w, order, axis=-1)
    columns = np.where(w > 0, columns, 0)
    at_line = np.broadcast_to(lines[:, None, None, None], columns.shape)
    levels = Reads.at(at_line, columns, w, shape, transposed)
    return ReadPlan(tuple(offsets), levels, groups[columns].astype(np.int8), nseg)


def segment_columns(index, nseg):
    """``(nseg, namp, length)`` fast positions of each segment; -1 pads short segments.

    Parameters
    ----------
    index : ndarray of int, shape ``(namp, nsamp)``
        :meth:`~tso_steps.readout.LineLayout.by_amp`.
    nseg : int
        Segments per line and output.

    Returns
    -------
    ndarray of int
    """
    namp, nsamp = index.shape
    length = -(-nsamp // nseg)
    padded = np.full((namp, nseg * length), -1, dtype=index.dtype)
    bounds = np.linspace(0, nsamp, nseg + 1).round().astype(int)
    for seg in range(nseg):
        size = bounds[seg + 1] - bounds[seg]
        padded[:, seg * length : seg * length + size] = index[:, bounds[seg] : bounds[seg + 1]]
    return padded.reshape(namp, nseg, length).transpose(1, 0, 2)
