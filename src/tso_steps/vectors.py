"""Per-integration vectors (``tso_vectors``): the one table every step writes into.

Convention
----------
A model returned by a tso-steps step may carry a structured array attribute ``tso_vectors``
with one row per integration: the column ``integration_number`` (1-based, as in the
``int_times`` table) followed by the named columns of each step that ran (``trace_position``,
``centroid_x``, ``n_outliers``, ...).  A step adds or replaces its own columns and keeps all
others.  The attribute survives ``model.save()`` / ``datamodels.open()`` (it is stored in the
ASDF extension of the FITS file) and :func:`export_vectors` writes it as an ECSV table that
astropy, and so every light-curve fitter, reads back with ``Table.read(path)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.table import Table

from tso_steps.atomic import atomic_write

__all__ = [
    "add_vectors",
    "export_vectors",
    "get_vectors",
    "integration_numbers",
    "write_vectors",
]

log = logging.getLogger("stpipe.tso_steps.vectors")

ATTRIBUTE = "tso_vectors"
INDEX_COLUMN = "integration_number"


def integration_numbers(model, nints=None):
    """1-based integration numbers of the integrations held in a model.

    Taken from the ``int_times`` table when it has one row per integration, otherwise from
    ``meta.exposure.integration_start`` (segments of a long exposure start there), otherwise
    1, 2, ...

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    nints : int, optional
        Number of integrations in the model; default the length of the first data axis.

    Returns
    -------
    ndarray of int
    """
    if nints is None:
        nints = model.data.shape[0]
    int_times = getattr(model, "int_times", None)
    if int_times is not None and len(int_times) > 0:
        numbers = np.asarray(int_times["integration_number"], dtype=np.int64)
        start = model.meta.exposure.integration_start or numbers[0]
        selected = numbers[(numbers >= start) & (numbers < start + nints)]
        if len(selected) == nints:
            return selected
    start = model.meta.exposure.integration_start or 1
    return np.arange(start, start + nints, dtype=np.int64)


def get_vectors(model):
    """The per-integration vectors of a model as an astropy Table (empty if none).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`

    Returns
    -------
    `~astropy.table.Table`
        A copy: changing it does not change the model.
    """
    if not model.hasattr(ATTRIBUTE):
        return Table()
    return Table(np.array(getattr(model, ATTRIBUTE)))


def add_vectors(model, columns, nints=None):
    """Add (or replace) named per-integration columns in ``model.tso_vectors``.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Modified in place.
    columns : dict of str to array-like
        Column name to values, one value per integration.
    nints : int, optional
        Number of integrations; default the first axis of ``model.data`` (for spectra models,
        pass it).

    Returns
    -------
    `~astropy.table.Table`
        The updated vectors.

    Raises
    ------
    ValueError
        If a column's length is not the number of integrations, or the existing table has
        another number of rows.
    """
    table = get_vectors(model)
    if nints is None:
        nints = len(table) if len(table) else model.data.shape[0]
    if len(table) == 0:
        table = Table({INDEX_COLUMN: integration_numbers(model, nints)})
    elif len(table) != nints:
        raise ValueError(
            f"The model's tso_vectors have {len(table)} rows but it holds {nints} integrations."
        )
    for name, values in columns.items():
        if name == INDEX_COLUMN:
            raise ValueError(f"{INDEX_COLUMN!r} is managed by tso_steps and cannot be set.")
        values = np.asarray(values)
        if values.shape[:1] != (nints,):
            raise ValueError(
                f"Column {name!r} has {values.shape[:1]} values, expected one per integration "
                f"({nints})."
            )
        table[name] = values
    setattr(model, ATTRIBUTE, table.as_array())
    log.debug("tso_vectors now has columns %s", table.colnames)
    return table


def export_vectors(model, path, overwrite=True):
    """Write the per-integration vectors of a model to an ECSV file.

    Integration mid-times (``int_mid_BJD_TDB``, ``int_mid_MJD_UTC``) are joined from the
    model's ``int_times`` table when present, so the file is ready for a light-curve fit.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    path : str or `~pathlib.Path`
        Output file, conventionally ``*_tsovectors.ecsv``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    `~astropy.table.Table`
        The table written.
    """
    table = get_vectors(model)
    if len(table) == 0:
        raise ValueError("The model has no tso_vectors to export.")
    meta = {
        "source": str(model.meta.filename or ""),
        "exposure_type": str(model.meta.exposure.type or ""),
    }
    return write_vectors(
        table, path, int_times=getattr(model, "int_times", None), meta=meta, overwrite=overwrite
    )


def write_vectors(table, path, int_times=None, meta=None, overwrite=True):
    """Write a per-integration vectors table to ECSV, joined with integration mid-times.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Vectors with an ``integration_number`` column (e.g. from :func:`get_vectors`).
    path : str or `~pathlib.Path`
    int_times : table-like, optional
        A model's ``int_times``; ``int_mid_BJD_TDB`` and ``int_mid_MJD_UTC`` are joined when it
        covers every integration of ``table``.
    meta : dict, optional
        Header entries of the ECSV file.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    `~astropy.table.Table`
        The table written.

    Notes
    -----
    The file is written atomically (a temporary file in the same folder, then renamed): a
    failure or a kill leaves any previous file at ``path`` unchanged.
    """
    table = Table(table, copy=True)
    if int_times is not None and len(int_times) > 0:
        lookup = {int(n): i for i, n in enumerate(int_times["integration_number"])}
        rows = [lookup.get(int(n)) for n in table[INDEX_COLUMN]]
        if all(row is not None for row in rows):
            for name in ("int_mid_BJD_TDB", "int_mid_MJD_UTC"):
                table[name] = np.asarray(int_times[name])[rows]
                table[name].unit = "d"
    table.meta.update(meta or {})
    if Path(path).exists() and not overwrite:
        raise OSError(f"{path} exists and overwrite=False.")
    with atomic_write(path) as temporary:
        table.write(temporary, format="ascii.ecsv")
    log.info("Wrote %d per-integration rows to %s", len(table), path)
    return table
