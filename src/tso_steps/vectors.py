"""Per-integration vectors (``tso_vectors``): the one table every step writes into.

Convention
----------
A model returned by a tso-steps step may carry a structured array attribute ``tso_vectors``
with one row per integration: the column ``integration_number`` (1-based, as in the
``int_times`` table) followed by the named columns of each step that ran (``trace_position``,
``centroid_x``, ``outlier_fraction``, ...).  Every column a step may write is listed, with
its unit and meaning, in :data:`VECTOR_COLUMNS` (and in ``docs/vectors.rst``, which a test
keeps in step); :func:`write_vectors` writes those units and descriptions into the ECSV.
A step adds or replaces its own columns and keeps all others.  The attribute survives
``model.save()`` / ``datamodels.open()`` (it is stored in the ASDF extension of the FITS
file) and :func:`export_vectors` writes it as an ECSV table that
astropy, and so every light-curve fitter, reads back with ``Table.read(path)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.table import Table

from tso_steps.atomic import atomic_write

__all__ = [
    "DATA_UNIT",
    "VECTOR_COLUMNS",
    "add_vectors",
    "export_vectors",
    "get_vectors",
    "integration_numbers",
    "write_vectors",
]

log = logging.getLogger("stpipe.tso_steps.vectors")

ATTRIBUTE = "tso_vectors"
INDEX_COLUMN = "integration_number"

#: Unit placeholder: the unit of the data the step ran on (``meta.bunit_data``: DN for ramps,
#: DN/s for rateints/calints), filled in by :func:`write_vectors` when it is given.
DATA_UNIT = "data"

#: Every per-integration column: name -> (step, unit or None for a pure number, description).
VECTOR_COLUMNS = {
    INDEX_COLUMN: ("all", None, "1-based integration number, as in int_times"),
    "int_mid_BJD_TDB": ("export", "d", "integration mid-time, BJD_TDB (MJD-style number)"),
    "int_mid_MJD_UTC": ("export", "d", "integration mid-time, MJD UTC"),
    "one_over_f_rms": (
        "tso_one_over_f",
        DATA_UNIT,
        "rms of the stripes removed (ramps: DN over the group differences; rateints: DN/s)",
    ),
    "one_over_f_scale": ("tso_one_over_f", None, "source-model scale (1 without a source model)"),
    "n_jumps": ("tso_jump", "count", "group samples flagged JUMP_DET in the integration"),
    "jump_flux_scale": ("tso_jump", None, "relative flux of the integration in the jump model"),
    "jump_shift_x": ("tso_jump", "pix", "source displacement along x fitted by the jump model"),
    "jump_shift_y": ("tso_jump", "pix", "source displacement along y fitted by the jump model"),
    "background_level": ("tso_background", DATA_UNIT, "median background subtracted"),
    "background_scale": ("tso_background", None, "background scale relative to the mean image"),
    "trace_position": ("tso_trace", "pix", "cross-dispersion position of the trace"),
    "trace_width": ("tso_trace", "pix", "cross-dispersion FWHM of the trace"),
    "trace_shift": ("tso_trace", "pix", "trace shift from the reference trace"),
    "trace_shift_error": ("tso_trace", "pix", "1-sigma error of trace_shift"),
    "shift_dispersion": ("tso_jitter", "pix", "shift along the dispersion undone"),
    "shift_cross_dispersion": ("tso_jitter", "pix", "shift across the dispersion undone"),
    "trace_shift_after_jitter": (
        "tso_jitter",
        "pix",
        "cross-dispersion trace shift left in the data after resampling",
    ),
    "centroid_x": ("tso_centroid", "pix", "source centroid, x (0-based pixel)"),
    "centroid_y": ("tso_centroid", "pix", "source centroid, y (0-based pixel)"),
    "centroid_x_err": ("tso_centroid", "pix", "1-sigma error of centroid_x (template method)"),
    "centroid_y_err": ("tso_centroid", "pix", "1-sigma error of centroid_y (template method)"),
    "psf_width_x": ("tso_centroid", "pix", "PSF FWHM along x from the second moment"),
    "psf_width_y": ("tso_centroid", "pix", "PSF FWHM along y from the second moment"),
    "psf_scale": ("tso_centroid", None, "PSF size relative to the template (template method)"),
    "outlier_fraction": (
        "tso_outlier",
        None,
        "fraction of the integration's pixels (or spectral bins) flagged OUTLIER",
    ),
    "n_extract_rejected": ("tso_extract", "pix", "pixels rejected inside the optimal extraction"),
    "extract_background": ("tso_extract", DATA_UNIT, "mean local background per pixel"),
}

#: When True, :func:`add_vectors` refuses a column missing from :data:`VECTOR_COLUMNS` (the
#: test suite turns it on, so a step cannot write an undocumented column).
STRICT_COLUMNS = False


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
        if STRICT_COLUMNS and name not in VECTOR_COLUMNS:
            raise ValueError(
                f"Column {name!r} is not in tso_steps.vectors.VECTOR_COLUMNS: add it there "
                "(unit, description) and to docs/vectors.rst."
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
        table,
        path,
        int_times=getattr(model, "int_times", None),
        meta=meta,
        overwrite=overwrite,
        data_unit=model.meta.bunit_data,
    )


def write_vectors(table, path, int_times=None, meta=None, overwrite=True, data_unit=None):
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
    data_unit : str, optional
        Unit of the data the steps ran on, for the columns whose unit is :data:`DATA_UNIT`
        (without it those columns carry no unit; their description says which it is).

    Returns
    -------
    `~astropy.table.Table`
        The table written, with the units and descriptions of :data:`VECTOR_COLUMNS`.

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
    for name in table.colnames:
        _, unit, description = VECTOR_COLUMNS.get(name, (None, None, None))
        if unit == DATA_UNIT:
            unit = data_unit or None
        if unit:
            table[name].unit = unit
        if description:
            table[name].description = description
    table.meta.update(meta or {})
    if Path(path).exists() and not overwrite:
        raise OSError(f"{path} exists and overwrite=False.")
    with atomic_write(path) as temporary:
        table.write(temporary, format="ascii.ecsv")
    log.info("Wrote %d per-integration rows to %s", len(table), path)
    return table
