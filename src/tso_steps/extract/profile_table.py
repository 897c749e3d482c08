"""The fitted profile of one order as tables: evaluated at any trace shift and width.

:func:`~tso_steps.extract.profile.build_profile` fits the profile's B-spline coefficients
(:mod:`~tso_steps.extract.pixel_spline`) and tabulates the pixel-integrated profile and its
width derivative on a fine offset grid; :class:`Profile` interpolates those tables for the
band pixels of any set of integrations.  The table positions of a set of trace shifts
(:meth:`Profile.positions`) do not depend on the coefficients, so one computation serves
every profile tried for the same integrations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Profile", "normalise_profile"]


@dataclass
class Profile:
    """Normalised profile of one order on its band, for any trace shift and width.

    Attributes
    ----------
    grid : ndarray, shape ``(ngrid,)``
        Offsets from the trace centre at which the tables hold, pixels.
    value : ndarray, shape ``(ngrid, n_disp)`` or None
        Pixel-integrated profile of every column (not normalised).
    width : ndarray, shape ``(ngrid, n_disp)`` or None
        Its derivative with respect to a relative change of width about the trace centre.
        None: not tabulated yet (made by ``tabulate`` on first use).
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
        The same fit with the smallest curvature penalty (None: this one, or released by
        :func:`~tso_steps.extract.core.extract_order` once the widths are measured), against
        which integration widths are measured.
    tabulate : callable or None
        ``tabulate(kind)`` makes the ``value`` or ``width`` table from the fit's coefficients:
        tables are then made when first used and can be dropped (:meth:`release`), so a
        table nobody evaluates is never made and two profiles need not hold theirs at once.
    by_phase : bool
        Look the tables up in a copy ordered by column, sub-pixel phase and pixel (made on
        first use): the rows of one column are then neighbours in memory, so a lookup of
        many integrations runs from the CPU caches.  The same values; worth the copy when
        a table serves many integrations (an extraction), not for a handful (the held-out
        choice).  Set it before :meth:`positions`.
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
    tabulate: Callable[[str], np.ndarray] | None = None
    by_phase: bool = False
    _phased: dict = field(default_factory=dict, repr=False)

    def release(self):
        """Drop the tables (made again on first use); without ``tabulate``, nothing."""
        self._phased.clear()
        if self.tabulate is not None:
            self.value = self.width = None

    def _table(self, kind):
        table = getattr(self, kind)
        if table is None:
            table = self.tabulate(kind)
            setattr(self, kind, table)
        return table

    def _phases(self):
        """Grid points per pixel when a whole number (the phase layout), else 0."""
        per_pixel = 1.0 / (self.grid[1] - self.grid[0])
        return int(round(per_pixel)) if abs(per_pixel - round(per_pixel)) < 1e-9 else 0

    def _phase_table(self, kind):
        """The ``kind`` table as ``(n_disp, phases, blocks)``, zero-padded to whole blocks.

        Entry ``g`` of column ``c`` is at ``[c, g % phases, g // phases]``.
        """
        if kind not in self._phased:
            table, phases = self._table(kind), self._phases()
            ngrid, ncol = table.shape
            full, rest = divmod(ngrid, phases)
            phased = np.zeros((ncol, phases, full + (rest > 0)))
            view = phased.transpose(2, 1, 0)  # (blocks, phases, n_disp)
            view[:full] = table[: full * phases].reshape(full, phases, ncol)
            if rest:
                view[full, :rest] = table[full * phases :]
            self._phased[kind] = phased
            if self.tabulate is not None:
                setattr(self, kind, None)  # made again if asked for: not held twice
        return self._phased[kind]

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
        ok = None if ok.all() else ok
        ncol = self.offset.shape[1]
        phases = self._phases() if self.by_phase else 0
        if not phases:
            index *= ncol
            index += np.arange(ncol)
            return _Positions(index, t, ok, inside, self.halfwidth)
        blocks = -(-self.grid.size // phases)
        column = np.arange(ncol) * (phases * blocks)
        high = _phase_index(index + 1, phases, blocks, column)
        index = _phase_index(index, phases, blocks, column)
        return _Positions(index, t, ok, inside, self.halfwidth, high)

    def _at(self, shifts, at):
        if at is None:
            return self.positions(shifts)
        if at.halfwidth != self.halfwidth or at.t.shape[1:] != self.offset.shape:
            raise ValueError("positions of another profile geometry")
        if (at.high is not None) != bool(self.by_phase and self._phases()):
            raise ValueError("positions of another table layout (by_phase)")
        return at

    def _lookup(self, kind, at):
        # (1 - t) * lo + t * hi, in two buffers (the indices are always inside the table)
        value = np.subtract(1.0, at.t)
        if at.high is None:
            table = self._table(kind)
            flat = table.ravel()
            value *= np.take(flat, at.flat, mode="clip")
            hi = np.take(flat[table.shape[1] :], at.flat, mode="clip")
        else:
            flat = self._phase_table(kind).ravel()
            value *= np.take(flat, at.flat, mode="clip")
            hi = np.take(flat, at.high, mode="clip")
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
        profile = self._lookup("value", at)
        if widths is not None:
            widths = np.asarray(widths, float)[:, None, None]
            profile = profile + widths * self._lookup("width", at)
        if not normalise:
            return profile
        np.clip(profile, 0.0, None, out=profile)
        np.copyto(profile, 0.0, where=~at.inside)
        return _normalise_inplace(profile)

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
        outside = ~at.inside
        value = self._lookup("value", at)
        np.clip(value, 0.0, None, out=value)
        np.copyto(value, 0.0, where=outside)
        total = value.sum(axis=1, keepdims=True)
        with np.errstate(all="ignore"):
            scale = np.nan_to_num(1.0 / total)
        width = self._lookup("width", at)
        np.copyto(width, 0.0, where=outside)
        width *= scale
        # finite sums: no NaN or inf to clean, so they are the normalising sums as well
        return _normalise_inplace(value, total if np.isfinite(total).all() else None), width


@dataclass
class _Positions:
    """Table positions of band pixels (:meth:`Profile.positions`)."""

    flat: np.ndarray  # index of the table entry below each pixel in the flattened table
    t: np.ndarray  # fractional position between it and the next
    ok: np.ndarray | None  # inside the table (None: all)
    inside: np.ndarray  # within the aperture
    halfwidth: float
    high: np.ndarray | None = None  # phase layout (by_phase): index of the entry above


def _phase_index(index, phases, blocks, column):
    """Flat index of grid entries ``index`` (>= 0) in a ``(n_disp, phases, blocks)`` table.

    Entry ``g`` of column ``c`` is ``[c, g % phases, g // phases]``; ``column`` holds
    ``c * phases * blocks`` of every column.  Overwrites ``index``.
    """
    if phases & (phases - 1) == 0:  # a power of two (the usual 64): shifts and masks
        block = index >> (phases.bit_length() - 1)
        index &= phases - 1
    else:
        block, index = np.divmod(index, phases, out=(np.empty_like(index), index))
    index *= blocks
    index += block
    index += column
    return index


def _normalise_inplace(profile, total=None):
    """:func:`normalise_profile` of a non-negative profile, in its own buffer.

    ``total``: its column sums when already at hand (only valid without NaN or inf).
    Elementwise the same operations, so the same values, without the temporaries.
    """
    if total is None:
        np.nan_to_num(profile, copy=False)
        total = profile.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(profile, total, out=profile)
    np.copyto(profile, np.nan, where=~(total > 0))
    return profile


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
