"""MovingApertureStep: per-integration aperture photometry of an imaging TSO (``tso_aperture``)."""

import logging
import warnings

import astropy.units as u
import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.aperture.catalog import build_catalog
from tso_steps.aperture.photometry import (
    FLAG_BITS,
    aperture_series,
    blank_lost,
    covers_array,
    default_radii,
    flag_counts,
    scale_fluxes,
    scaled_radii,
)
from tso_steps.atomic import AtomicSaveMixin
from tso_steps.centroid.centroiding import measure_centroids
from tso_steps.centroid.window import median_frame
from tso_steps.exposure import ImagingExposureError, dispersion_axis
from tso_steps.inputs import (
    Accepts,
    InputError,
    VarianceFrames,
    bad_samples,
    check_parameters,
    flag_lost_integrations,
    lost_integrations,
    median_variance,
    prepare_output,
)
from tso_steps.vectors import get_vectors, integration_numbers

__all__ = ["MovingApertureStep"]

log = logging.getLogger("stpipe.tso_steps.aperture")

#: What tso_aperture takes (read only: the input model is not copied).
ACCEPTS = Accepts("tso_aperture", ("cube",), exposure="tso", min_shape=(3, 3), copy="never")


def _warn_flags(flags):
    """One warning line per flag that some integrations carry (off-array, no background)."""
    for name, count in flag_counts(flags).items():
        if count:
            log.warning(
                "%d of %d integrations flagged %s (%s)",
                count,
                np.size(flags),
                name,
                "part of the aperture is off the array"
                if name == "OFF_ARRAY"
                else "too few usable annulus pixels: no background subtracted",
            )


def _flux_unit(model):
    """(unit, factor): jwst's convention, MJy/sr becomes Jy through the pixel area."""
    bunit = model.meta.bunit_data
    if bunit == "MJy/sr" and model.meta.photometry.pixelarea_steradians:
        return u.Jy, 1e6 * model.meta.photometry.pixelarea_steradians
    try:
        return u.Unit(bunit), 1.0
    except (TypeError, ValueError):
        log.warning("Unknown data unit %r: fluxes are given in the data's units.", bunit)
        return u.dimensionless_unscaled, 1.0


def _times(model, nints):
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


class MovingApertureStep(AtomicSaveMixin, Step):
    """Aperture photometry of an imaging TSO with the aperture on each integration's centroid.

    Input: imaging rateints or calints (``CubeModel``; NRC_TSIMAGE, in focus or weak lens).
    Output: a `~tso_steps.aperture.catalog.PhotometryTable` (an astropy ``QTable``), one row
    per integration, with the columns of jwst's ``tso_photometry`` catalog plus the aperture
    radius used, areas, masked-pixel counts and flags; saved as ``<basename>_phot.ecsv``.
    The input model is not modified.
    """

    class_alias = "tso_aperture"

    spec = """
    centering = option('moving', 'fixed', default='moving')  # moving: aperture on each integration's centroid; fixed: on the median centroid (jwst's default)
    centroid_source = option('auto', 'tso_vectors', 'measure', default='auto')  # auto: tso_vectors centroid_x/centroid_y when present (tso_centroid), else measured here
    centroid_method = option('template', 'gaussian', 'com', default='template')  # method of tso_centroid used when centroids are measured here
    radius = float(min=0.5, default=None)  # aperture radius, pixels; None: from the PSF size on the median frame
    radius_inner = float(min=0.5, default=None)  # annulus inner radius, pixels; None: aperture radius + 2
    radius_outer = float(min=1.0, default=None)  # annulus outer radius, pixels; None: annulus area 3 x the aperture's
    radius_scale_with_width = boolean(default=False)  # scale the radius per integration with the PSF width (psf_width_x/y)
    clip_sigma = float(min=0.0, default=3.0)  # annulus sigma clip, robust sigma (median/MAD); 0 disables
    annulus_statistic = option('median', 'mean', default='median')  # background per pixel: median or mean of the clipped annulus pixels
    fill_masked = boolean(default=True)  # fill DO_NOT_USE/NaN aperture pixels from the scaled median frame instead of dropping them
    output_ext = string(default='.ecsv')  # the catalog is written as ECSV
    suffix = string(default='phot')  # suffix of the output file (like tso_photometry's catalog)
    """  # noqa: E501

    def process(self, input_data):
        """Measure the light curve.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel`
            Imaging rateints or calints.

        Returns
        -------
        `~tso_steps.aperture.catalog.PhotometryTable`

        Raises
        ------
        TypeError
            If the input is not a 3-D ``CubeModel``.
        ValueError
            For a spectroscopic exposure, fewer than 2 integrations, all-NaN data, or
            ``centroid_source='tso_vectors'`` without centroid vectors.
        """
        check_parameters(
            self, ordered=(("radius", "radius_inner"), ("radius_inner", "radius_outer"))
        )
        opened = not isinstance(input_data, datamodels.JwstDataModel)
        model = prepare_output(self, input_data, ACCEPTS)
        try:
            return self._photometry(model)
        finally:
            if opened:
                model.close()

    def _check(self, model):
        try:
            dispersion_axis(model)
        except ImagingExposureError:
            pass
        else:
            raise ValueError(
                f"tso_aperture does aperture photometry of images; exposure type "
                f"{model.meta.exposure.type!r} is spectroscopic (use extraction instead)."
            )

    @staticmethod
    def _check_radii(shape, x, y, radius, r_out):
        """An aperture that holds the whole array measures nothing: say so."""
        ny, nx = shape
        if covers_array(shape, x, y, radius):
            raise InputError(
                f"tso_aperture: an aperture of radius {radius:g} px at ({x:.1f}, {y:.1f}) "
                f"covers the whole {nx} x {ny} array, leaving no pixel for the background: "
                "give a smaller radius (or None for one from the PSF size)."
            )
        if r_out <= radius:
            raise InputError(
                f"tso_aperture: radius_outer={r_out:g} px must be larger than the aperture "
                f"radius {radius:g} px."
            )

    def _centroids(self, model, mask):
        vectors = get_vectors(model)
        have = {"centroid_x", "centroid_y"} <= set(vectors.colnames)
        if self.centroid_source == "tso_vectors" and not have:
            raise ValueError(
                "centroid_source='tso_vectors' but the input has no tso_vectors centroid_x/"
                "centroid_y: run tso_centroid first."
            )
        if have and self.centroid_source != "measure":
            widths = None
            if {"psf_width_x", "psf_width_y"} <= set(vectors.colnames):
                widths = (np.asarray(vectors["psf_width_x"]), np.asarray(vectors["psf_width_y"]))
            cx, cy = np.asarray(vectors["centroid_x"]), np.asarray(vectors["centroid_y"])
            return cx, cy, widths, "tso_vectors"
        table = self._measure(model, mask)
        widths = (np.asarray(table["psf_width_x"]), np.asarray(table["psf_width_y"]))
        source = f"measured ({self.centroid_method})"
        return np.asarray(table["centroid_x"]), np.asarray(table["centroid_y"]), widths, source

    def _measure(self, model, mask):
        """Centroids and widths as tso_centroid measures them (same weights)."""
        return measure_centroids(
            model.data, variance=median_variance(model), mask=mask, method=self.centroid_method
        )

    def _photometry(self, model):
        self._check(model)
        nints = model.data.shape[0]
        # DO_NOT_USE, NaN and inf samples are all masked (an inf would poison every sum)
        mask = bad_samples(model)
        lost = lost_integrations(mask)
        cx, cy, widths, source = self._centroids(model, mask)
        template = median_frame(model.data, mask if mask is None or mask.ndim == 3 else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            xm, ym = float(np.nanmedian(cx)), float(np.nanmedian(cy))
        if not np.isfinite(xm + ym):
            raise ValueError("No integration has a finite centroid.")
        radius, r_in, r_out = default_radii(
            template,
            xm,
            ym,
            radius=self.radius,
            radius_inner=self.radius_inner,
            radius_outer=self.radius_outer,
        )
        self._check_radii(template.shape, xm, ym, radius, r_out)
        log.info(
            "Aperture radius %.2f px (%s), annulus %.2f-%.2f px; centroids %s",
            radius,
            "user" if self.radius is not None else "PSF size of the median frame",
            r_in,
            r_out,
            source,
        )
        radii = radius
        if self.radius_scale_with_width:
            if widths is None:
                table = self._measure(model, mask)
                widths = (np.asarray(table["psf_width_x"]), np.asarray(table["psf_width_y"]))
            radii = np.minimum(scaled_radii(radius, *widths), r_in)
            log.info("Radius scaled with the PSF width: %.2f-%.2f px", radii.min(), radii.max())
        if self.centering == "fixed":
            x, y = np.full(nints, xm), np.full(nints, ym)
        else:
            x, y = cx, cy
        variance = VarianceFrames(model)
        results = aperture_series(
            model.data,
            x,
            y,
            radii,
            r_in,
            r_out,
            variance=variance if variance.source else None,
            mask=mask,
            template=template if self.fill_masked else None,
            clip_sigma=self.clip_sigma,
            statistic=self.annulus_statistic,
        )
        flag_lost_integrations(None, lost, "tso_aperture", "the photometry")
        blank_lost(results, lost)
        unit, factor = _flux_unit(model)
        scale_fluxes(results, factor)
        sky = None
        if model.meta.wcs is not None:
            try:
                sky = model.meta.wcs(results["aperture_x"], results["aperture_y"])
            except Exception as err:  # noqa: BLE001 - the WCS is optional decoration
                log.warning("Could not evaluate the WCS at the aperture centres: %s", err)
        meta = {
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
                f"{self.centering} circular aperture of r={radius:.3f} px (exact overlap); "
                f"background: {self.annulus_statistic} of the {self.clip_sigma}-sigma clipped "
                f"annulus r_inner={r_in:.3f}, r_outer={r_out:.3f} px"
            ),
            "centering": self.centering,
            "centroid_source": source,
            "radius": radius,
            "radius_inner": r_in,
            "radius_outer": r_out,
            "radius_scale_with_width": bool(self.radius_scale_with_width),
            "annulus_statistic": self.annulus_statistic,
            "clip_sigma": self.clip_sigma,
            "variance_source": variance.source,
            "flag_bits": dict(FLAG_BITS),
            "cal_step": {"tso_aperture": "COMPLETE"},
        }
        catalog = build_catalog(
            results,
            unit=unit,
            times=_times(model, nints),
            centroids=(cx, cy),
            widths=widths,
            sky=sky,
            meta=meta,
        )
        _warn_flags(results["flags"])
        net = np.asarray(results["net_aperture_sum"])
        err = np.asarray(results["net_aperture_sum_err"])
        log.info(
            "Photometry of %d integrations: median net flux %.6g %s, median error %.3g %s "
            "(%.0f ppm); %d integrations with masked aperture pixels, %d flagged",
            nints,
            np.nanmedian(net),
            unit,
            np.nanmedian(err),
            unit,
            1e6 * np.nanmedian(err) / np.nanmedian(net),
            int(np.sum(results["n_masked"] > 0)),
            int(np.sum(results["flags"] != 0)),
        )
        return catalog
