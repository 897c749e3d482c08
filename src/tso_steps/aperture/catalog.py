"""The per-integration photometry table (``*_phot.ecsv``), in jwst's tso_photometry layout."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import QTable

from tso_steps.atomic import atomic_write

__all__ = ["JWST_COLUMNS", "PhotometryTable", "build_catalog"]

log = logging.getLogger("stpipe.tso_steps.aperture")

#: Columns of jwst's TSOPhotometryStep catalog that this table reproduces (same names).
JWST_COLUMNS = (
    "MJD",
    "BJD_TDB",
    "aperture_sum",
    "aperture_sum_err",
    "annulus_sum",
    "annulus_sum_err",
    "annulus_mean",
    "annulus_mean_err",
    "aperture_bkg",
    "aperture_bkg_err",
    "net_aperture_sum",
    "net_aperture_sum_err",
    "aperture_x",
    "aperture_y",
    "centroid_x",
    "centroid_y",
    "psf_width_x",
    "psf_width_y",
)

#: Flux-like columns (aperture_sum ... net_aperture_sum_err), scaled together to the output unit.
_FLUX = JWST_COLUMNS[JWST_COLUMNS.index("aperture_sum") : JWST_COLUMNS.index("aperture_x")]


class PhotometryTable(QTable):
    """A `~astropy.table.QTable` that stpipe can save: ``save(path)`` writes ECSV.

    stpipe saves a step result that has a ``save`` method under the step's output name; the
    file extension is replaced by ``.ecsv``.
    """

    def save(self, path, overwrite=True):
        """Write the table as ECSV.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            Output name; its extension is replaced by ``.ecsv``.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
            The path written.
        """
        path = Path(path).with_suffix(".ecsv")
        self.write(path, format="ascii.ecsv", overwrite=overwrite)
        log.info("Wrote the photometry of %d integrations to %s", len(self), path)
        return str(path)

    def write(self, *args, **kwargs):
        """`astropy.table.Table.write`, atomically when the first argument is a path.

        calwebb_tso3 writes the stacked ``_phot.ecsv`` with ``write``; a failure or a kill
        leaves any previous file at the path unchanged.
        """
        if not args or not isinstance(args[0], (str, os.PathLike)):
            return super().write(*args, **kwargs)
        path, rest = Path(args[0]), args[1:]
        if path.exists() and not kwargs.pop("overwrite", False):
            raise OSError(f"{path} exists: pass overwrite=True to replace it.")
        kwargs.pop("overwrite", None)
        with atomic_write(path) as temporary:
            super().write(temporary, *rest, **kwargs)
        return None


def build_catalog(results, *, unit, times, centroids, widths=None, sky=None, meta=None):
    """Assemble the output table from :func:`~tso_steps.aperture.photometry.aperture_series`.

    Parameters
    ----------
    results : dict of str to ndarray
        Output of ``aperture_series`` (already converted to ``unit``).
    unit : `~astropy.units.Unit`
        Unit of the flux columns.
    times : dict
        ``integration_number``, ``MJD`` (UTC) and ``BJD_TDB`` arrays (days, MJD-style).
    centroids : tuple of ndarray
        ``(centroid_x, centroid_y)``, 0-based pixels (NaN where none).
    widths : tuple of ndarray, optional
        ``(psf_width_x, psf_width_y)``, pixels.
    sky : tuple of ndarray, optional
        ``(ra, dec)`` of the aperture centres, degrees.
    meta : dict, optional
        Table metadata.

    Returns
    -------
    PhotometryTable
    """
    pix = u.pix
    table = PhotometryTable(meta=dict(meta or {}))
    table["integration_number"] = np.asarray(times["integration_number"], dtype=np.int64)
    table["MJD"] = np.asarray(times["MJD"], dtype=np.float64)
    table["BJD_TDB"] = np.asarray(times["BJD_TDB"], dtype=np.float64)
    renamed = {"annulus_mean": "annulus_median", "annulus_mean_err": "annulus_median_err"}
    for name in _FLUX:
        table[name] = np.asarray(results[renamed.get(name, name)], dtype=np.float64) * unit
    table["aperture_x"] = results["aperture_x"] * pix
    table["aperture_y"] = results["aperture_y"] * pix
    if sky is not None:
        table["aperture_ra_icrs"] = np.asarray(sky[0], dtype=np.float64) * u.deg
        table["aperture_dec_icrs"] = np.asarray(sky[1], dtype=np.float64) * u.deg
    table["centroid_x"] = np.asarray(centroids[0], dtype=np.float64) * pix
    table["centroid_y"] = np.asarray(centroids[1], dtype=np.float64) * pix
    if widths is not None:
        table["psf_width_x"] = np.asarray(widths[0], dtype=np.float64) * pix
        table["psf_width_y"] = np.asarray(widths[1], dtype=np.float64) * pix
    table["aperture_radius"] = results["radius"] * pix
    table["aperture_area"] = results["aperture_area"] * pix**2
    table["annulus_area"] = results["annulus_area"] * pix**2
    table["annulus_clipped"] = np.nan_to_num(results["annulus_clipped"]).astype(np.int32)
    table["n_masked"] = np.asarray(results["n_masked"], dtype=np.int32)
    table["flags"] = np.asarray(results["flags"], dtype=np.int32)
    return table
