"""A frame as one time series per output, and the read-time units the 1/f is estimated on.

Every output samples one pixel per clock tick, so the pixels of output ``a`` are a time
series ``x_a(t)``, ``t = 0 .. n_ticks - 1`` (ticks without a pixel - line overheads - are
gaps).  :class:`ReadTimeline` holds that order.  :func:`build_units` cuts each output's
series into *units*: runs of consecutive reads of one kind (unilluminated or illuminated)
of at most ``size`` reads, the resolution at which :mod:`tso_steps.one_over_f.kriging`
measures and predicts the 1/f noise.  Unilluminated units far (in read time) from any
illuminated read are merged into longer observations when there are more than a budget:
only their slow part matters there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tso_steps.one_over_f.robust import robust_level

__all__ = ["ReadTimeline", "Units", "build_units"]

DARK, LIT = 0, 1


@dataclass(frozen=True)
class ReadTimeline:
    """Pixels of a line-view frame ordered by output and read tick.

    Attributes
    ----------
    order : ndarray of int, shape ``(npix,)``
        Flat line-view index of every pixel, sorted by output then tick.
    amp, tick : ndarray of int, shape ``(npix,)``
        Output and read tick of ``order``'s pixels.
    namp, n_ticks : int
    """

    order: np.ndarray
    amp: np.ndarray
    tick: np.ndarray
    namp: int
    n_ticks: int

    @classmethod
    def from_layout(cls, layout):
        """Build from a :class:`~tso_steps.readout.LineLayout`."""
        ticks = np.asarray(layout.ticks, dtype=np.int64)
        amps = np.broadcast_to(layout.amp, ticks.shape).ravel()
        flat_ticks = ticks.ravel()
        order = np.lexsort((flat_ticks, amps))
        return cls(order, amps[order], flat_ticks[order], layout.namp, int(ticks.max()) + 1)

    def series(self, lines):
        """``(..., n_lines, n_fast)`` frames -> ``(..., npix)`` values in timeline order."""
        return lines.reshape(*lines.shape[:-2], -1)[..., self.order]

    def to_lines(self, values, shape):
        """Inverse of :meth:`series` for ``(..., npix)`` values; ``shape`` is the line view."""
        out = np.empty((*values.shape[:-1], int(np.prod(shape))), dtype=values.dtype)
        out[..., self.order] = values
        return out.reshape(*values.shape[:-1], *shape)


@dataclass
class Units:
    """Read-time units of a timeline and how they are observed.

    Attributes
    ----------
    amp, start, stop, kind : ndarray of int, shape ``(nunits,)``
        Output, first tick, tick after the last, ``DARK``/``LIT``.
    members : ndarray of int, shape ``(nunits, size)``
        Timeline positions of each unit's pixels, -1 padded.
    size : int
        Largest number of reads in a unit.
    group : ndarray of int, shape ``(nunits,)``
        Observation each unit belongs to (-1: not observed).
    """

    amp: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    kind: np.ndarray
    members: np.ndarray
    size: int
    group: np.ndarray

    @property
    def n_obs(self):
        """int : Number of observations."""
        return int(self.group.max()) + 1 if self.group.size and self.group.max() >= 0 else 0

    def observations(self):
        """Output, first and last-plus-one tick of every observation (arrays)."""
        used = self.group >= 0
        n = self.n_obs
        amp = np.zeros(n, dtype=np.int64)
        amp[self.group[used]] = self.amp[used]
        start = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(start, self.group[used], self.start[used])
        stop = np.zeros(n, dtype=np.int64)
        np.maximum.at(stop, self.group[used], self.stop[used])
        return amp, start, stop

    def levels(self, values, weights, kappa):
        """Clipped weighted mean of every observation, per frame.

        Parameters
        ----------
        values : ndarray, shape ``(nframes, npix)``
            Residuals in timeline order (NaN: unusable).
        weights : ndarray, shape ``(npix,)``
            Inverse variance of each pixel (0: not used).
        kappa : float
            Clipping threshold, standard deviations.

        Returns
        -------
        level : ndarray, shape ``(nframes, n_obs)``
            0 where an observation has no usable pixel in a frame (its prediction residual).
        total : ndarray, shape ``(nframes, n_obs)``
            Sum of the weights kept.
        unit_level : ndarray, shape ``(nframes, nunits)``
            The clipped mean of every unit (0 where none of its pixels is usable).
        """
        pad = self.members < 0
        index = np.where(pad, 0, self.members)
        w = np.where(pad, 0.0, weights[index])
        level, _, total = robust_level(values[:, index], w, kappa)
        level = np.where(total > 0, level, 0.0)
        # units -> observations: weighted means
        used = self.group >= 0
        n = self.n_obs
        num = np.zeros((values.shape[0], n))
        den = np.zeros((values.shape[0], n))
        np.add.at(num.T, self.group[used], (level * total)[:, used].T)
        np.add.at(den.T, self.group[used], total[:, used].T)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0), den, level


def _runs(timeline, kind, size):
    """Cut the timeline into runs of one kind and output, split into pieces of <= size."""
    tick, amp = timeline.tick, timeline.amp
    new_run = np.ones(tick.size, dtype=bool)
    new_run[1:] = (kind[1:] != kind[:-1]) | (amp[1:] != amp[:-1]) | (tick[1:] != tick[:-1] + 1)
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.append(run_start, tick.size))
    position = np.arange(tick.size) - run_start[run_id]
    pieces = -(-run_len // size)
    piece = position * pieces[run_id] // run_len[run_id]
    piece_offset = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    return piece_offset[run_id] + piece


def build_units(timeline, dark, usable, size=16, budget=4096, observe_lit=False):
    """Read-time units and their observations.

    Parameters
    ----------
    timeline : ReadTimeline
    dark : ndarray of bool, shape ``(npix,)``
        Unilluminated pixels (timeline order); the rest are illuminated.
    usable : ndarray of bool, shape ``(npix,)``
        Pixels that can be measured; an unusable pixel joins the run around it.
    size : int
        Reads per unit at most.
    budget : int
        Largest number of observations: unilluminated units far from every illuminated read
        are merged (their span grows with the distance) until it is met; if the
        illuminated ones alone exceed it, ``size`` is doubled.
    observe_lit : bool
        Illuminated units are observations too (the source is then modelled).

    Returns
    -------
    Units
    """
    kind = np.where(dark, DARK, LIT).astype(np.int8)
    kind = _fill_unusable(kind, usable, timeline.amp)
    while True:
        unit_of = _runs(timeline, kind, size)
        n = int(unit_of[-1]) + 1 if unit_of.size else 0
        first = np.searchsorted(unit_of, np.arange(n))
        count = np.diff(np.append(first, unit_of.size))
        units_amp = timeline.amp[first]
        start = timeline.tick[first]
        stop = timeline.tick[first + count - 1] + 1
        units_kind = kind[first]
        members = np.full((n, int(count.max()) if n else 1), -1, dtype=np.int64)
        column = np.arange(unit_of.size) - first[unit_of]
        members[unit_of, column] = np.arange(unit_of.size)
        has_data = np.zeros(n, dtype=bool)
        has_data[unit_of[usable]] = True
        n_lit = int(np.sum(has_data & (units_kind == LIT))) if observe_lit else 0
        if n_lit <= budget // 2 or size >= 4096:
            break
        size *= 2
    group = _group_dark(units_amp, start, stop, units_kind, has_data, budget - n_lit, size)
    if observe_lit:
        lit = has_data & (units_kind == LIT)
        next_id = group.max() + 1 if group.size else 0
        group[lit] = next_id + np.arange(int(lit.sum()))
    return Units(units_amp, start, stop, units_kind, members, int(size), group)


def _fill_unusable(kind, usable, amp):
    """Give unusable pixels the kind of the nearest usable read before them (or after)."""
    index = np.where(usable, np.arange(kind.size), -1)
    np.maximum.accumulate(index, out=index)
    backward = np.where(usable, np.arange(kind.size), kind.size)
    backward = np.minimum.accumulate(backward[::-1])[::-1]
    source = np.where(index >= 0, index, np.minimum(backward, kind.size - 1))
    same_amp = amp[source] == amp
    return np.where(usable | ~same_amp, kind, kind[source])


def _group_dark(amp, start, stop, kind, has_data, budget, size):
    """Observation index of every unilluminated unit, merging far ones to meet the budget."""
    dark = (kind == DARK) & has_data
    group = np.full(amp.size, -1, dtype=np.int64)
    idx = np.flatnonzero(dark)
    if idx.size == 0:
        return group
    lit_ticks = np.sort(np.concatenate([start[kind == LIT], stop[kind == LIT] - 1]))
    centre = 0.5 * (start[idx] + stop[idx] - 1)
    if lit_ticks.size:
        pos = np.searchsorted(lit_ticks, centre)
        before = lit_ticks[np.clip(pos - 1, 0, lit_ticks.size - 1)]
        after = lit_ticks[np.clip(pos, 0, lit_ticks.size - 1)]
        distance = np.minimum(np.abs(centre - before), np.abs(after - centre))
    else:
        distance = np.full(idx.size, float(stop.max()))
    # merge consecutive dark units of an output while the span stays below distance / rate
    for rate in (np.inf, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.0):
        limit = np.maximum(size, distance / rate) if rate > 0 else np.full(idx.size, np.inf)
        ids = _greedy_groups(amp[idx], start[idx], stop[idx], limit)
        if ids[-1] + 1 <= max(budget, 1) or rate == 0.0:
            break
    group[idx] = ids
    return group


def _greedy_groups(amp, start, stop, limit):
    """Group consecutive units of one output while the group spans less than its limit."""
    ids = np.empty(amp.size, dtype=np.int64)
    current, g_start, g_limit = 0, start[0], limit[0]
    ids[0] = 0
    for i in range(1, amp.size):
        g_limit = min(g_limit, limit[i])
        if amp[i] != amp[i - 1] or stop[i] - g_start > g_limit:
            current += 1
            g_start, g_limit = start[i], limit[i]
        ids[i] = current
    return ids
