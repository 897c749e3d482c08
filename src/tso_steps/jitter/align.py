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

from tso_steps.jitter.resample import shift_array, shift_dq
from tso_steps.motion import measure_shifts

__all__ = ["Alignment", "AlignmentOptions", "measure_alignment", "realign", "realign_dq"]


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
    frames = np.asarray(frames, dtype=np.float64)
    ndim = frames.ndim - 1
    sub = frames if region is None else frames[(slice(None), *region)]
    if reference == "median":
        ref = np.nanmedian(sub, axis=0)
    else:
        ref = sub[int(reference)]
    result = None
    for npass in range(iterations):
        result = measure_shifts(sub, reference=ref, max_pixels=max_pixels)
        if reference != "median" or npass == iterations - 1:
            break
        shifts = np.where(np.isfinite(result.shifts), result.shifts, 0.0)
        aligned = np.stack([_undo(f, s) for f, s in zip(sub, shifts, strict=True)])
        ref = np.nanmedian(aligned, axis=0)
    errors = result.errors
    usable = np.nanmedian(errors, axis=0) <= max_error if np.isfinite(errors).any() else None
    if usable is None:
        usable = np.zeros(ndim, dtype=bool)
    return Alignment(result.shifts, errors, np.asarray(usable))


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
