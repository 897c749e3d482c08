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
dispersion and solved cheaply.  Numpy only, apart from scipy's banded Cholesky solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solveh_banded

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
        x_lo = lower[..., None] - p  # lower pixel edge in basis-local coordinates
        x_hi = x_lo + self.per_pixel
        d = self.spacing
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
        grid = self.lo + step * np.arange(int(np.ceil((self.hi - self.lo) / step)) + 1)
        j0, rows = self.rows(grid, kind)
        values = np.zeros((grid.size, coeffs.shape[1]))
        for p in range(self.nonzero):
            j = np.clip(j0 + p, 0, self.nbasis - 1)
            values += rows[:, p, None] * coeffs[j]
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
        for x in range(ndisp):
            g = self.band[:, :, x]
            scale = g[0].mean()
            if not scale > 0:
                continue
            g = g + (penalty * scale) * rough_band
            g[0] += 1e-9 * scale  # nothing constrains a linear phi where there is no sample
            upper = np.zeros((m, nb))
            for d in range(m):
                upper[m - 1 - d, d:] = g[d, : nb - d]
            coeffs[:, x] = solveh_banded(upper, self.rhs[:, x], check_finite=False)
        return coeffs
