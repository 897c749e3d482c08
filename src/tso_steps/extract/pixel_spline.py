"""A cross-dispersion profile finer than the pixels: a cubic B-spline seen through pixel boxes.

The continuous profile across the dispersion is ``phi(v) = sum_j c_j B((v - t_j) / d)``: a
uniform cubic B-spline with knots ``t_j`` a fraction ``d`` of a pixel apart.  A pixel whose
centre lies ``u`` from the trace centre records the integral of ``phi`` over its width,

    P(u) = sum_j c_j A_j(u),    A_j(u) = integral of B_j over [u - 1/2, u + 1/2],

which is linear in the coefficients, so the coefficients are a linear least-squares fit to
pixels seen at many sub-pixel phases (a curved or tilted trace, jitter, tilt events).  The
same coefficients give exactly how a pixel changes when the profile widens about the trace
centre (``phi(v) -> phi(v / (1 + e)) / (1 + e)``, derivative ``-[v phi(v)]`` between the
pixel's edges) or shifts (``phi(u - 1/2) - phi(u + 1/2)``).

The normal equations of one dispersion column are banded (a pixel touches ``1/d + 4``
neighbouring basis functions) and are kept in banded form, so columns can be summed along the
dispersion and solved cheaply (a banded Cholesky factorisation vectorised over the columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError

__all__ = ["PixelSpline", "NormalEquations"]


def _bspline(x):
    """Cardinal cubic B-spline on ``[0, 4)`` (unit integral)."""
    x = np.asarray(x, float)
    return np.select(
        [(x >= 0) & (x < 1), (x >= 1) & (x < 2), (x >= 2) & (x < 3), (x >= 3) & (x < 4)],
        [
            x**3 / 6,
            (-3 * x**3 + 12 * x**2 - 12 * x + 4) / 6,
            (3 * x**3 - 24 * x**2 + 60 * x - 44) / 6,
            (4 - x) ** 3 / 6,
        ],
        0.0,
    )


def _bspline_integral(x):
    """Integral of :func:`_bspline` from 0 to ``x`` (0 below 0, 1 above 4)."""
    x = np.asarray(x, float)
    low = np.minimum(x, 4.0 - x)  # symmetric about 2: I(x) = 1 - I(4 - x)
    first = low**4 / 24
    second = 1 / 24 + (-0.75 * low**4 + 4 * low**3 - 6 * low**2 + 4 * low - 1.25) / 6
    half = np.where(low < 1, first, second)
    half = np.where(low <= 0, 0.0, half)
    return np.where(x <= 2, half, 1.0 - half)


@dataclass(frozen=True)
class PixelSpline:
    """Pixel-integrated uniform cubic B-spline basis over offsets ``[lo, hi]`` from the trace.

    Attributes
    ----------
    lo, hi : float
        Range of pixel-centre offsets the basis must describe, pixels.
    per_pixel : int
        Knots per pixel (knot spacing ``1 / per_pixel``).
    """

    lo: float
    hi: float
    per_pixel: int = 4

    @property
    def spacing(self):
        """float : Knot spacing, pixels."""
        return 1.0 / self.per_pixel

    @property
    def first(self):
        """float : Left end of the support of basis function 0 (pixel edges included)."""
        return self.lo - 0.5 - 3 * self.spacing

    @property
    def nbasis(self):
        """int : Number of basis functions."""
        return int(np.ceil((self.hi - self.lo + 1.0) / self.spacing)) + 3

    @property
    def nonzero(self):
        """int : Basis functions that can be non-zero in one pixel (the band width)."""
        return self.per_pixel + 4

    def _index(self, u):
        """First basis index touching the pixel at offset ``u`` and the local coordinate."""
        pos = (np.asarray(u, float) - 0.5 - self.first) / self.spacing
        j0 = np.floor(pos).astype(int) - 3
        return j0, pos - j0  # position of the pixel's lower edge in units of the spacing

    def _value_rows(self, lower):
        """Pixel integrals of the ``nonzero`` basis functions, lower edge at ``lower`` in [3, 4).

        The pixel spans ``per_pixel >= 4`` knot intervals, so of the ``2 * nonzero`` edge
        integrals of :meth:`rows` only four lie inside a basis function's support (the
        others are exactly 0 or 1): the same values for a quarter of the work.
        """
        d, m = self.spacing, self.per_pixel
        inner = [_bspline_integral(lower - k) for k in range(4)]
        values = np.empty(lower.shape + (self.nonzero,))
        for p in range(self.nonzero):
            if p < 4:
                values[..., p] = d * (1.0 - inner[p])
            elif p < m:
                values[..., p] = d * (1.0 - 0.0)
            else:
                values[..., p] = d * (inner[p - m] - 0.0)
        return values

    def rows(self, u, kind="value"):
        """Non-zero basis values of pixels centred at offsets ``u``.

        Parameters
        ----------
        u : ndarray
            Pixel-centre offsets from the trace centre, pixels.
        kind : {'value', 'width', 'shift'}
            The pixel integral of each basis function, its derivative under a widening of the
            profile about ``u = 0`` (per unit relative width), or under a shift of the profile
            towards larger ``u`` (per pixel).

        Returns
        -------
        j0 : ndarray of int, shape ``u.shape``
            Index of the first of the ``nonzero`` basis functions of each pixel.
        values : ndarray, shape ``u.shape + (nonzero,)``
            Zero for basis functions outside ``[0, nbasis)``.
        """
        u = np.asarray(u, float)
        j0, lower = self._index(u)
        p = np.arange(self.nonzero)
        d = self.spacing
        if kind == "value" and self.per_pixel >= 4 and np.all((lower >= 3) & (lower < 4)):
            values = self._value_rows(lower)
            j = j0[..., None] + p
            return j0, np.where((j >= 0) & (j < self.nbasis), values, 0.0)
        x_lo = lower[..., None] - p  # lower pixel edge in basis-local coordinates
        x_hi = x_lo + self.per_pixel
        if kind == "value":
            values = d * (_bspline_integral(x_hi) - _bspline_integral(x_lo))
        elif kind == "width":
            up, down = u[..., None] + 0.5, u[..., None] - 0.5
            values = -(up * _bspline(x_hi) - down * _bspline(x_lo))
        elif kind == "shift":
            values = _bspline(x_lo) - _bspline(x_hi)
        else:
            raise ValueError(f"kind must be 'value', 'width' or 'shift', not {kind!r}")
        j = j0[..., None] + p
        return j0, np.where((j >= 0) & (j < self.nbasis), values, 0.0)

    def grid(self, step):
        """Offsets ``lo, lo + step, ...`` up to ``hi`` or just past it, pixels.

        Parameters
        ----------
        step : float

        Returns
        -------
        ndarray
        """
        return self.lo + step * np.arange(int(np.ceil((self.hi - self.lo) / step)) + 1)

    def table(self, coeffs, step, kind="value"):
        """The profile (or a derivative) of every column on a fine offset grid.

        Parameters
        ----------
        coeffs : ndarray, shape ``(nbasis, n_disp)``
        step : float
            Grid spacing, pixels.
        kind : {'value', 'width', 'shift'}

        Returns
        -------
        grid : ndarray, shape ``(ngrid,)``
        values : ndarray, shape ``(ngrid, n_disp)``
        """
        grid = self.grid(step)
        j0, rows = self.rows(grid, kind)
        m = self.nonzero
        # grid points sharing a first basis function are one small matrix product (rows
        # whose basis function lies outside [0, nbasis) are zero: zero-padded coefficients)
        padded = np.zeros((self.nbasis + 2 * m, coeffs.shape[1]))
        padded[m : m + self.nbasis] = coeffs
        values = np.empty((grid.size, coeffs.shape[1]))
        starts = np.flatnonzero(np.diff(j0, prepend=j0[0] - 1))
        for a, b in zip(starts, np.append(starts[1:], grid.size), strict=True):
            first = int(np.clip(j0[a], -m, self.nbasis)) + m
            values[a:b] = rows[a:b] @ padded[first : first + m]
        return grid, values


@dataclass
class NormalEquations:
    """Banded weighted least-squares normal equations of every dispersion column.

    ``band[d, j, x]`` holds ``G[j, j + d]`` of column ``x`` and ``rhs[j, x]`` the right-hand
    side; both are sums over samples, so summing them over neighbouring columns is the joint
    fit of one profile to those columns (each seen at its own sub-pixel phases).
    """

    band: np.ndarray
    rhs: np.ndarray

    @classmethod
    def accumulate(cls, spline, u, columns, weight, value, ndisp):
        """Normal equations of ``value ~ P(u)`` with weights ``weight``.

        Parameters
        ----------
        spline : PixelSpline
        u, weight, value : ndarray, shape ``(n,)``
            Offset of each sample's pixel centre from the trace, its weight, its value.
        columns : ndarray of int, shape ``(n,)``
            Dispersion column of each sample.
        ndisp : int

        Returns
        -------
        NormalEquations
        """
        nb, m = spline.nbasis, spline.nonzero
        j0, rows = spline.rows(u)
        band = np.zeros((m, nb * ndisp))
        rhs = np.zeros(nb * ndisp)
        for p in range(m):
            j = j0 + p
            ok = (j >= 0) & (j < nb)
            flat = np.where(ok, j, 0) * ndisp + columns
            wp = np.where(ok, weight * rows[:, p], 0.0)
            rhs += np.bincount(flat, wp * value, minlength=nb * ndisp)
            for q in range(p, m):
                band[q - p] += np.bincount(flat, wp * rows[:, q], minlength=nb * ndisp)
        return cls(band.reshape(m, nb, ndisp), rhs.reshape(nb, ndisp))

    @classmethod
    def concatenate(cls, parts):
        """Equations of consecutive blocks of columns joined into one set.

        Parameters
        ----------
        parts : list of NormalEquations

        Returns
        -------
        NormalEquations
        """
        return cls(
            np.concatenate([q.band for q in parts], axis=-1),
            np.concatenate([q.rhs for q in parts], axis=-1),
        )

    def smoothed(self, smoother):
        """The equations summed over neighbouring columns by ``smoother`` (along the last axis)."""
        return NormalEquations(smoother(self.band), smoother(self.rhs))

    def solve(self, penalty):
        """Coefficients of every column, with a curvature penalty on them.

        Parameters
        ----------
        penalty : float
            Weight of the summed squared second differences of the coefficients, relative to
            the column's mean diagonal (a small value only fills phases and offsets that no
            sample constrains).

        Returns
        -------
        ndarray, shape ``(nbasis, n_disp)``
            Zero for columns without data.
        """
        m, nb, ndisp = self.band.shape
        second = np.diff(np.eye(nb), 2, axis=0)
        rough = second.T @ second
        rough_band = np.array([np.pad(np.diagonal(rough, d), (0, d)) for d in range(m)])
        coeffs = np.zeros((nb, ndisp))
        scale = self.band[0].mean(axis=0)
        solved = np.flatnonzero(scale > 0)
        if solved.size == 0:
            return coeffs
        band, rhs = self.band, self.rhs
        if solved.size < ndisp:
            band, rhs, scale = band[..., solved], rhs[:, solved], scale[solved]
        coeffs[:, solved] = _banded_cholesky_solve(band, rhs, penalty * scale, rough_band, scale)
        return coeffs


def _banded_cholesky_solve(band, rhs, penalty, rough, scale):
    """Solve ``(G + penalty R + 1e-9 scale I) c = rhs`` for many banded systems at once.

    A Cholesky factorisation ``L L^T`` in band storage, vectorised over the systems (the last
    axis): one LAPACK call per dispersion column costs more in call overhead than in
    arithmetic for these small bands.

    Parameters
    ----------
    band : ndarray, shape ``(m, nb, n)``
        ``band[d, j]`` is ``G[j, j + d]`` of every system.
    rhs : ndarray, shape ``(nb, n)``
    penalty : ndarray, shape ``(n,)``
        Weight of ``R`` in every system.
    rough : ndarray, shape ``(m, nb)``
        ``R`` in the same band storage (shared by the systems).
    scale : ndarray, shape ``(n,)``
        Scale of every system's diagonal.

    Returns
    -------
    ndarray, shape ``(nb, n)``
    """
    m, nb, n = band.shape
    # low[i, d] = L[i, i - d]
    low = np.zeros((nb, m, n))
    ridge = 1e-9 * scale  # nothing constrains a linear phi where there is no sample
    for i in range(nb):
        first = max(0, i - m + 1)
        row = low[i]
        for j in range(first, i + 1):
            d = i - j
            value = band[d, j] + penalty * rough[d, j]
            if d == 0:
                value += ridge
            if j > first:
                # sum over k in [first, j) of L[i, k] L[j, k]
                value -= np.einsum(
                    "kn,kn->n", row[d + 1 : i - first + 1], low[j, 1 : j - first + 1]
                )
            if d:
                np.divide(value, low[j, 0], out=row[d])
            else:
                with np.errstate(invalid="ignore"):
                    np.sqrt(value, out=row[0])
                if not np.all(row[0] > 0):
                    raise LinAlgError(f"{i + 1}th leading minor not positive definite")
    out = np.empty((nb, n))
    for i in range(nb):  # L y = rhs
        first = max(0, i - m + 1)
        value = rhs[i]
        if i > first:
            back = out[i - 1 : first - 1 : -1] if first else out[i - 1 :: -1]
            value = value - np.einsum("kn,kn->n", low[i, 1 : i - first + 1], back)
        np.divide(value, low[i, 0], out=out[i])
    for i in range(nb - 1, -1, -1):  # L^T c = y
        last = min(nb, i + m)
        value = out[i]
        if last > i + 1:
            later = np.arange(i + 1, last)
            value = value - np.einsum("kn,kn->n", low[later, later - i], out[i + 1 : last])
        np.divide(value, low[i, 0], out=out[i])
    return out
