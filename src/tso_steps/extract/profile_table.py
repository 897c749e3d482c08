"""The fitted profile of one order as tables: evaluated at any trace shift and width.

:func:`~tso_steps.extract.profile.build_profile` fits the profile's B-spline coefficients
(:mod:`~tso_steps.extract.pixel_spline`) and tabulates the pixel-integrated profile and its
width derivative on a fine offset grid; :class:`Profile` interpolates those tables for the
band pixels of any set of integrations.  The table positions of a set of trace shifts
(:meth:`Profile.positions`) do not depend on the coefficients, so one computation serves
every profile tried for the same integrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Profile", "normalise_profile"]


@dataclass
class Profile:
    """Normalised profile of one order on its band, for any trace shift and width.

    Attributes
    ----------
    grid : ndarray, shape ``(ngrid,)``
        Offsets from the trace centre at which the tables hold, pixels.
    value : ndarray, shape ``(ngrid, n_disp)``
        Pixel-integrated profile of every column (not normalised).
    width : ndarray, shape ``(ngrid, n_disp)``
        Its derivative with respect to a relative change of width about the trace centre.
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels.
    halfwidth : float
        Aperture half-width: pixels whose centre is within this distance of an
        integration's trace centre get a profile value.
    window : int
        Columns the profile was fitted over.
    penalty : float
        Relative curvature penalty of the fit.
    spectrum : ndarray, shape ``(n_disp,)`` or None
        Median column flux of the integrations it was fitted to (0 where not traced).
    sharp : Profile or None
        The same fit with the smallest curvature penalty (None: this one), against which
        integration widths are measured.
    """

    grid: np.ndarray
    value: np.ndarray
    width: np.ndarray
    offset: np.ndarray
    halfwidth: float
    window: int = 1
    penalty: float = 1e-3  # the smallest of profile.PENALTY_CANDIDATES
    spectrum: np.ndarray | None = None
    sharp: Profile | None = None

    def positions(self, shifts):
        """Where the band pixels of integrations with these trace shifts fall in the tables.

        The same for every profile of one fit (same grid, offsets and aperture): computed
        once, it serves every :meth:`evaluate` and :meth:`width_derivative` at these shifts.

        Parameters
        ----------
        shifts : ndarray, shape ``(n,)``

        Returns
        -------
        _Positions
        """
        u = self.offset[None] - np.asarray(shifts, float)[:, None, None]
        step = self.grid[1] - self.grid[0]
        inside = np.abs(u) <= self.halfwidth
        pos = np.nan_to_num(u, nan=-1e9, copy=False)
        del u
        pos -= self.grid[0]
        pos /= step
        index = np.floor(pos).astype(np.intp)
        np.clip(index, 0, self.grid.size - 2, out=index)
        t = np.subtract(pos, index, out=pos)
        ok = (t >= 0) & (t <= 1)
        ncol = self.offset.shape[1]
        index *= ncol
        index += np.arange(ncol)
        return _Positions(index, t, None if ok.all() else ok, inside, self.halfwidth)

    def _at(self, shifts, at):
        if at is None:
            return self.positions(shifts)
        if at.halfwidth != self.halfwidth or at.t.shape[1:] != self.offset.shape:
            raise ValueError("positions of another profile geometry")
        return at

    def _lookup(self, table, at):
        # (1 - t) * lo + t * hi, in two buffers (``at.flat`` is always inside the table)
        flat = table.ravel()
        value = np.subtract(1.0, at.t)
        value *= np.take(flat, at.flat, mode="clip")
        hi = np.take(flat[table.shape[1] :], at.flat, mode="clip")
        hi *= at.t
        value += hi
        del hi
        if at.ok is not None:
            value[~at.ok] = 0.0
        return value

    def evaluate(self, shifts, widths=None, normalise=True, at=None):
        """Profile of integrations with the given trace shifts (and relative width changes).

        Parameters
        ----------
        shifts : ndarray, shape ``(n,)``
            Cross-dispersion shift of each integration's trace, pixels.
        widths : ndarray, shape ``(n,)``, optional
            Relative width change of each integration (0: the fitted profile).
        normalise : bool
            Clip, cut to the aperture and normalise (else the raw table values).
        at : _Positions, optional
            :meth:`positions` of ``shifts`` (computed here when not given).

        Returns
        -------
        ndarray, shape ``(n, nrow, n_disp)``
            Non-negative, zero outside the aperture, unit sum per column (NaN columns where
            the order is not traced).
        """
        at = self._at(shifts, at)
        profile = self._lookup(self.value, at)
        if widths is not None:
            widths = np.asarray(widths, float)[:, None, None]
            profile = profile + widths * self._lookup(self.width, at)
        if not normalise:
            return profile
        return normalise_profile(np.where(at.inside, np.clip(profile, 0.0, None), 0.0))

    def width_derivative(self, shifts, at=None):
        """Width derivative on the scale of :meth:`evaluate`'s normalised profile.

        Parameters
        ----------
        shifts : ndarray, shape ``(n,)``
        at : _Positions, optional
            :meth:`positions` of ``shifts``.

        Returns
        -------
        ndarray, shape ``(n, nrow, n_disp)``
        """
        return self.evaluate_with_width(shifts, at)[1]

    def evaluate_with_width(self, shifts, at=None):
        """:meth:`evaluate` (no width change) and :meth:`width_derivative` from one lookup.

        Parameters
        ----------
        shifts : ndarray, shape ``(n,)``
        at : _Positions, optional
            :meth:`positions` of ``shifts``.

        Returns
        -------
        profile, width : ndarray, shape ``(n, nrow, n_disp)``
        """
        at = self._at(shifts, at)
        value = np.where(at.inside, np.clip(self._lookup(self.value, at), 0.0, None), 0.0)
        with np.errstate(all="ignore"):
            scale = 1.0 / value.sum(axis=1, keepdims=True)
        width = np.where(at.inside, self._lookup(self.width, at), 0.0) * np.nan_to_num(scale)
        return normalise_profile(value), width


@dataclass
class _Positions:
    """Table positions of band pixels (:meth:`Profile.positions`)."""

    flat: np.ndarray  # index of the table entry below each pixel in the flattened table
    t: np.ndarray  # fractional position between it and the next
    ok: np.ndarray | None  # inside the table (None: all)
    inside: np.ndarray  # within the aperture
    halfwidth: float


def normalise_profile(profile):
    """Scale every column to unit sum (columns with no positive value become NaN).

    Parameters
    ----------
    profile : ndarray, shape ``(..., nrow, n_disp)``

    Returns
    -------
    ndarray
    """
    profile = np.nan_to_num(np.clip(profile, 0.0, None))
    total = profile.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, profile / total, np.nan)
