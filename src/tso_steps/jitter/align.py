"""Measure and undo per-integration shifts of spectral images and 1-D spectra.

Shifts are measured with :func:`tso_steps.motion.measure_shifts` (Gauss-Newton
registration of every frame on a spline model of the reference, fitting a flux scale and an
offset, which is the sub-pixel maximum of the cross-correlation without the bias of
interpolating a correlation peak).  The median reference is itself blurred by the jitter, so
after a first pass the frames are realigned and the median of the realigned frames becomes
the reference of a second pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tso_steps.jitter.resample import FrameShifter, shift_array, shift_dq, shift_kernel
from tso_steps.motion import measure_shifts
from tso_steps.stats import nanmedian_over_frames

__all__ = [
    "Alignment",
    "AlignmentOptions",
    "applied_moves",
    "axis_summary",
    "follow_trace",
    "mean_slope",
    "measure_alignment",
    "measured_shifts",
    "missing_shifts",
    "realign",
    "realign_dq",
    "realign_dq_frames",
    "realign_error_frames",
    "realign_frames",
    "realigned_median",
    "trace_after_jitter",
]

#: Samples per slab of the median frames (float64 slabs of 8 MB).
MEDIAN_SAMPLES = 1_000_000

#: Samples per slab of the realigned median (float64 slabs of 64 MB): every frame is
#: realigned slab by slab, and on a full SOSS segment (1.1 M samples a line) slabs of one
#: line made 137,000 small realignments, each paying numpy's and scipy's call overhead.
REALIGN_SAMPLES = 8_000_000


@dataclass
class Alignment:
    """Per-frame shifts against the reference.

    Attributes
    ----------
    shifts, errors : ndarray, shape ``(nframes, ndim)``
        Shift of each frame's content along each array axis and its 1-sigma error, pixels.
    usable : ndarray of bool, shape ``(ndim,)``
        Axes along which the shifts are measurable (median error below the threshold).
    """

    shifts: np.ndarray
    errors: np.ndarray
    usable: np.ndarray


@dataclass(frozen=True)
class AlignmentOptions:
    """Settings of :func:`measure_alignment` (the ``tso_jitter`` spec; see the step).

    Attributes
    ----------
    reference : "median" or int
        The median of the frames, or the 0-based index of one frame.
    region : tuple of slice, optional
        Part of each frame used for the measurement.
    iterations : int
        Measurement passes, all run; after the first, the reference is rebuilt from realigned
        frames (only with ``reference="median"``).
    max_pixels : int
        Pixels with the steepest reference gradient used for the fit.
    max_error : float
        An axis whose median shift error exceeds this (pixels) is not measurable.
    """

    reference: str | int = "median"
    region: tuple | None = None
    iterations: int = 2
    max_pixels: int = 20000
    max_error: float = 0.02


def measure_alignment(frames, options=None, **settings):
    """Measure every frame's shift against a reference.

    Parameters
    ----------
    frames : ndarray, shape ``(nframes, ny, nx)`` or ``(nframes, n)``
    options : AlignmentOptions, optional
        Default ``AlignmentOptions()``.
    **settings
        Fields of :class:`AlignmentOptions` given as keywords; they override ``options``.

    Returns
    -------
    Alignment
    """
    o = replace(options or AlignmentOptions(), **settings)
    reference, region, iterations = o.reference, o.region, o.iterations
    max_pixels, max_error = o.max_pixels, o.max_error
    # the frames as they are (a float64 copy of a segment would be a third of its file);
    # every piece the measurement uses is converted to float64 where it is read
    frames = np.asarray(frames)
    ndim = frames.ndim - 1
    sub = frames if region is None else frames[(slice(None), *region)]
    if reference == "median":
        ref = nanmedian_over_frames(sub, samples=MEDIAN_SAMPLES)
    else:
        ref = np.asarray(sub[int(reference)], dtype=np.float64)
    result = None
    for npass in range(iterations):
        result = measure_shifts(sub, reference=ref, max_pixels=max_pixels)
        if reference != "median" or npass == iterations - 1:
            break
        shifts = np.where(np.isfinite(result.shifts), result.shifts, 0.0)
        ref = realigned_median(sub, shifts)
    errors = result.errors
    usable = np.nanmedian(errors, axis=0) <= max_error if np.isfinite(errors).any() else None
    if usable is None:
        usable = np.zeros(ndim, dtype=bool)
    return Alignment(result.shifts, errors, np.asarray(usable))


def realigned_median(frames, shifts, samples=None):
    """Median over frames of the frames realigned by ``shifts``, by slabs of lines.

    The same values as realigning every frame (:func:`realign`) and taking
    :func:`~tso_steps.stats.nanmedian_over_frames` of the stack, without holding the
    realigned float64 stack (a third of a rateints file): each slab of lines along the first
    image axis is realigned with the lines its shift kernels reach on either side, which
    are then dropped, so every kept value is computed from the same samples as on the whole
    frame.

    Parameters
    ----------
    frames : ndarray, shape ``(nframes, n0, ...)``
        Any real dtype; NaN marks unusable samples.
    shifts : ndarray, shape ``(nframes, ndim)``
        Shift of each frame's content to undo along each image axis, pixels (finite).
    samples : int, optional
        Realigned samples per slab (default ``REALIGN_SAMPLES``).

    Returns
    -------
    ndarray, shape ``frames.shape[1:]``, float64
    """
    frames = np.asarray(frames)
    nframes, n0 = frames.shape[:2]
    per_line = max(int(np.prod(frames.shape[2:], dtype=np.int64)) * nframes, 1)
    step = max(1, int(samples or REALIGN_SAMPLES) // per_line)
    # lines a shift kernel reads on either side of its output line, along the first axis
    reach = max(
        (int(np.max(np.abs(shift_kernel(float(s))[0]))) for s in shifts[:, 0] if s != 0.0),
        default=0,
    )
    out = np.empty(frames.shape[1:])
    slab = None
    for start in range(0, n0, step):
        stop = min(start + step, n0)
        lo, hi = max(start - reach, 0), min(stop + reach, n0)
        if slab is None or slab.shape[1] != stop - start:
            slab = np.empty((nframes, stop - start, *frames.shape[2:]))
        for i, shift in enumerate(shifts):
            part = np.asarray(frames[i, lo:hi], dtype=np.float64)
            if shift[0] != 0.0:
                part = shift_array(part, shift[0], 0)
            part = part[start - lo : stop - lo]
            for axis in range(1, len(shift)):
                if shift[axis] != 0.0:
                    part = shift_array(part, shift[axis], axis)
            slab[i] = part
        out[start:stop] = nanmedian_over_frames(slab, samples=slab.size)
    return out


def _undo(frame, shifts, variance=False):
    out = frame
    for axis, shift in enumerate(shifts):
        if shift != 0.0:
            out = shift_array(out, shift, axis, variance=variance)
    return out


def realign(frame, shifts, variance=False):
    """Move one frame's content back by ``shifts`` (one per axis), conserving flux.

    Parameters
    ----------
    frame : ndarray
    shifts : sequence of float
        Shift of the content along each axis to undo, pixels (0 or NaN: not moved).
    variance : bool
        ``frame`` is a variance (squared weights).

    Returns
    -------
    ndarray
    """
    shifts = [0.0 if not np.isfinite(s) else float(s) for s in shifts]
    return _undo(frame, shifts, variance=variance)


def realign_dq(dq, shifts):
    """OR-combine DQ over the pixels contributing to each realigned pixel."""
    out = dq
    for axis, shift in enumerate(shifts):
        if np.isfinite(shift) and shift != 0.0:
            out = shift_dq(out, float(shift), axis)
    return out


def realign_frames(frames, moves, variance=False, out=None):
    """:func:`realign` every frame of a stack by its own move, one frame at a time.

    Parameters
    ----------
    frames : ndarray, shape ``(nframes, ...)``
    moves : ndarray, shape ``(nframes, ndim)``
        Shift of each frame's content to undo, pixels (0 or NaN: not moved).
    variance : bool
        ``frames`` are variances.
    out : ndarray, optional
        Where to write the result (may be ``frames`` itself: each frame is read before it
        is overwritten), so a full-size stack is never copied; default a new float64 stack.

    Returns
    -------
    ndarray
        ``out``.
    """
    if out is None:
        out = np.empty(np.shape(frames), dtype=np.float64)
    # the same values as realign(), in buffers reused from frame to frame
    shifter = FrameShifter(np.shape(frames)[1:])
    for i, move in enumerate(moves):
        out[i] = shifter.undo(frames[i], move, variance)
    return out


def realign_error_frames(errors, moves, out=None):
    """Realign 1-sigma errors frame by frame: move their squares as variances, return the root.

    ``out`` as in :func:`realign_frames`.
    """
    if out is None:
        out = np.empty(np.shape(errors), dtype=np.float64)
    shifter = FrameShifter(np.shape(errors)[1:])
    square = np.empty(np.shape(errors)[1:])
    for i, move in enumerate(moves):
        np.square(errors[i], out=square, dtype=np.float64)
        moved = shifter.undo(square, move, True)
        out[i] = np.sqrt(moved, out=moved)
    return out


def realign_dq_frames(dq, moves, out=None):
    """Each frame's DQ OR'ed with the DQ of the pixels its realigned pixels come from.

    ``out`` as in :func:`realign_frames` (default a new array of ``dq``'s type).
    """
    if out is None:
        out = np.empty(np.shape(dq), dtype=np.asarray(dq[:1]).dtype)
    shifter = FrameShifter(np.shape(dq)[1:])
    for i, move in enumerate(moves):
        frame = np.asarray(dq[i])
        out[i] = frame | shifter.undo_dq(frame, move)
    return out


def mean_slope(center, column_error):
    """Information-weighted mean slope d(centre)/d(dispersion pixel) of traced orders.

    Parameters
    ----------
    center, column_error : ndarray, shape ``(norders, ncolumns)``
        Trace centre of each order per column and its 1-sigma error, pixels.

    Returns
    -------
    float
        0 when no column has a finite slope and error.
    """
    with np.errstate(all="ignore"):
        slope = np.gradient(center, axis=1)
        weight = 1.0 / column_error**2
    ok = np.isfinite(slope) & np.isfinite(weight)
    return float(np.sum(slope[ok] * weight[ok]) / np.sum(weight[ok])) if ok.any() else 0.0


def follow_trace(alignment, axis, trace_shift, trace_error, slope, max_error):
    """Replace the cross-dispersion shifts by those of a trace fit (``alignment`` is changed).

    At a fixed column a tilted or curved trace also moves across the dispersion when the
    spectrum moves along it: ``c(d - s_d) + s_c ~ c(d) - c'(d) s_d + s_c``.

    Parameters
    ----------
    alignment : Alignment
    axis : int
        Dispersion axis of the frames (0 or 1).
    trace_shift, trace_error : ndarray, shape ``(nframes,)``
        Trace-fit shift across the dispersion and its error, pixels.
    slope : float
        Mean trace slope (:func:`mean_slope`).
    max_error : float
        The cross-dispersion axis is usable when the median trace error is below this.
    """
    along = np.where(np.isfinite(alignment.shifts[:, axis]), alignment.shifts[:, axis], 0)
    alignment.shifts[:, 1 - axis] = trace_shift + slope * along
    alignment.errors[:, 1 - axis] = trace_error
    alignment.usable[1 - axis] = np.nanmedian(trace_error) <= max_error


def measured_shifts(alignment, lost=None):
    """The shifts with unusable axes (and ``lost`` frames) set to NaN."""
    shifts = alignment.shifts.copy()
    shifts[:, ~np.asarray(alignment.usable, dtype=bool)] = np.nan
    if lost is not None:
        shifts[lost] = np.nan
    return shifts


def axis_summary(alignment):
    """Per axis: median error, and rms, minimum and maximum of the shifts (pixels)."""
    shifts = alignment.shifts
    return [
        (
            float(np.nanmedian(alignment.errors[:, k])),
            float(np.nanstd(shifts[:, k])),
            float(np.nanmin(shifts[:, k])),
            float(np.nanmax(shifts[:, k])),
        )
        for k in range(shifts.shape[1])
    ]


def missing_shifts(shifts):
    """Frames with no finite shift on an axis that has any (all frames when none has)."""
    axes = np.isfinite(shifts).any(axis=0)
    if axes.any():
        return ~np.isfinite(shifts[:, axes]).all(axis=1)
    return np.ones(shifts.shape[0], dtype=bool)


def applied_moves(shifts, axis, fwhm=None, undersampled_fwhm=0.0):
    """The shifts to undo: not across an undersampled trace.

    Interpolating across a trace whose core is narrower than tso_trace's undersampled
    limit blurs the core in proportion to the shift (a 0.05 px move lowered NIRSpec's peak
    pixel fraction from 0.712 to 0.700), which an extraction profile then reads as a
    width change; the cross-dispersion shift is then recorded, not resampled.

    Parameters
    ----------
    shifts : ndarray, shape ``(nframes, 2)``
    axis : int
        Dispersion axis.
    fwhm : float, optional
        Trace FWHM, pixels; None: the shifts are all applied.
    undersampled_fwhm : float
        Traces narrower than this are not resampled across.

    Returns
    -------
    applied : ndarray, shape ``(nframes, 2)``
    held : bool
        The cross-dispersion shifts were set to 0.
    """
    applied = shifts.copy()
    if fwhm is None:
        return applied, False
    if fwhm < undersampled_fwhm and np.isfinite(applied[:, 1 - axis]).any():
        applied[:, 1 - axis] = np.where(np.isfinite(applied[:, 1 - axis]), 0.0, np.nan)
        return applied, True
    return applied, False


def trace_after_jitter(trace_shift, slope, applied, axis):
    """Cross-dispersion trace offset left in each frame after the ``applied`` moves."""
    along = np.where(np.isfinite(applied[:, axis]), applied[:, axis], 0.0)
    across = np.where(np.isfinite(applied[:, 1 - axis]), applied[:, 1 - axis], 0.0)
    return trace_shift + slope * along - across
