"""The model adapter of the aperture photometry: what the catalog needs from an imaging cube.

Reads the centroids (``tso_vectors`` of ``tso_centroid``, or measured here as tso_centroid
measures them), the flux unit, the integration times, the WCS positions and the header
facts the catalog records.  Nothing here changes the model.
"""

import logging

import astropy.units as u
import numpy as np

from tso_steps.centroid.centroiding import measure_centroids
from tso_steps.exposure import ImagingExposureError, dispersion_axis
from tso_steps.inputs import InputError, median_variance
from tso_steps.vectors import get_vectors, integration_numbers

__all__ = [
    "catalog_meta",
    "check_imaging",
    "flux_unit",
    "integration_times",
    "measured_centroids",
    "sky_positions",
    "source_centroids",
]

log = logging.getLogger("stpipe.tso_steps.aperture")


def check_imaging(model):
    """Refuse a spectroscopic exposure by name (photometry is for images)."""
    try:
        dispersion_axis(model)
    except ImagingExposureError:
        return
    raise InputError(
        f"tso_aperture does aperture photometry of images; exposure type "
        f"{model.meta.exposure.type!r} is spectroscopic (use extraction instead)."
    )


def measured_centroids(model, mask, method):
    """``(x, y, widths)`` measured as tso_centroid measures them (same weights)."""
    table = measure_centroids(model.data, variance=median_variance(model), mask=mask, method=method)
    widths = (np.asarray(table["psf_width_x"]), np.asarray(table["psf_width_y"]))
    return np.asarray(table["centroid_x"]), np.asarray(table["centroid_y"]), widths


def source_centroids(model, mask, centroid_source, method):
    """The centroid of every integration, its PSF widths, and where they came from.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.CubeModel`
    mask : ndarray of bool
        Samples not to use.
    centroid_source : {"auto", "tso_vectors", "measure"}
        The step's parameter: tso_vectors ``centroid_x/centroid_y`` (auto: when present) or
        measured here.
    method : str
        tso_centroid's method for measuring.

    Returns
    -------
    x, y : ndarray
    widths : tuple of ndarray or None
        ``(psf_width_x, psf_width_y)`` when known.
    source : str

    Raises
    ------
    InputError
        ``centroid_source='tso_vectors'`` without centroid vectors.
    """
    vectors = get_vectors(model)
    have = {"centroid_x", "centroid_y"} <= set(vectors.colnames)
    if centroid_source == "tso_vectors" and not have:
        raise InputError(
            "centroid_source='tso_vectors' but the input has no tso_vectors centroid_x/"
            "centroid_y: run tso_centroid first."
        )
    if have and centroid_source != "measure":
        widths = None
        if {"psf_width_x", "psf_width_y"} <= set(vectors.colnames):
            widths = (np.asarray(vectors["psf_width_x"]), np.asarray(vectors["psf_width_y"]))
        x, y = np.asarray(vectors["centroid_x"]), np.asarray(vectors["centroid_y"])
        return x, y, widths, "tso_vectors"
    x, y, widths = measured_centroids(model, mask, method)
    return x, y, widths, f"measured ({method})"


def flux_unit(model):
    """(unit, factor): jwst's convention, MJy/sr becomes Jy through the pixel area."""
    bunit = model.meta.bunit_data
    if bunit == "MJy/sr" and model.meta.photometry.pixelarea_steradians:
        return u.Jy, 1e6 * model.meta.photometry.pixelarea_steradians
    try:
        return u.Unit(bunit), 1.0
    except (TypeError, ValueError):
        log.warning("Unknown data unit %r: fluxes are given in the data's units.", bunit)
        return u.dimensionless_unscaled, 1.0


def integration_times(model, nints):
    """Integration numbers and mid-times (MJD UTC, BJD_TDB; NaN without INT_TIMES rows)."""
    numbers = integration_numbers(model, nints)
    times = {"integration_number": numbers, "MJD": np.full(nints, np.nan)}
    times["BJD_TDB"] = np.full(nints, np.nan)
    int_times = getattr(model, "int_times", None)
    if int_times is not None and len(int_times) > 0:
        lookup = {int(n): k for k, n in enumerate(int_times["integration_number"])}
        rows = [lookup.get(int(n)) for n in numbers]
        if all(r is not None for r in rows):
            times["MJD"] = np.asarray(int_times["int_mid_MJD_UTC"], dtype=np.float64)[rows]
            times["BJD_TDB"] = np.asarray(int_times["int_mid_BJD_TDB"], dtype=np.float64)[rows]
            return times
    log.warning("No INT_TIMES rows for these integrations: the MJD and BJD_TDB columns are NaN.")
    return times


def sky_positions(model, x, y):
    """The WCS at the aperture centres, or None (the WCS is optional decoration)."""
    if model.meta.wcs is None:
        return None
    try:
        return model.meta.wcs(x, y)
    except Exception as err:  # noqa: BLE001 - any WCS failure only loses the sky columns
        log.warning("Could not evaluate the WCS at the aperture centres: %s", err)
        return None


def catalog_meta(model, options, radii, centroid_source, variance_source, flag_bits):
    """The catalog's ``meta``: header facts, the aperture set-up and the cal_step stamp."""
    return {
        "instrument": model.meta.instrument.name,
        "detector": model.meta.instrument.detector,
        "channel": model.meta.instrument.channel,
        "subarray": model.meta.subarray.name,
        "filter": model.meta.instrument.filter,
        "pupil": model.meta.instrument.pupil,
        "target_name": model.meta.target.catalog_name,
        "exposure_type": model.meta.exposure.type,
        "source": str(model.meta.filename or ""),
        "apertures": (
            f"{options.centering} circular aperture of r={radii.radius:.3f} px (exact overlap); "
            f"background: {options.annulus_statistic} of the {options.clip_sigma}-sigma clipped "
            f"annulus r_inner={radii.radius_inner:.3f}, r_outer={radii.radius_outer:.3f} px"
        ),
        "centering": options.centering,
        "centroid_source": centroid_source,
        "radius": radii.radius,
        "radius_inner": radii.radius_inner,
        "radius_outer": radii.radius_outer,
        "radius_scale_with_width": bool(options.radius_scale_with_width),
        "annulus_statistic": options.annulus_statistic,
        "clip_sigma": options.clip_sigma,
        "variance_source": variance_source,
        "flag_bits": dict(flag_bits),
        "cal_step": {"tso_aperture": "COMPLETE"},
    }
