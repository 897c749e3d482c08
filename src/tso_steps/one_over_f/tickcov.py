"""The covariance of the 1/f noise in read time, measured on unilluminated pixels.

The 1/f of output ``a`` at tick ``t`` is treated as a stationary Gaussian process whose
cross-covariance ``C_ab(k)`` (lag ``k`` ticks, outputs ``a`` and ``b``) is *measured*, not
assumed: :func:`fit_tick_covariance` averages the products ``x_a(t) x_b(t + k)`` of the
unilluminated pixels of residual frames over every pair of pixels ``k`` ticks apart (masked
FFTs, every lag), each pixel's mean over frames removed.  Products of two different pixels
carry no white noise, however unevenly it is spread over the pixels (photon noise of the
PSF wings, noisier pixels); at lag 0 of one output (a pixel with itself) the value is
extrapolated from lags 2-6, so that correlations between neighbouring pixels do not enter.
A constant offset of an output in a frame adds the same amount to every lag: the per-output
constants are free parameters of the fit that uses the covariance
(:mod:`tso_steps.one_over_f.kriging`), so it drops out, and the frames are *not* levelled
before (levelling them on the unilluminated pixels would make the covariance depend on
where a pixel is).  Long lags are averaged in geometric bins, and the sequence is made
positive definite (circulant embedding, eigenvalues of the cross-spectral matrices clipped).

:class:`TickCovariance` gives the covariance between means over read-time intervals (from
double cumulative sums) and the conditional mean at every tick (an FFT convolution).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["TickCovariance", "fit_tick_covariance", "tick_products"]

# lags up to this are kept as measured; beyond, averaged in bins growing by this ratio
_EXACT_LAGS = 8
_BIN_RATIO = 1.08
# lags from which lag 0 of an output with itself is extrapolated
_NUGGET_LAGS = (2, 6)
# frames whose FFTs are held at once
_FRAMES_PER_FFT = 4


def tick_products(series, observed):
    """Mean products of per-output time series at every lag, every output pair.

    Parameters
    ----------
    series : ndarray, shape ``(nframes, namp, n_ticks)``
        Values (anything where not observed).
    observed : ndarray of bool, same shape

    Returns
    -------
    products : ndarray, shape ``(n_ticks, namp, namp)``
        ``mean x_a(t) x_b(t + k)`` over observed pairs and frames, each tick's mean over
        frames removed first; symmetrised in ``(a, b)`` (no lead or lag between outputs).
    pairs : ndarray, same shape
        Number of (frame, tick) pairs behind each value.
    """
    nframes, namp, n = series.shape
    size = scipy.fft.next_fast_len(2 * n, real=True)
    observed = np.asarray(observed, dtype=bool)
    weight = observed.astype(np.float64)
    count = weight.sum(0)
    mean = np.divide(
        np.where(observed, series, 0.0).sum(0), count, out=np.zeros((namp, n)), where=count > 0
    )  # static structure is not 1/f
    totals = np.zeros((namp, namp, n))
    pairs = np.zeros((namp, namp, n))
    for lo in range(0, nframes, _FRAMES_PER_FFT):
        part = slice(lo, lo + _FRAMES_PER_FFT)
        y = scipy.fft.rfft(np.where(observed[part], series[part] - mean, 0.0), size, axis=-1)
        m = scipy.fft.rfft(weight[part], size, axis=-1)
        # sum_t p_a(t) q_b(t + k) for every (a, b) at once
        totals += scipy.fft.irfft(np.einsum("fak,fbk->abk", np.conj(y), y), size)[..., :n]
        pairs += scipy.fft.irfft(np.einsum("fak,fbk->abk", np.conj(m), m), size)[..., :n]
    pairs = np.round(pairs)
    products = np.divide(totals, pairs, out=np.zeros_like(totals), where=pairs > 0.5)
    products = np.moveaxis(0.5 * (products + np.swapaxes(products, 0, 1)), -1, 0)
    pairs = np.moveaxis(np.minimum(pairs, np.swapaxes(pairs, 0, 1)), -1, 0)
    return products, pairs


def _lag0(products, pairs):
    """Lag 0 of each output pair extrapolated linearly from lags 2-6 (measured ones)."""
    lo, hi = _NUGGET_LAGS
    lags = np.arange(lo, min(hi, products.shape[0] - 1) + 1)
    namp = products.shape[1]
    out = np.zeros((namp, namp))
    for a in range(namp):
        for b in range(namp):
            ok = pairs[lags, a, b] > 0
            if ok.sum() >= 2:
                out[a, b] = np.polyval(np.polyfit(lags[ok], products[lags[ok], a, b], 1), 0)
            elif ok.any():
                out[a, b] = products[lags[ok][0], a, b]
            else:
                out[a, b] = products[0, a, b]
    return out


def _bin_long_lags(values, pairs):
    """Average over geometric bins of lag beyond _EXACT_LAGS (pair-weighted), interpolate."""
    n = values.shape[0]
    out = values.copy()
    edges = [_EXACT_LAGS]
    while edges[-1] < n:
        edges.append(max(edges[-1] + 1, int(np.ceil(edges[-1] * _BIN_RATIO))))
    edges[-1] = n
    if edges[0] >= n:
        return out
    centres, means = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        w = pairs[lo:hi]
        total = w.sum(axis=0)
        means.append(
            np.divide(
                (values[lo:hi] * w).sum(0), total, out=np.full(total.shape, np.nan), where=total > 0
            )
        )
        centres.append(0.5 * (lo + hi - 1))
    centres, means = np.array(centres), np.array(means)
    head = np.arange(_EXACT_LAGS)
    lags = np.arange(_EXACT_LAGS, n)
    for a in range(values.shape[1]):
        for b in range(values.shape[2]):
            known = pairs[head, a, b] > 0
            x = np.concatenate([head[known], centres])
            v = np.concatenate([values[head, a, b][known], means[:, a, b]])
            ok = np.isfinite(v)
            if ok.any():
                out[lags, a, b] = np.interp(lags, x[ok], v[ok])
    return out


def _positive_definite(cov, floor=1e-9):
    """Closest covariance sequence whose circulant embedding is positive semi-definite."""
    n, namp, _ = cov.shape
    size = 2 * n
    circ = np.zeros((size, namp, namp))
    circ[:n] = cov
    circ[n + 1 :] = cov[1:][::-1]
    circ[n] = cov[-1]
    spec = scipy.fft.rfft(circ, axis=0).real  # a symmetric sequence has a real spectrum
    del circ
    spec = 0.5 * (spec + np.swapaxes(spec, -1, -2))
    if namp == 1:
        spec = np.maximum(spec, floor * max(spec.max(), 1e-300))
    else:
        values, vectors = np.linalg.eigh(spec)
        values = np.maximum(values, floor * max(values.max(), 1e-300))
        spec = (vectors * values[:, None, :]) @ np.swapaxes(vectors, -1, -2)
    return scipy.fft.irfft(spec, size, axis=0)[:n]


def fit_tick_covariance(series, observed):
    """Measure the read-time covariance of the 1/f and the white noise of the pixels.

    Parameters
    ----------
    series, observed
        As in :func:`tick_products`: residuals of unilluminated pixels per output in tick
        order (odd/even differences removed, output levels left in).

    Returns
    -------
    cov : ndarray, shape ``(n_ticks, namp, namp)``
        ``C_ab(k)`` up to a constant, positive definite.
    white : ndarray, shape ``(namp,)``
        Variance of each output's pixels that is independent from pixel to pixel.
    """
    products, pairs = tick_products(series, observed)
    namp = products.shape[1]
    lag0 = _lag0(products, pairs)
    cov = products.copy()
    # a white part common to the outputs (same tick) shows as a jump of the cross terms at
    # lag 0; it belongs to the process, so it is kept on the diagonal too
    common = 0.0
    if namp > 1:
        off = ~np.eye(namp, dtype=bool)
        common = max(float(np.mean(products[0][off] - lag0[off])), 0.0)
    diagonal = np.diag(lag0) + common
    white = np.maximum(np.diag(products[0]) - diagonal, 0.0)
    cov[0][np.diag_indices(namp)] = diagonal
    cov = _bin_long_lags(cov, pairs)
    cov -= np.nanmin(cov)  # an arbitrary constant (see the module docstring)
    return _positive_definite(np.nan_to_num(cov)), white


class TickCovariance:
    """Covariances of interval means and conditional means at every tick.

    Parameters
    ----------
    cov : ndarray, shape ``(n_ticks, namp, namp)``
        ``C_ab(k)`` for lags ``0 .. n_ticks - 1`` (:func:`fit_tick_covariance`).
    """

    def __init__(self, cov):
        n, namp, _ = cov.shape
        self.n_ticks, self.namp = n, namp
        # C over lags -n .. n (0 at +-n), then its first and second cumulative sums
        full = np.zeros((namp, namp, 2 * n + 1))
        lagged = np.moveaxis(cov, 0, -1)
        full[..., n : 2 * n] = lagged
        full[..., 1 : n + 1] = lagged[..., ::-1]
        first = np.concatenate([np.zeros((namp, namp, 1)), np.cumsum(full, axis=-1)], axis=-1)
        self._second = np.concatenate(
            [np.zeros((namp, namp, 1)), np.cumsum(first, axis=-1)], axis=-1
        ).reshape(namp * namp, -1)
        self._size = scipy.fft.next_fast_len(2 * n, real=True)
        kernel = np.zeros((namp, namp, self._size))
        kernel[..., :n] = lagged
        kernel[..., self._size - n + 1 :] = lagged[..., :0:-1]
        self._kernel = scipy.fft.rfft(kernel, axis=-1)

    def between(self, first, second):
        """Covariance of the means over two sets of intervals.

        Parameters
        ----------
        first, second : tuple of ndarray
            ``(amp, start, stop)`` of each interval (ticks, ``stop`` exclusive).

        Returns
        -------
        ndarray, shape ``(len(first[0]), len(second[0]))``
        """
        a1, s1, e1 = (np.asarray(v, dtype=np.int64)[:, None] for v in first)
        a2, s2, e2 = (np.asarray(v, dtype=np.int64)[None, :] for v in second)
        row = a1 * self.namp + a2
        off = self.n_ticks + 1

        def take(index):
            return self._second[row, index + off]

        total = take(e2 - s1) - take(e2 - e1) - take(s2 - s1) + take(s2 - e1)
        return total / ((e1 - s1) * (e2 - s2))

    def smear(self, weights, amp, start, stop):
        """``sum_u w_u mean_{t' in u} C(t - t')`` at every tick, per frame and output.

        Parameters
        ----------
        weights : ndarray, shape ``(nframes, nunits)``
        amp, start, stop : ndarray, shape ``(nunits,)``
            The intervals.

        Returns
        -------
        ndarray, shape ``(nframes, namp, n_ticks)``
        """
        nframes = weights.shape[0]
        density = np.zeros((nframes, self.namp, self.n_ticks + 1))
        per_tick = weights / (stop - start)
        np.add.at(density, (slice(None), amp, start), per_tick)
        np.subtract.at(density, (slice(None), amp, stop), per_tick)
        density = np.cumsum(density, axis=-1)[..., : self.n_ticks]
        spectrum = scipy.fft.rfft(density, self._size, axis=-1)
        out = np.einsum("abk,fbk->fak", self._kernel, spectrum)
        return scipy.fft.irfft(out, self._size, axis=-1)[..., : self.n_ticks]
