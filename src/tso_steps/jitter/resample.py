"""Flux-conserving sub-pixel shifts of images and spectra along one axis.

The data are treated as pixel integrals of a continuous signal: the cumulative sum at pixel
edges is interpolated by a cubic (4-point Lagrange) polynomial and differenced at the shifted
edges.  The total is conserved exactly (the differences telescope) apart from the flux moved
across the array's ends, and the operation is a short convolution kernel (5 taps), so
variances are propagated with the squared kernel (covariance between neighbouring output
pixels is not tracked) and DQ is OR-ed over the pixels that contribute.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.ndimage import correlate1d

__all__ = ["FrameShifter", "shift_kernel", "shift_array", "shift_dq"]

_RADIUS = 3


def _cumulative_shift(values, shift):
    """Resample arrays along their last axis by the cumulative-Lagrange rule (reference)."""
    n = values.shape[-1]
    leading = values.shape[:-1]
    cum = np.concatenate([np.zeros((*leading, 1)), np.cumsum(values, axis=-1)], axis=-1)
    edges = np.arange(n + 1) + shift  # shifted edge positions, in units of the edge index
    i0 = np.floor(edges).astype(int)
    t = edges - i0
    # 4-point Lagrange through edges i0-1, i0, i0+1, i0+2.
    w = np.stack(
        [
            -t * (t - 1) * (t - 2) / 6,
            (t + 1) * (t - 1) * (t - 2) / 2,
            -(t + 1) * t * (t - 2) / 2,
            (t + 1) * t * (t - 1) / 6,
        ]
    )
    idx = np.clip(i0[None, :] + np.arange(-1, 3)[:, None], 0, n)
    # the four terms summed in order, one array per leading index
    value = np.sum(w.reshape(4, *(1,) * len(leading), n + 1) * np.moveaxis(cum[..., idx], -2, 0), 0)
    return np.diff(value, axis=-1)


def shift_kernel(shift):
    """Convolution kernel moving content by ``-shift`` pixels (undoing a shift ``shift``).

    Parameters
    ----------
    shift : float
        Shift of the content to undo, pixels: ``out[k] ~ in(k + shift)``.

    Returns
    -------
    offsets : ndarray of int
        Source pixel offsets ``j``.
    weights : ndarray
        ``out[k] = sum_j weights[j] * in[k + offsets[j]]``; they sum to 1.
    """
    offsets, weights = _kernel(float(shift))
    return offsets.copy(), weights.copy()


@functools.lru_cache(maxsize=4096)
def _kernel(shift):
    """:func:`shift_kernel`, cached (read-only arrays).

    A realigned median asks for each frame's kernel once per slab of lines (256 slabs of a
    full SOSS segment), and one costs about 0.5 ms to build.
    """
    whole = int(np.floor(shift))
    frac = shift - whole
    size = 4 * _RADIUS + 1
    centre = size // 2
    offsets = np.arange(-_RADIUS, _RADIUS + 1)
    # the response at the centre to a unit pixel at each offset, all offsets in one pass
    deltas = np.zeros((offsets.size, size))
    deltas[np.arange(offsets.size), centre + offsets] = 1.0
    response = _cumulative_shift(deltas, frac)[:, centre]
    keep = np.abs(response) > 1e-12
    kernel = (offsets[keep] + whole, response[keep])
    for part in kernel:
        part.flags.writeable = False
    return kernel


def shift_array(array, shift, axis, variance=False):
    """Undo a sub-pixel shift of an array along one axis, conserving flux.

    Parameters
    ----------
    array : ndarray
        Data (or variance, with ``variance=True``).  NaN samples spread to the pixels they
        contribute to.
    shift : float
        Shift of the content along ``axis`` to undo, pixels.
    axis : int
    variance : bool
        Propagate a variance: weights are squared.

    Returns
    -------
    ndarray
        Same shape; beyond the array's ends the edge pixel is repeated.
    """
    offsets, weights = shift_kernel(shift)
    if variance:
        weights = weights**2
    array = np.asarray(array, dtype=np.float64)
    # scipy's compiled correlation, same taps and edge rule ('nearest' repeats the edge
    # pixel), 2-10x faster; its origin reaches only shifts of about a pixel
    origin = -(int(offsets[0]) + weights.size // 2)
    contiguous = np.all(np.diff(offsets) == 1)
    if contiguous and -(weights.size // 2) <= origin <= (weights.size - 1) // 2:
        return correlate1d(array, weights, axis=axis, mode="nearest", origin=origin)
    moved = np.moveaxis(array, axis, -1)
    n = moved.shape[-1]
    pad = int(np.max(np.abs(offsets)))
    padded = _edge_padded(moved, pad)
    out = np.zeros_like(moved)
    for j, w in zip(offsets, weights, strict=True):
        out += w * padded[..., pad + j : pad + j + n]
    return np.moveaxis(out, -1, axis)


def shift_dq(dq, shift, axis, threshold=1e-3):
    """OR of the DQ of the pixels contributing more than ``threshold`` to each output pixel."""
    offsets, weights = shift_kernel(shift)
    moved = np.moveaxis(dq, axis, -1)
    n = moved.shape[-1]
    pad = int(np.max(np.abs(offsets)))
    padded = _edge_padded(moved, pad)
    out = np.zeros_like(moved)
    for j, w in zip(offsets, weights, strict=True):
        if abs(w) > threshold:
            out |= padded[..., pad + j : pad + j + n]
    return np.moveaxis(out, -1, axis)


class FrameShifter:
    """:func:`shift_array` and :func:`shift_dq` for many frames of one shape, in reused buffers.

    Realigning a cube frame by frame with :func:`shift_array` allocates three or four
    frame-sized temporaries per frame and array, and scipy's ``correlate1d`` along the first
    image axis walks the frame column by column; here every frame is edge-padded into a
    buffer kept from frame to frame and the taps are added by whole-frame numpy operations,
    in ``correlate1d``'s order (the last tap, then the others from the first), so the values
    are ``shift_array``'s.  The rare kernel ``correlate1d`` treats as symmetric (odd length,
    mirrored weights within 2.2e-16) goes to ``correlate1d`` itself.

    Parameters
    ----------
    shape : tuple of int
        Shape of every frame.
    """

    def __init__(self, shape):
        self.shape = tuple(shape)
        self._frames = [np.empty(self.shape), np.empty(self.shape)]
        self._term = np.empty(self.shape)
        self._padded = {}
        self._dq = None

    def undo(self, frame, shifts, variance=False):
        """``frame`` with ``shifts`` (one per axis; 0 or NaN: not moved) undone, in float64.

        Parameters
        ----------
        frame : ndarray, shape ``self.shape``
            Any real dtype; not modified.
        shifts : sequence of float
            Shift of the content along each axis to undo, pixels.
        variance : bool
            ``frame`` is a variance: the weights are squared.

        Returns
        -------
        ndarray
            One of this object's buffers: valid until the next call.
        """
        current = np.asarray(frame)
        if current.dtype != np.float64 or not current.flags.c_contiguous:
            np.copyto(self._frames[0], current, casting="unsafe")
            current = self._frames[0]
        for axis, shift in enumerate(shifts):
            if not np.isfinite(shift) or shift == 0.0:
                continue
            out = self._frames[1] if current is self._frames[0] else self._frames[0]
            self._correlate(current, float(shift), axis, variance, out)
            current = out
        return current

    def undo_dq(self, dq, shifts, threshold=1e-3):
        """:func:`shift_dq` along every axis with a finite non-zero shift, in a reused buffer.

        Returns
        -------
        ndarray
            ``dq`` itself when nothing moves, else a buffer valid until the next call.
        """
        current = np.asarray(dq)
        if self._dq is None or self._dq[0].dtype != current.dtype:
            self._dq = [np.empty(self.shape, current.dtype) for _ in range(2)]
        for axis, shift in enumerate(shifts):
            if not np.isfinite(shift) or shift == 0.0:
                continue
            offsets, weights = _kernel(float(shift))
            out = self._dq[1] if current is self._dq[0] else self._dq[0]
            taps = self._taps(current, offsets, axis)
            out[...] = 0
            for j, w in zip(offsets, weights, strict=True):
                if abs(w) > threshold:
                    out |= taps(j)
            current = out
        return current

    def _correlate(self, source, shift, axis, variance, out):
        offsets, weights = _kernel(shift)
        if variance:
            weights = weights**2
        origin = -(int(offsets[0]) + weights.size // 2)
        in_reach = -(weights.size // 2) <= origin <= (weights.size - 1) // 2
        if in_reach and np.all(np.diff(offsets) == 1):
            if _symmetric(weights):
                correlate1d(source, weights, axis=axis, mode="nearest", origin=origin, output=out)
                return
            order = [weights.size - 1, *range(weights.size - 1)]  # correlate1d's order
        else:
            order = range(weights.size)  # shift_array's numpy loop
        taps = self._taps(source, offsets, axis)
        first, *rest = order
        np.multiply(taps(offsets[first]), weights[first], out=out)
        for k in rest:
            np.multiply(taps(offsets[k]), weights[k], out=self._term)
            out += self._term

    def _taps(self, source, offsets, axis):
        """A function of the offset ``j``: ``source`` read ``j`` pixels on along ``axis``."""
        pad = int(np.max(np.abs(offsets)))
        n = source.shape[axis]
        key = (axis, pad, source.dtype.str)
        padded = self._padded.get(key)
        if padded is None:
            shape = list(self.shape)
            shape[axis] += 2 * pad
            padded = self._padded[key] = np.empty(shape, source.dtype)
        lead = (slice(None),) * axis
        padded[(*lead, slice(pad, pad + n))] = source
        padded[(*lead, slice(0, pad))] = source[(*lead, slice(0, 1))]
        padded[(*lead, slice(pad + n, None))] = source[(*lead, slice(n - 1, n))]
        return lambda j: padded[(*lead, slice(pad + j, pad + j + n))]


def _symmetric(weights):
    """Whether ``correlate1d`` sums these weights by its (anti)symmetric branch."""
    if weights.size % 2 == 0:
        return False
    half = weights.size // 2
    right, left = weights[half + 1 :], weights[:half][::-1]
    eps = np.finfo(np.float64).eps
    return bool(np.all(np.abs(right - left) <= eps) or np.all(np.abs(right + left) <= eps))


def _edge_padded(array, pad):
    """``array`` with its edge values repeated ``pad`` times at both ends of the last axis."""
    return np.concatenate(
        [np.repeat(array[..., :1], pad, -1), array, np.repeat(array[..., -1:], pad, -1)], -1
    )
