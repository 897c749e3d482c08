"""Pixels around a trace: a band of rows that follows the trace centre column by column.

All arrays are oriented ``(..., n_cross, n_disp)`` (see
:func:`~tso_steps.trace.geometry.to_dispersion_last`).  A band holds, for every dispersion
column ``x``, the ``nrow`` rows starting at ``floor(center[x]) - half``, so a curved trace
becomes a straight ``(nrow, n_disp)`` strip without any resampling of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Band", "make_band"]


@dataclass
class Band:
    """Row indices of a band around one order's trace.

    Attributes
    ----------
    rows : ndarray of int, shape ``(nrow, n_disp)``
        Image row (cross-dispersion index) of every band pixel, clipped to the array.
    offset : ndarray, shape ``(nrow, n_disp)``
        Row minus the reference trace centre, pixels (NaN where the order is not traced).
    valid : ndarray of bool, shape ``(nrow, n_disp)``
        Band pixel lies on the array and its column is traced.
    lit : ndarray of bool, shape ``(n_disp,)``
        Columns where the order is traced.
    """

    rows: np.ndarray
    offset: np.ndarray
    valid: np.ndarray
    lit: np.ndarray

    def gather(self, array):
        """Band pixels of an image or cube.

        Parameters
        ----------
        array : ndarray, shape ``(..., n_cross, n_disp)``

        Returns
        -------
        ndarray, shape ``(..., nrow, n_disp)``
        """
        index = np.broadcast_to(self.rows, array.shape[:-2] + self.rows.shape)
        return np.take_along_axis(array, index, axis=-2)

    def scatter(self, values, n_cross, fill=0.0):
        """Put band values back into an image (pixels outside the band get ``fill``).

        Parameters
        ----------
        values : ndarray, shape ``(nrow, n_disp)``
        n_cross : int
            Rows of the image.
        fill : float

        Returns
        -------
        ndarray, shape ``(n_cross, n_disp)``
        """
        image = np.full((n_cross, values.shape[-1]), fill, dtype=np.float64)
        cols = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
        image[self.rows[self.valid], cols[self.valid]] = values[self.valid]
        return image


def make_band(center, half, n_cross):
    """Band of ``2 * half + 2`` rows around a trace.

    Parameters
    ----------
    center : ndarray, shape ``(n_disp,)``
        Reference cross-dispersion centre per column, pixels (NaN: not traced).
    half : int
        Rows kept on either side of the centre.
    n_cross : int
        Rows of the image.

    Returns
    -------
    Band
    """
    lit = np.isfinite(center)
    base = np.floor(np.where(lit, center, 0.0)).astype(int) - int(half)
    rows = base[None, :] + np.arange(2 * int(half) + 2)[:, None]
    valid = lit[None, :] & (rows >= 0) & (rows < n_cross)
    offset = np.where(lit[None, :], rows - np.where(lit, center, np.nan)[None, :], np.nan)
    return Band(rows=np.clip(rows, 0, n_cross - 1), offset=offset, valid=valid, lit=lit)
