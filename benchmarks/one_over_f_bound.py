"""The information bound of the white light under the simulator's correlated noise (issue 12).

How well can ANY linear estimator know the correlated noise (1/f + odd/even offsets) summed
over the white-light box of one integration, given every pixel of that integration?  The
answer is the posterior (conditional) variance ``V_post`` of ``b.c`` (``b`` the box, ``c`` the
correlated noise) given ``y = s + c + e``; the white-light noise ratio it implies is
``sqrt((V_white + V_post) / V_white)`` with ``V_white = Var(b.e)`` the white floor.

The covariance is written here from the simulator's documented model, NOT from the
production code (``tso_steps.readout`` / ``tso_steps.one_over_f`` are not imported):

* every frame gets, at every pixel-clock tick of the frame readout (overheads included), a
  pink series common to all outputs (RMS ``common``) plus one per output (``per_output``),
  each drawn by FFT on a grid of ``next_fast_len(frame_ticks)`` points: its covariance is
  EXACTLY circulant on that grid, ``C(lag) = sum_k a_k**2 cos(2 pi k lag / N) / sum_k a_k**2``
  with ``a_k = k**(-alpha/2)`` (or the knee form), no DC and no Nyquist term;
* a fraction ``white`` of that variance is white in read time (common: the same value at the
  same tick of every output) and stays in the floor, like read noise;
* per frame and output, an offset of the even and one of the odd fast-axis samples;
* per integration pre-amplifier offsets, constant over the frames, cancel in the slope;
* the rateints are least-squares slopes of the groups, so every per-frame term enters with
  ``sum_r (w_g(r) / nframes)**2`` (frames are independent); photon noise is ``var_poisson``.

``Sigma = K + W + D`` (correlated, white part of the 1/f, read + photon) is applied with FFTs
on the tick grid and inverted by preconditioned conjugate gradients (all right-hand sides at
once).  Source nuisance: ``y = S a + c + e`` with flat priors on ``a`` (one column of ``S``:
gray; one per 16-px channel: chromatic); the posterior variance then gains
``h' G^-1 h`` with ``G = S' Sigma^-1 S``, ``h = S' Sigma^-1 K b`` (universal kriging).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

__all__ = [
    "NoiseSpec",
    "ReadSchedule",
    "CovarianceOperator",
    "bound",
    "posterior_mean",
    "solve_columns",
]

SAMPLE_TIME = 10e-6  # s per pixel-clock tick
_OVERHEAD = 12  # HxRG ticks after every fast line
_MIRI_RESET, _MIRI_REF, _MIRI_SKIP, _MIRI_GROUPS = 7, 4, 5, 258


# ------------------------------------------------------------------------------------------
# read schedule (written from the published readout description, checked against the simulator)


@dataclass
class ReadSchedule:
    """Tick, output and fast-axis position of every pixel (DMS orientation), and frame ticks."""

    ticks: np.ndarray
    outputs: np.ndarray
    positions: np.ndarray
    frame_ticks: int
    noutputs: int

    @classmethod
    def build(cls, instrument, shape, fastaxis, slowaxis, noutputs, xstart=1, ystart=1):
        instrument = instrument.upper()
        ny, nx = shape
        if instrument == "MIRI":
            return cls._miri(ny, nx, xstart, ystart)
        fast_is_x = abs(fastaxis) == 1
        n_fast, n_slow = (nx, ny) if fast_is_x else (ny, nx)
        stripe = n_fast // noutputs
        line = stripe + _OVERHEAD
        f_read = np.arange(n_fast)  # read coordinate along fast, 0 = first read end
        out = f_read // stripe
        sample = f_read % stripe
        rev = (noutputs > 1) & (out % 2 == 1)
        sample = np.where(rev, stripe - 1 - sample, sample)
        slow_read = np.arange(n_slow)
        tick = sample[:, None] + line * slow_read[None, :]  # (fast, slow) in read coordinates
        fast_idx = f_read if fastaxis > 0 else n_fast - 1 - f_read
        slow_idx = slow_read if slowaxis > 0 else n_slow - 1 - slow_read
        arrays = []
        for value in (tick, np.broadcast_to(out[:, None], tick.shape),
                      np.broadcast_to(sample[:, None], tick.shape)):  # fmt: skip
            img = np.empty((n_fast, n_slow), dtype=np.int64)
            img[np.ix_(fast_idx, slow_idx)] = value
            arrays.append(img.T if fast_is_x else img)
        if noutputs == 4:
            frame = line * (n_slow + 1) + 1
        else:
            frame = line * (n_slow + (1 if instrument == "NIRSPEC" else 2))
        return cls(*arrays, frame_ticks=int(frame), noutputs=noutputs)

    @classmethod
    def _miri(cls, ny, nx, xstart, ystart):
        columns = np.arange(nx) + xstart - 1
        groups = columns // 4
        clock = _MIRI_RESET + _MIRI_REF  # reset, then the left reference group
        first = max(int(groups[0]), 1)
        clock += -(-(first - 1) // _MIRI_SKIP)  # groups left of the region, five per clock
        at = {0: clock - 1}  # the left reference group is sampled on every row
        for g in range(first, int(groups[-1]) + 1):
            clock += _MIRI_REF if g == _MIRI_GROUPS - 1 else 1
            at[g] = clock - 1
        row_clocks = clock
        col_tick = np.array([at[g] for g in groups], dtype=np.int64)
        row_start = (ystart - 1) * _MIRI_RESET + np.arange(ny, dtype=np.int64) * row_clocks
        ticks = row_start[:, None] + col_tick[None, :]
        outputs = np.broadcast_to(columns % 4, (ny, nx)).astype(np.int64)
        positions = np.broadcast_to(groups, (ny, nx)).astype(np.int64)
        frame = ny * row_clocks + (1024 - ny) * _MIRI_RESET
        return cls(ticks, outputs, positions, frame_ticks=int(frame), noutputs=4)

    @classmethod
    def from_model(cls, model):
        m = model.meta
        return cls.build(m.instrument.name, model.data.shape[-2:], m.subarray.fastaxis,
                         m.subarray.slowaxis, m.exposure.noutputs, m.subarray.xstart,
                         m.subarray.ystart)  # fmt: skip


# ------------------------------------------------------------------------------------------
# the noise model


@dataclass
class NoiseSpec:
    """Per-frame correlated-noise parameters (DN) and the rateints slope coefficient."""

    common: float = 4.0
    per_output: float = 2.0
    odd_even: float = 1.0
    alpha: float = 1.0
    knee: float = 0.0
    white: float = 0.0
    slope_coeff: float = 1.0  # sum over reads of (slope weight / nframes)**2

    def eigenvalues(self, n_fft):
        """rfft-domain eigenvalues of the unit-variance circulant pink covariance."""
        k = np.arange(n_fft // 2 + 1, dtype=float)
        a2 = np.zeros_like(k)
        if self.knee:
            f = k[1:] / (n_fft * SAMPLE_TIME)
            a2[1:] = (f**2 + self.knee**2) ** (-0.5 * self.alpha)
        else:
            a2[1:] = k[1:] ** (-self.alpha)
        if n_fft % 2 == 0:
            a2[-1] = 0.0
        return n_fft * a2 / (2.0 * a2.sum())

    def autocovariance(self, lags, n_fft):
        """Unit-variance pink covariance at integer ``lags`` by the direct cosine sum."""
        k = np.arange(1, (n_fft - 1) // 2 + 1, dtype=float)
        if self.knee:
            a2 = ((k / (n_fft * SAMPLE_TIME)) ** 2 + self.knee**2) ** (-0.5 * self.alpha)
        else:
            a2 = k ** (-self.alpha)
        lags = np.asarray(lags, dtype=float)
        return np.cos(2 * np.pi * np.multiply.outer(lags, k) / n_fft) @ a2 / a2.sum()


def slope_coefficient(ngroups, frame_time, nframes=1, groupgap=0):
    """``sum_r (w_g(r) / nframes)**2`` of the least-squares slope of the groups, s**-2."""
    t = (np.arange(ngroups) * (nframes + groupgap) + 0.5 * (nframes - 1) + 1.0) * frame_time
    dt = t - t.mean()
    w = dt / np.sum(dt**2)
    return float(np.sum(w**2) / nframes)


class CovarianceOperator:
    """``Sigma = K + W + D`` of one integration's pixels (flattened), applied by FFT.

    Parameters
    ----------
    schedule : ReadSchedule
    spec : NoiseSpec
    white_var : ndarray, shape ``(ny, nx)``
        Read + photon variance of every pixel in the rateints (``D``).
    """

    def __init__(self, schedule, spec, white_var):
        self.spec = spec
        self.n_fft = scipy.fft.next_fast_len(schedule.frame_ticks, real=True)
        self.ev = spec.eigenvalues(self.n_fft)
        ticks = schedule.ticks.ravel()
        outs = schedule.outputs.ravel()
        self.npix = ticks.size
        self.nout = schedule.noutputs
        ones = np.ones(self.npix)
        rows = np.arange(self.npix)
        n = self.n_fft
        self.Pc = scipy.sparse.csr_matrix((ones, (rows, ticks)), shape=(self.npix, n))
        self.Po = scipy.sparse.csr_matrix((ones, (rows, outs * n + ticks)),
                                          shape=(self.npix, self.nout * n))  # fmt: skip
        oe = outs * 2 + schedule.positions.ravel() % 2
        self.A = scipy.sparse.csr_matrix((ones, (rows, oe)), shape=(self.npix, 2 * self.nout))
        c, w = spec.slope_coeff, spec.white
        self.k_common = c * (1 - w) * spec.common**2
        self.k_out = c * (1 - w) * spec.per_output**2
        self.k_oe = c * spec.odd_even**2
        self.w_common = c * w * spec.common**2
        self.w_out = c * w * spec.per_output**2
        self.D = np.asarray(white_var, float).ravel()
        self.iterations = 0

    def _circ(self, grid):
        """Pink covariance (unit variance) applied along axis 0 of ``grid``."""
        return scipy.fft.irfft(scipy.fft.rfft(grid, axis=0) * self.ev[:, None], n=self.n_fft,
                               axis=0)  # fmt: skip

    def K(self, x):
        """Correlated noise (what ``truth.one_over_f`` holds) covariance times ``x``."""
        x = x.reshape(self.npix, -1)
        out = self.k_oe * (self.A @ (self.A.T @ x))
        if self.k_common:
            out += self.k_common * (self.Pc @ self._circ(self.Pc.T @ x))
        if self.k_out:
            g = (self.Po.T @ x).reshape(self.nout, self.n_fft, -1)
            g = np.stack([self._circ(gi) for gi in g]).reshape(self.nout * self.n_fft, -1)
            out += self.k_out * (self.Po @ g)
        return out

    def R(self, x):
        """White noise (read, photon, white part of the 1/f) covariance times ``x``."""
        x = x.reshape(self.npix, -1)
        out = (self.D + self.w_out)[:, None] * x
        if self.w_common:
            out += self.w_common * (self.Pc @ (self.Pc.T @ x))
        return out

    def __call__(self, x):
        return self.K(x) + self.R(x)

    def _precondition(self, r):
        """Inverse of the circulant system seen with one white level ``d`` at every tick."""
        d = np.median(self.D) + self.w_out
        g = (self.Po.T @ r).reshape(self.nout, self.n_fft, -1)
        f = scipy.fft.rfft(g, axis=1)
        a = self.k_out * self.ev[None, :, None] + d
        b = self.k_common * self.ev[None, :, None] + self.w_common
        total = f.sum(axis=0, keepdims=True)
        f = f / a - b / (a * (a + self.nout * b)) * total
        g = scipy.fft.irfft(f, n=self.n_fft, axis=1).reshape(self.nout * self.n_fft, -1)
        return self.Po @ g

    def solve(self, rhs, tol=1e-8, maxiter=5000):
        """``Sigma^-1 rhs`` by preconditioned conjugate gradients, every column at once."""
        b = np.asarray(rhs, float).reshape(self.npix, -1)
        x = np.zeros_like(b)
        r = b.copy()
        z = self._precondition(r)
        p = z.copy()
        rz = np.sum(r * z, axis=0)
        norm = np.sqrt(np.sum(b * b, axis=0))
        norm[norm == 0] = 1.0
        for step in range(1, maxiter + 1):
            self.iterations = step
            q = self(p)
            alpha = rz / np.sum(p * q, axis=0)
            x += alpha * p
            r -= alpha * q
            if np.all(np.sqrt(np.sum(r * r, axis=0)) / norm < tol):
                break
            z = self._precondition(r)
            rz_new = np.sum(r * z, axis=0)
            p = z + (rz_new / rz) * p
            rz = rz_new
        else:
            raise RuntimeError(f"conjugate gradients did not converge in {maxiter} steps")
        return x


# ------------------------------------------------------------------------------------------
# the bound and the estimator that reaches it


def nuisance_columns(source, columns=None, axis=1):
    """Columns of ``S``: the source image (gray), or one per ``columns``-pixel channel."""
    source = np.asarray(source, float)
    if columns is None:
        return source.reshape(-1, 1)
    n = source.shape[axis]
    cols = []
    for start in range(0, n, columns):
        part = np.zeros_like(source)
        sl = [slice(None), slice(None)]
        sl[axis] = slice(start, start + columns)
        part[tuple(sl)] = source[tuple(sl)]
        if np.any(part):
            cols.append(part.ravel())
    return np.stack(cols, axis=1)


def solve_columns(op, columns, chunk=32):
    """``Sigma^-1`` times every column of ``columns``, ``chunk`` columns at a time."""
    parts = [op.solve(columns[:, i : i + chunk]) for i in range(0, columns.shape[1], chunk)]
    return np.concatenate(parts, axis=1)


def bound(op, box, nuisance=None, z=None):
    """Posterior variance of the box sum of the correlated noise, and what it implies.

    Parameters
    ----------
    op : CovarianceOperator
    box : ndarray of bool, the white-light aperture
    nuisance : ndarray, shape ``(npix, m)`` or None
        Columns of ``S`` with flat priors (None: the source is known).
    z : ndarray, optional
        ``Sigma^-1 nuisance`` if already solved.

    Returns
    -------
    dict
        ``v_white``, ``v_prior`` (box sum of the correlated noise, uncorrected), ``v_post``,
        ``ratio`` = sqrt((v_white + v_post) / v_white), and ``ratio_pm``: the benchmark's score
        (``Var b.(y - c_hat - s)`` over ``v_white``) of the posterior-mean estimator, whose
        error is anti-correlated with the box's white noise; ``ratio_min`` (with a nuisance):
        the least score of any correction unbiased for every ``a``, ``(S'b)' G^-1 (S'b)``
        over ``v_white`` (the flux fitted with the source model as weights, so it can fall
        below 1 without any 1/f).
    """
    b = np.asarray(box, float).ravel()[:, None]
    kb = op.K(b)
    u = op.solve(kb)
    v_prior = float(b[:, 0] @ kb[:, 0])
    v_post = v_prior - float(kb[:, 0] @ u[:, 0])
    v_white = float(b[:, 0] @ op.R(b)[:, 0])
    extra = v_min = 0.0
    its = [op.iterations]
    if nuisance is not None:
        z = solve_columns(op, nuisance) if z is None else z
        its.append(op.iterations)
        g = nuisance.T @ z
        h = nuisance.T @ u[:, 0]
        gh = np.linalg.solve(g, h)
        v_post += float(h @ gh)
        sb = nuisance.T @ b[:, 0]
        extra = 2.0 * float(gh @ sb)
        v_min = float(sb @ np.linalg.solve(g, sb))
    return {
        "v_white": v_white,
        "v_prior": v_prior,
        "v_post": v_post,
        "ratio": float(np.sqrt((v_white + v_post) / v_white)),
        "ratio_pm": float(np.sqrt(max(v_white - v_post + extra, 0.0) / v_white)),
        "ratio_min": float(np.sqrt(v_min / v_white)),
        "ratio_uncorrected": float(np.sqrt((v_white + v_prior) / v_white)),
        "iterations": max(its),
    }


def posterior_mean(op, residual, nuisance=None, z=None, solved=None):
    """``E[c | y]`` for frames ``residual = y - (known part)``, shape ``(nframes, ny, nx)``.

    With ``nuisance``, ``S a`` is fitted by generalised least squares inside the same solve
    (``c_hat = K Q y``, ``Q = Sigma^-1 - Sigma^-1 S G^-1 S' Sigma^-1``).  ``z`` and ``solved``
    (``Sigma^-1`` of the nuisance and of the residual, pixels x frames) skip those solves.
    """
    shape = residual.shape
    y = residual.reshape(shape[0], -1).T.astype(float)
    sy = op.solve(y) if solved is None else solved
    if nuisance is not None:
        z = solve_columns(op, nuisance) if z is None else z
        a = np.linalg.solve(nuisance.T @ z, z.T @ y)
        sy = sy - z @ a
    return op.K(sy).T.reshape(shape)
