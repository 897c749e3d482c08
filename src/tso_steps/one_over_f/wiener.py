"""Wiener (conditional Gaussian) estimate of line levels from their noisy measurements.

The 1/f level of every (fast line, output) cell of a frame is a sample of a stationary
Gaussian process in read time, correlated between neighbouring lines and, through the
common pre-amplifier noise, between the outputs read at the same time.  Each cell is
measured with a known variance (``1 / sum of pixel weights``) or not at all (no usable
pixel).  The conditional mean of every cell given all measurements of the frame,

    L = K[:, m] (K[m, m] + R)^-1 y[m],

predicts the unmeasured cells from the measured ones before and after them on the same
output and at the same time on the other outputs, and shrinks noisy measurements towards
what their neighbours say.  ``K`` is not assumed: it is the empirical covariance of the
measured levels over all frames as a function of line lag and output pair, with the
measurement noise taken off its diagonal and negative eigenvalues clipped (a power
spectrum estimated from the data).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["level_covariance", "wiener_levels"]


def level_covariance(levels, variance, measured, max_lag):
    """Covariance of cell levels in line lag and output pair, from the measured cells.

    Parameters
    ----------
    levels : ndarray, shape ``(nframes, n_cells, namp)``
        Levels in read-time order (cells: lines, or line segments).
    variance : ndarray, same shape
        Measurement variance of each level.
    measured : ndarray of bool, same shape
    max_lag : int
        Largest lag (cells) estimated.

    Returns
    -------
    ndarray, shape ``(max_lag + 1, namp, namp)``
        ``C[k, a, b] = cov(level[i, a], level[i + k, b])``, measurement noise removed at
        lag 0, symmetric under ``(k, a, b) -> (-k, b, a)``.
    """
    nframes, n, namp = levels.shape
    max_lag = int(min(max_lag, n - 1))
    y = np.where(measured, levels, 0.0).astype(np.float64)
    m = measured.astype(np.float64)
    # levels relative to each cell's mean over frames (static structure is not 1/f)
    count = m.sum(axis=0)
    mean = np.divide(y.sum(axis=0), count, out=np.zeros_like(count), where=count > 0)
    y = np.where(measured, y - mean, 0.0)
    cov = np.zeros((max_lag + 1, namp, namp))
    for lag in range(max_lag + 1):
        a, b = y[:, : n - lag], y[:, lag:]
        ma, mb = m[:, : n - lag], m[:, lag:]
        num = np.einsum("fia,fib->ab", a, b)
        den = np.einsum("fia,fib->ab", ma, mb)
        cov[lag] = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    # lag 0 of one output: each cell's own measurement variance comes off its square
    var = np.where(measured, np.nan_to_num(variance, posinf=0.0), 0.0)
    count0 = m.sum(axis=(0, 1))
    noise = np.divide(var.sum(axis=(0, 1)), count0, out=np.zeros(namp), where=count0 > 0)
    cov[0] -= np.diag(noise)
    # stationarity: C(k, a, b) = C(-k, b, a); lag 0 symmetric
    cov[0] = 0.5 * (cov[0] + cov[0].T)
    return cov


_CACHE = {}
_CACHE_SIZE = 8


def _cached_block_matrix(cov, n):
    """:func:`_block_matrix`, remembered: every frame and chunk of a run uses the same few."""
    key = (cov.shape, cov.tobytes(), n)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _block_matrix(cov, n)
    return _CACHE[key]


def _block_matrix(cov, n):
    """Covariance matrix of ``n`` consecutive cells x all outputs, cell-major order."""
    namp = cov.shape[1]
    max_lag = cov.shape[0] - 1
    lag = np.arange(n)[None, :] - np.arange(n)[:, None]  # j - i
    clipped = np.clip(np.abs(lag), 0, max_lag)
    within = np.abs(lag) <= max_lag
    forward = cov[clipped]  # (n, n, namp, namp): C(|k|, a, b)
    backward = np.swapaxes(forward, -1, -2)
    block = np.where((lag >= 0)[..., None, None], forward, backward)
    block = np.where(within[..., None, None], block, 0.0)
    full = block.transpose(0, 2, 1, 3).reshape(n * namp, n * namp)
    full = 0.5 * (full + full.T)
    values, vectors = np.linalg.eigh(full)
    floor = 1e-6 * max(values.max(), 1e-30)
    return (vectors * np.maximum(values, floor)) @ vectors.T


def wiener_levels(levels, variance, measured, cov, block=128, margin=None):
    """Conditional mean of every cell level given the measured ones, frame by frame.

    Parameters
    ----------
    levels, variance, measured : ndarray, shape ``(nframes, n_cells, namp)``
        As in :func:`level_covariance` (read-time order).
    cov : ndarray
        From :func:`level_covariance`.
    block : int
        Cells estimated together; each block also conditions on ``margin`` cells either side.
    margin : int, optional
        Default: the covariance's largest lag.

    Returns
    -------
    ndarray, shape ``(nframes, n_cells, namp)``
        Estimated levels (0 where nothing in reach is measured).
    """
    nframes, n, namp = levels.shape
    margin = cov.shape[0] - 1 if margin is None else int(margin)
    out = np.zeros((nframes, n, namp))
    y_all = np.where(measured, levels, 0.0)
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = max(0, start - margin), min(n, stop + margin)
        k = _cached_block_matrix(cov, hi - lo)
        centre = slice((start - lo) * namp, (stop - lo) * namp)
        flat_m = measured[:, lo:hi].reshape(nframes, -1)
        flat_v = variance[:, lo:hi].reshape(nframes, -1)
        flat_y = y_all[:, lo:hi].reshape(nframes, -1)
        # one filter for all frames: the cells measured in most frames, with their median
        # variance (a cell a frame lacks counts as its prediction, a zero residual)
        pattern = flat_m.mean(axis=0) >= 0.5
        if not pattern.any():
            continue
        var = np.median(np.where(flat_m, flat_v, np.nan)[:, pattern], axis=0)
        var = np.where(np.isfinite(var), var, np.nanmax(var[np.isfinite(var)], initial=1.0))
        kmm = k[np.ix_(pattern, pattern)] + np.diag(var)
        k_cm = k[centre][:, pattern]  # (ncentre, nm)
        y = np.where(flat_m[:, pattern], flat_y[:, pattern], 0.0)
        mean = _conditional_mean(kmm, k_cm, y)
        out[:, start:stop] = mean.reshape(nframes, stop - start, namp)
    return out


_FACTORS = {}


def _cached_factor(kmm):
    """``cho_factor(kmm)``, reused when the same block's matrix comes again unchanged.

    A ramp's passes over one integration often give a block the same matrix (about a third
    of the calls on a MIRI ramp); the factorisation is most of a call's time.  One matrix
    per size is kept (the blocks of a frame differ in size).
    """
    last = _FACTORS.get(kmm.shape)
    if last is not None and np.array_equal(last[0], kmm):
        return last[1]
    factor = scipy.linalg.cho_factor(kmm, check_finite=False)
    if len(_FACTORS) >= _CACHE_SIZE:
        _FACTORS.pop(next(iter(_FACTORS)))
    _FACTORS[kmm.shape] = (kmm, factor)
    return factor


def _conditional_mean(kmm, k_cm, y):
    """``y @ (k_cm kmm^-1).T`` for frames ``y`` (nframes, nm), ``kmm`` positive definite.

    One Cholesky factorisation; the right-hand sides are the frames when there are fewer
    of them than predicted cells (a ramp's groups), else the cells (many frames at once):
    the substitutions, not the factorisation, dominate at a thousand cells.
    """
    try:
        factor = _cached_factor(kmm)
    except np.linalg.LinAlgError:  # not positive definite in floating point: LU instead
        return y @ np.linalg.solve(kmm, k_cm.T)
    if y.shape[0] < k_cm.shape[0]:
        return (k_cm @ scipy.linalg.cho_solve(factor, y.T, check_finite=False)).T
    return y @ scipy.linalg.cho_solve(factor, k_cm.T, check_finite=False)
