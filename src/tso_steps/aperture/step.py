"""MovingApertureStep: per-integration aperture photometry of an imaging TSO (``tso_aperture``)."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.aperture.adapter import (
    catalog_meta,
    check_imaging,
    flux_unit,
    integration_times,
    measured_centroids,
    sky_positions,
    source_centroids,
)
from tso_steps.aperture.catalog import build_catalog
from tso_steps.aperture.light_curve import (
    ApertureOptions,
    aperture_light_curve,
    aperture_radii,
    median_template,
)
from tso_steps.aperture.photometry import (
    FLAG_BITS,
    blank_lost,
    covers_array,
    flag_counts,
    scale_fluxes,
)
from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    Accepts,
    InputError,
    VarianceFrames,
    bad_samples,
    check_parameters,
    flag_lost_integrations,
    lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.parallel import OneBlasThreadMixin

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


def _check_radii(shape, radii):
    """An aperture that holds the whole array measures nothing: say so."""
    ny, nx = shape
    if covers_array(shape, radii.x, radii.y, radii.radius):
        raise InputError(
            f"tso_aperture: an aperture of radius {radii.radius:g} px at ({radii.x:.1f}, "
            f"{radii.y:.1f}) covers the whole {nx} x {ny} array, leaving no pixel for the "
            "background: give a smaller radius (or None for one from the PSF size)."
        )
    if radii.radius_outer <= radii.radius:
        raise InputError(
            f"tso_aperture: radius_outer={radii.radius_outer:g} px must be larger than the "
            f"aperture radius {radii.radius:g} px."
        )


class MovingApertureStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
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

    def _photometry(self, model):
        check_imaging(model)
        options = options_from_step(ApertureOptions, self)
        nints = model.data.shape[0]
        # DO_NOT_USE, NaN and inf samples are all masked (an inf would poison every sum)
        mask = bad_samples(model)
        lost = lost_integrations(mask)
        cx, cy, widths, source = source_centroids(
            model, mask, self.centroid_source, self.centroid_method
        )
        template = median_template(model.data, mask)
        radii = aperture_radii(template, cx, cy, options)
        _check_radii(template.shape, radii)
        log.info(
            "Aperture radius %.2f px (%s), annulus %.2f-%.2f px; centroids %s",
            radii.radius,
            "user" if self.radius is not None else "PSF size of the median frame",
            radii.radius_inner,
            radii.radius_outer,
            source,
        )
        if self.radius_scale_with_width and widths is None:
            widths = measured_centroids(model, mask, self.centroid_method)[2]
        variance = VarianceFrames(model)
        results = aperture_light_curve(
            model.data,
            cx,
            cy,
            radii,
            template=template,
            widths=widths,
            variance=variance if variance.source else None,
            mask=mask,
            options=options,
        )
        flag_lost_integrations(None, lost, "tso_aperture", "the photometry")
        blank_lost(results, lost)
        unit, factor = flux_unit(model)
        scale_fluxes(results, factor)
        catalog = build_catalog(
            results,
            unit=unit,
            times=integration_times(model, nints),
            centroids=(cx, cy),
            widths=widths,
            sky=sky_positions(model, results["aperture_x"], results["aperture_y"]),
            meta=catalog_meta(model, options, radii, source, variance.source, FLAG_BITS),
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
