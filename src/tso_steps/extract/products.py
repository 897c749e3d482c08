"""The x1dints product: per-integration spectra as a `TSOMultiSpecModel`."""

from __future__ import annotations

import logging

import numpy as np
from jwst.datamodels.utils.tso_multispec import make_tso_specmodel
from stdatamodels.jwst import datamodels

from tso_steps.inputs import DO_NOT_USE

__all__ = [
    "TIME_COLUMNS",
    "make_x1dints",
    "order_columns",
    "spectrum_model",
    "trace_wavelengths",
]

log = logging.getLogger("stpipe.tso_steps.extract")


#: x1dints time column -> int_times column.
TIME_COLUMNS = {
    "MJD-BEG": "int_start_MJD_UTC",
    "MJD-AVG": "int_mid_MJD_UTC",
    "MJD-END": "int_end_MJD_UTC",
    "TDB-BEG": "int_start_BJD_TDB",
    "TDB-MID": "int_mid_BJD_TDB",
    "TDB-END": "int_end_BJD_TDB",
}


def trace_wavelengths(wavelength_image, center):
    """Wavelength along a trace from a 2-D wavelength array (dispersion last).

    Parameters
    ----------
    wavelength_image : ndarray, shape ``(n_cross, n_disp)``
    center : ndarray, shape ``(n_disp,)``
        Trace centre, pixels (NaN: absent).

    Returns
    -------
    ndarray, shape ``(n_disp,)``
        Linearly interpolated across the dispersion; NaN where the centre is NaN.
    """
    n_cross, n_disp = wavelength_image.shape
    lit = np.isfinite(center)
    y = np.clip(np.where(lit, center, 0.0), 0, n_cross - 1)
    lo = np.floor(y).astype(int)
    hi = np.minimum(lo + 1, n_cross - 1)
    frac = y - lo
    cols = np.arange(n_disp)
    wave = (1 - frac) * wavelength_image[lo, cols] + frac * wavelength_image[hi, cols]
    return np.where(lit, wave, np.nan)


class _TableOnly:
    """A spectrum table without a model around it.

    Stands in for the SpecModels after the first: ``make_tso_specmodel`` reads only their
    ``spec_table``, and building thousands of validated SpecModels costs ~70 ms each.
    """

    def __init__(self, table):
        self.spec_table = table


def spectrum_model(columns, units, table_only=False):
    """One integration's spectrum as a `SpecModel`.

    Parameters
    ----------
    columns : dict of str to ndarray
        Column name to values (missing columns are zero).
    units : dict of str to str
        Column name to unit.
    table_only : bool
        Return a light object holding only ``spec_table`` (a numpy record array).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.SpecModel`
    """
    n = len(next(iter(columns.values())))
    table = np.zeros(n, dtype=_spec_dtype())
    for name, values in columns.items():
        table[name] = values
    if table_only:
        return _TableOnly(table)
    spec = datamodels.SpecModel()
    spec.spec_table = table
    for name, unit in units.items():
        spec.spec_table.columns[name].unit = unit
    return spec


_DTYPE = []


def _spec_dtype():
    """The numpy dtype of a SpecModel's spec_table, from its schema (built once)."""
    if _DTYPE:
        return _DTYPE[0]
    spec = datamodels.SpecModel()
    names = {"float64": "f8", "float32": "f4", "int32": "i4", "uint32": "u4", "int16": "i2"}
    fields = []
    for col in spec.schema["properties"]["spec_table"]["datatype"]:
        kind = col["datatype"]
        fields.append((col["name"], names.get(kind, "f8") if isinstance(kind, str) else "f8"))
    _DTYPE.append(np.dtype(fields))
    return _DTYPE[0]


def make_x1dints(input_model, orders, wavelengths, results, flux_unit, integration_numbers):
    """Assemble the TSOMultiSpecModel of all orders.

    Parameters
    ----------
    input_model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The extracted rateints/calints (meta and int_times are copied).
    orders : list of int
        Spectral order numbers.
    wavelengths : list of ndarray, shape ``(n_disp,)``
        Wavelength per order (micron, or pixel index).
    results : list of dict
        Per order: ``flux``, ``var_poisson``, ``var_rnoise``, ``npixels``, ``background``
        (arrays ``(nints, n_disp)``), ``extraction_limits`` (xstart, xstop, ystart, ystop;
        0-based DMS) and ``dispersion_direction`` (1 or 2).
    flux_unit : str
        Unit of FLUX (the input's data unit).
    integration_numbers : ndarray of int
        1-based integration numbers of the rows.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
    """
    out = datamodels.TSOMultiSpecModel()
    out.update(input_model)
    int_times = getattr(input_model, "int_times", None)
    have_times = int_times is not None and len(int_times) > 0
    if have_times:
        out.int_times = int_times.copy()
        lookup = {int(n): k for k, n in enumerate(int_times["integration_number"])}
    units = {c: flux_unit for c in ("FLUX", "FLUX_ERROR", "BACKGROUND", "BKGD_ERROR")}
    units.update({c: f"({flux_unit})^2" for c in ("FLUX_VAR_POISSON", "FLUX_VAR_RNOISE")})
    units.update({c: f"({flux_unit})^2" for c in ("FLUX_VAR_FLAT", "BKGD_VAR_FLAT")})
    units["WAVELENGTH"] = "um"
    for order, wave, res in zip(orders, wavelengths, results, strict=True):
        flux = res["flux"]
        var_p, var_r = res["var_poisson"], res["var_rnoise"]
        dq = np.where(np.isfinite(flux), 0, DO_NOT_USE).astype(np.uint32)
        specs = []
        for i in range(flux.shape[0]):
            specs.append(
                spectrum_model(
                    {
                        "WAVELENGTH": wave,
                        "FLUX": flux[i],
                        "FLUX_ERROR": np.sqrt(var_p[i] + var_r[i]),
                        "FLUX_VAR_POISSON": var_p[i],
                        "FLUX_VAR_RNOISE": var_r[i],
                        "FLUX_VAR_FLAT": np.zeros_like(wave),
                        "SURF_BRIGHT": np.full_like(wave, np.nan),
                        "SB_ERROR": np.full_like(wave, np.nan),
                        "DQ": dq[i],
                        "BACKGROUND": res["background"][i],
                        "NPIXELS": res["npixels"][i],
                    },
                    units,
                    table_only=i > 0,
                )
            )
        tso_spec = make_tso_specmodel(specs, segment=input_model.meta.exposure.segment_number)
        table = tso_spec.spec_table
        table["INT_NUM"] = integration_numbers
        if have_times:
            rows = [lookup.get(int(n)) for n in integration_numbers]
            if any(r is None for r in rows):
                log.warning("Some integrations are missing from int_times: their times are NaN.")
            for column, source in TIME_COLUMNS.items():
                values = np.asarray(int_times[source], dtype=float)
                table[column] = [np.nan if r is None else values[r] for r in rows]
        else:
            log.warning("The input has no int_times table: x1dints time columns are NaN.")
        for name, unit in units.items():
            table.columns[name].unit = unit
        tso_spec.spectral_order = int(order)
        tso_spec.dispersion_direction = int(res["dispersion_direction"])
        xs, xe, ys, ye = res["extraction_limits"]
        tso_spec.extraction_xstart, tso_spec.extraction_xstop = int(xs) + 1, int(xe) + 1
        tso_spec.extraction_ystart, tso_spec.extraction_ystop = int(ys) + 1, int(ye) + 1
        tso_spec.detector = input_model.meta.instrument.detector
        out.spec.append(tso_spec)
    return out


def order_columns(res, axis, n_cross):
    """The per-order dictionary :func:`make_x1dints` takes."""
    ext = res.extraction
    band = res.band
    rows = band.rows[band.valid]
    lit = np.flatnonzero(band.lit)
    xs, xe = (int(lit.min()), int(lit.max())) if lit.size else (0, 0)
    ys, ye = (int(rows.min()), int(rows.max())) if rows.size else (0, n_cross - 1)
    limits = (xs, xe, ys, ye) if axis == 1 else (ys, ye, xs, xe)
    return {
        "flux": ext.flux,
        "var_poisson": ext.var_poisson,
        "var_rnoise": ext.var_rnoise,
        "npixels": np.asarray(ext.npixels, dtype=float),
        "background": res.background * np.asarray(ext.npixels, dtype=float),
        "extraction_limits": limits,
        "dispersion_direction": 1 if axis == 1 else 2,
    }
