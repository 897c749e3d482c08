"""Jump detection from the time series of each group difference (no reference files needed).

A jump (cosmic ray, snowball, shower) is a step in one ramp, so exactly one group difference
of that integration carries it. The same group difference in the neighbouring integrations
measured the same sky, so their running median, rescaled by each integration's relative
flux (a transit or a ramp is then not a jump) and corrected for image motion (jitter), is
the expected value. What is left, after removing the common offset of each detector line
(1/f noise), is compared with the pixel's own robust scatter. See ``docs/steps/tso_jump.rst``.

The cube is processed in slabs of whole detector lines so that only a slab is ever converted
to float, and slabs can run on several threads (numpy releases the GIL in the heavy calls).
What spans the frame is computed over the whole frame whatever the slabs: the pixels of the
flux and motion fit (pass 1), and the noise model the scatter is shrunk towards (pass 2
keeps each slab's per-pixel scatter and the few samples that could pass the threshold under
any noise model; they are scored once the model is fitted). The flags therefore do not
depend on the slab size (``chunk_mbytes``, i.e. the step's ``memory_budget``).
``groupdq`` is updated in place.
"""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tso_steps.inputs import DO_NOT_USE as PIXEL_DNU
from tso_steps.inputs import GROUP_DO_NOT_USE, GROUP_JUMP_DET, GROUP_SATURATED
from tso_steps.inputs.budget import chunk_spans
from tso_steps.jump.events import expand_events
from tso_steps.jump.regressors import FrameSamples, fit_frame_regressors, sample_frame_pixels
from tso_steps.jump.residuals import (
    clean_residuals,
    fit_noise_model,
    prior_variance,
    scatter_lower_bound,
    shrink_to_prior,
)
from tso_steps.parallel import Progress
from tso_steps.stats import strided_rolling_median

__all__ = ["JumpOptions", "JumpResult", "detect_jumps"]

log = logging.getLogger("stpipe.tso_steps.jump")

JUMP_DET = GROUP_JUMP_DET
SATURATED = GROUP_SATURATED
DO_NOT_USE = GROUP_DO_NOT_USE
PIXEL_DO_NOT_USE = PIXEL_DNU
_BAD = SATURATED | DO_NOT_USE

_FRAME_SAMPLES = 40000  # pixels kept for the flux/motion fit


@dataclass
class JumpResult:
    """Summary of a detection run (the flags themselves are written into ``groupdq``)."""

    n_flagged: np.ndarray  # (nints,) group samples flagged by the time-series test
    n_neighbours: int  # extra samples flagged around large events
    relative_flux: np.ndarray  # (nints,)
    shifts: np.ndarray  # (nints, 2) motion proxies a_i, b_i (pixels)
    n_events: int = 0
    n_tested: int = 0
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JumpOptions:
    """Settings of :func:`detect_jumps` (the ``tso_jump`` spec; see the step for defaults).

    Attributes
    ----------
    rejection_threshold : float
        Rejection threshold for positive jumps (cosmic rays add charge), in units of the
        residual's scatter.
    negative_threshold : float
        Threshold for negative excursions (rare physically, so a higher one keeps the false
        alarms down).
    rolling_window_width : int
        Integrations in the running median that predicts each group difference.
    minimum_ints : int
        Minimum usable integrations in a window for a sample to be tested.
    line_offsets : bool
        Remove the common offset of each line and output per group difference (1/f noise).
    motion : {'measure', 'none'}
        ``measure``: regress each pixel's residuals on the frame's per-integration shift
        proxies, measured from the data; ``none``: no motion terms.
    flag_neighbors : bool
        Flag neighbourhoods of large events (see :func:`~tso_steps.jump.events.expand_events`).
    neighbor_threshold, max_neighbor_radius, min_event_area, expand_factor
        Passed to :func:`~tso_steps.jump.events.expand_events` (``max_neighbor_radius`` as
        its ``max_radius``).
    chunk_mbytes : float
        Size of one slab of group differences in float32, MB; working memory is about
        ten times this per thread.
    workers : int
        Threads processing slabs concurrently.
    nframes : int
        Frames averaged per group (scales the read-noise prior).
    fast_axis : int
        Array axis (0 = y, 1 = x) along which pixels are read; slabs hold whole fast lines.
    n_amps : int
        Number of outputs (1 or 4).
    interleaved : bool
        Outputs interleave pixel by pixel (MIRI) instead of reading bands.
    """

    rejection_threshold: float = 4.25
    negative_threshold: float = 5.0
    rolling_window_width: int = 25
    minimum_ints: int = 5
    line_offsets: bool = True
    motion: str = "measure"
    flag_neighbors: bool = True
    neighbor_threshold: float = 200.0
    max_neighbor_radius: int = 30
    min_event_area: int = 5
    expand_factor: float = 2.0
    chunk_mbytes: float = 16.0
    workers: int = 1
    nframes: int = 1
    fast_axis: int = 1
    n_amps: int = 1
    interleaved: bool = False


def detect_jumps(data, groupdq, pixeldq=None, *, options=None, gain=None, readnoise=None):
    """Flag jumps as JUMP_DET in ``groupdq`` by comparing each group difference with time.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ngroups, ny, nx)``
        Ramps in DN (any float dtype; never modified, only slabs are converted).
    groupdq : ndarray of uint8, same shape
        Group DQ; SATURATED and DO_NOT_USE groups are excluded. JUMP_DET is OR-ed in place.
    pixeldq : ndarray of uint32, shape ``(ny, nx)``, optional
        DO_NOT_USE pixels are skipped.
    options : JumpOptions, optional
        Settings; default ``JumpOptions()``.
    gain : ndarray, shape ``(ny, nx)``, optional
        e-/DN. With ``readnoise``, replaces the self-calibrated noise prior.
    readnoise : ndarray, shape ``(ny, nx)``, optional
        CDS read noise (of a difference of two frames), DN, as in jwst READNOISE references.

    Returns
    -------
    JumpResult
    """
    options = JumpOptions() if options is None else options
    nints, ngroups, ny, nx = data.shape
    if ngroups < 2:
        raise ValueError("Jump detection needs at least 2 groups per integration.")
    slow_axis = 1 - options.fast_axis
    n_slow = (ny, nx)[slow_axis]
    line_bytes = 4 * nints * (ngroups - 1) * (nx if slow_axis == 0 else ny)
    spans = chunk_spans(n_slow, line_bytes, default_bytes=options.chunk_mbytes * 1e6)
    prior = None
    if gain is not None and readnoise is not None:
        prior = (np.asarray(gain, dtype=np.float32), np.asarray(readnoise, dtype=np.float32))

    ctx = dict(
        data=data,
        groupdq=groupdq,
        pixeldq=pixeldq,
        slow_axis=slow_axis,
        n_slow=n_slow,
        total_lines=n_slow,
    )

    # pass 1: per-integration flux scale and motion proxies from the informative pixels
    # (the best of the frame, merged after every round of slabs so memory stays bounded)
    samples = None
    rounds = max(1, options.workers)
    for first in range(0, len(spans), rounds):
        found = _map(
            options.workers,
            lambda span: _sample_slab(ctx, span, _FRAME_SAMPLES),
            spans[first : first + rounds],
        )
        samples = FrameSamples.best([samples, *found], _FRAME_SAMPLES)
    flux, shifts = fit_frame_regressors(samples, nints)
    del samples
    regressors = None
    if options.motion == "measure" and np.any(shifts):
        # the running median already follows slow drifts: keep the fast part only
        slow = strided_rolling_median(shifts.T.astype(np.float64), options.rolling_window_width)
        regressors = (shifts - slow.T).astype(np.float32)
        if not np.any(np.abs(regressors) > 0):
            regressors = None

    # pass 2: the time-series test, slab by slab; the samples that might be flagged are
    # scored once the noise model of the whole frame is known
    outputs = _map(
        options.workers,
        lambda span: _detect_slab(ctx, span, flux, regressors, options),
        spans,
        label="tso_jump: detecting",
    )
    seeds, n_flagged = _score_candidates(outputs, ctx, prior, options, nints)
    n_tested = int(sum(o["tested"] for o in outputs))
    sat = np.concatenate([o["sat"] for o in outputs], axis=0)
    del outputs
    n_extra, n_events = 0, 0
    if options.flag_neighbors:
        n_extra, n_events = expand_events(
            groupdq,
            seeds,
            sat,
            neighbor_threshold=options.neighbor_threshold,
            max_radius=options.max_neighbor_radius,
            min_event_area=options.min_event_area,
            expand_factor=options.expand_factor,
        )
    return JumpResult(
        n_flagged=n_flagged,
        n_neighbours=n_extra,
        relative_flux=flux,
        shifts=shifts,
        n_events=n_events,
        n_tested=n_tested,
    )


def _score_candidates(outputs, ctx, prior, options, nints):
    """Final scatter and score of the candidate samples; JUMP_DET OR-ed into ``groupdq``.

    Returns the seeds for neighbour flagging ``(int, group, y, x, |score|)`` and the flagged
    count per integration.
    """
    sigma_map = np.concatenate([o["sigma"] for o in outputs], axis=0)  # (S, F)
    level_map = np.concatenate([o["level"] for o in outputs], axis=0)
    count_map = np.concatenate([o["count"] for o in outputs], axis=0)
    s, f, g, i = (np.concatenate([o["where"][k] for o in outputs]) for k in range(4))
    values = np.concatenate([o["values"] for o in outputs])
    y, x = (s, f) if ctx["slow_axis"] == 0 else (f, s)
    sigma, level, count = sigma_map[s, f], level_map[s, f], count_map[s, f]
    if prior is not None:
        prior_var = prior_variance(level, (prior[0][y, x], prior[1][y, x]), options.nframes)
    else:
        model = fit_noise_model(sigma_map, level_map)
        prior_var = None if model is None else model(level)
    sigma = shrink_to_prior(sigma, count, prior_var)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = values / sigma
        flagged = (score > options.rejection_threshold) | (score < -options.negative_threshold)
    s, f, g, i, y, x, score = (a[flagged] for a in (s, f, g, i, y, x, score))
    # difference g is flagged on its later group g + 1
    ctx["groupdq"][i, g + 1, y, x] |= JUMP_DET
    seeds = np.column_stack([i, g + 1, y, x, np.abs(score)]).astype(np.float64).reshape(-1, 5)
    return seeds, np.bincount(i, minlength=nints)


# ----------------------------------------------------------------------------------------
def _map(workers, function, items, label=None):
    """``map`` on a thread pool (slabs write disjoint parts of ``groupdq``)."""
    if label is not None:
        function = Progress(log, label, len(items), unit="slabs of lines").wrap(function)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _slab_index(slow_axis, start, stop):
    """Index of a slab of lines into a ``(nints, ngroups, ny, nx)`` array."""
    lines = slice(start, stop)
    if slow_axis == 0:
        return (slice(None), slice(None), lines, slice(None))
    return (slice(None), slice(None), slice(None), lines)


def _group_diffs(ctx, start, stop):
    """Float32 group differences of a slab, NaN where a group is unusable."""
    index = _slab_index(ctx["slow_axis"], start, stop)
    slab = ctx["data"][index]
    gdq = ctx["groupdq"][index]
    diffs = np.diff(slab.astype(np.float32, copy=False), axis=1)
    bad_group = (gdq & (SATURATED | DO_NOT_USE)) != 0
    bad = bad_group[:, 1:] | bad_group[:, :-1]
    if ctx["pixeldq"] is not None:
        pdq = ctx["pixeldq"][index[2:]]
        bad |= ((pdq & PIXEL_DO_NOT_USE) != 0)[None, None]
    diffs[bad] = np.nan
    return diffs, gdq


def _sample_slab(ctx, span, keep):
    start, stop = span
    lo, hi = max(0, start - 1), min(ctx["n_slow"], stop + 1)  # halo for the gradient
    index = _slab_index(ctx["slow_axis"], lo, hi)
    data, gdq = ctx["data"], ctx["groupdq"]
    ngroups = data.shape[1]
    # mean group difference from the first and last groups only: cheap, and outliers are
    # clipped by the fit; a pixel whose last group is unusable sits out that integration
    first = data[index[0], 0, *index[2:]].astype(np.float32)
    per_int = data[index[0], -1, *index[2:]].astype(np.float32)
    per_int -= first
    per_int /= ngroups - 1
    bad = ((gdq[index[0], -1, *index[2:]] | gdq[index[0], 0, *index[2:]]) & _BAD) != 0
    if ctx["pixeldq"] is not None:
        bad |= ((ctx["pixeldq"][index[2:]] & PIXEL_DO_NOT_USE) != 0)[None]
    per_int[bad] = np.nan
    inner = slice(start - lo, start - lo + (stop - start))
    interior = (inner, slice(None)) if ctx["slow_axis"] == 0 else (slice(None), inner)
    ny, nx = data.shape[2:]
    lines = np.arange(start, stop)[:, None]
    if ctx["slow_axis"] == 0:
        index = lines * nx + np.arange(nx)[None, :]
    else:
        index = np.arange(ny)[:, None] * nx + lines.T
    return sample_frame_pixels(per_int, keep, interior, index)


def _to_lines(array, slow_axis):
    """(nints, ndiff, ny, nx) -> (slow, fast, ndiff, nints) contiguous."""
    order = (2, 3, 1, 0) if slow_axis == 0 else (3, 2, 1, 0)
    return np.ascontiguousarray(array.transpose(order))


def _detect_slab(ctx, span, flux, regressors, options):
    start, stop = span
    slow_axis = ctx["slow_axis"]
    diffs, gdq = _group_diffs(ctx, start, stop)
    nints = diffs.shape[0]
    diffs /= flux.astype(np.float32)[:, None, None, None]
    series = _to_lines(diffs, slow_axis)  # (S, F, G, I)
    del diffs
    reference = strided_rolling_median(
        series, options.rolling_window_width, min_count=options.minimum_ints
    )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        level = np.nanmean(reference[..., :: max(1, nints // 16)], axis=(2, 3))
    residual = series
    residual -= reference
    del reference
    testable = np.isfinite(residual)
    sigma, count = clean_residuals(
        residual,
        regressors,
        line_offsets=options.line_offsets,
        n_amps=options.n_amps,
        interleaved=options.interleaved,
    )
    # keep what could pass the threshold under any noise model (the model is frame-wide)
    cut = 0.999 * min(options.rejection_threshold, options.negative_threshold)
    bound = cut * scatter_lower_bound(sigma, count)
    with np.errstate(invalid="ignore"):
        candidate = testable & ~(np.abs(residual) < bound[..., None, None])
    s, f, g, i = np.nonzero(candidate)
    return dict(
        tested=int(testable.sum()),
        sigma=sigma,
        level=level,
        count=count,
        where=(s + start, f, g, i),
        values=residual[s, f, g, i],
        sat=_saturation_onsets(gdq, slow_axis, start),
    )


def _saturation_onsets(gdq, slow_axis, start):
    """Groups where a pixel saturates earlier than it usually does: cores of large events.

    Returns
    -------
    ndarray, shape ``(n, 4)``
        ``(integration, group, y, x)``.
    """
    sat = (gdq & SATURATED) != 0
    if not sat.any():
        return np.zeros((0, 4))
    ngroups = sat.shape[1]
    first = np.where(sat.any(axis=1), sat.argmax(axis=1), ngroups)  # (I, Y, X)
    usual = np.median(first, axis=0)
    early = (first < usual - 0.5) & (first >= 1)
    i, y, x = np.nonzero(early)
    g = first[i, y, x]
    if slow_axis == 0:
        y = y + start
    else:
        x = x + start
    return np.column_stack([i, g, y, x]).astype(np.float64)
