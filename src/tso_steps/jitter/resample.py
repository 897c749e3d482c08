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

__all__ = ["shift_kernel", "shift_array", "shift_dq"]

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


def _edge_padded(array, pad):
    """``array`` with its edge values repeated ``pad`` times at both ends of the last axis."""
    return np.concatenate(
        [np.repeat(array[..., :1], pad, -1), array, np.repeat(array[..., -1:], pad, -1)], -1
    )
