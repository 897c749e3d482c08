"""Background2DStep: fit and subtract a smooth 2-D background from every integration."""

import logging

import numpy as np
from jwst.stpipe import Step

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.background.adapter import subtract_background
from tso_steps.background.fitting import side_masks
from tso_steps.background.masking import illuminated_pixels
from tso_steps.background.model import (
    BackgroundOptions,
    choose_template,
    find_image_discontinuity,
    find_template_discontinuity,
    fit_background,
    time_median,
)
from tso_steps.background.templates import read_template
from tso_steps.exposure import ImagingExposureError, dispersion_axis
from tso_steps.inputs import (
    Accepts,
    InputError,
    bad_samples,
    check_parameters,
    flag_lost_integrations,
    lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.masks import choose_source_mask
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.vectors import add_vectors

__all__ = ["Background2DStep"]

log = logging.getLogger("stpipe.tso_steps.background")

#: What tso_background takes: rateints/calints of a supported TSO exposure type.
ACCEPTS = Accepts(
    "tso_background", ("cube", "slit"), exposure="supported", min_shape=(4, 4), copy="standalone"
)

#: ``method='auto'`` per exposure type (NIS_SOSS: 'template' when a template is given).
AUTO_METHOD = {
    "MIR_LRS-SLITLESS": "line",
    "NRS_BRIGHTOBJ": "line",
    "NRC_TSGRISM": "line",
    "NIS_SOSS": "surface",
    "NRC_TSIMAGE": "surface",
}


class Background2DStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Fit a smooth background to the unilluminated pixels and subtract it, per integration.

    Methods: ``line`` (a polynomial across the dispersion for every cross-dispersion line,
    MIRI LRS style), ``surface`` (a 2-D Legendre polynomial, split at a discontinuity when
    there is one) and ``template`` (a user template scaled separately on each side of its
    discontinuity, the NIRISS/SOSS zodiacal background).  By default the background shape is
    fitted to the clipped mean image and only one scale per integration is fitted
    (``per_integration='scale'``), which keeps the background from adding noise to each
    integration's spectrum.

    The output is a copy of the input with the background subtracted, ``tso_background_model``
    (the 2-D shape, data units; ``(nints, ny, nx)`` models with ``per_integration='full'``),
    ``tso_background_mask`` (uint8, 1 = pixel used in the fit) and the ``tso_vectors``
    columns ``background_level`` (mean background over the array, data units) and
    ``background_scale``.  Integration ``i``'s subtracted background is
    ``background_scale[i] * tso_background_model``.  DQ, ERR and the variances are unchanged.
    """

    class_alias = "tso_background"

    spec = """
    method = option('auto', 'line', 'surface', 'template', default='auto')  # auto: line for MIRI LRS and NIRSpec, surface for NIRCam grism and imaging, template for SOSS when template_file is given (else surface)
    per_integration = option('scale', 'full', 'none', default='scale')  # scale: shape from the mean image, one factor per integration; full: refit the whole model per integration; none: same background for all
    template_file = string(default=None)  # background template(s) (FITS incl. jwst SOSS background reference, ASDF or .npy), same shape as the data
    discontinuity = integer(min=-1, default=None)  # first column right of a background step (0-based); None: from the template's gradient, or from the mean image for SOSS; -1: no step
    line_degree = integer(min=0, max=5, default=1)  # line method: polynomial degree across the dispersion
    line_window = integer(min=1, default=1)  # line method: adjacent cross-dispersion lines fitted together
    surface_degree = integer(min=0, max=6, default=2)  # surface method: total Legendre degree in x and y
    mask_file = string(default=None)  # unilluminated pixels (nonzero = use): FITS, ASDF or .npy; replaces the automatic mask
    mask_method = option('auto', 'trace', 'image', default='auto')  # auto: trace/centroid band (when present) plus the thresholded median image; trace: band only; image: threshold only
    mask_n_sigma = float(min=0, default=3.0)  # median-image mask: threshold above the background, robust sigma
    mask_dilation = integer(min=0, default=4)  # median-image mask: pixels of dilation around the thresholded source
    mask_pad = float(min=0, default=3.0)  # trace/centroid mask: pixels added to the half-width
    suffix = string(default='bsub')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Subtract the background of a rateints/calints product.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.SlitModel`
            Per-integration images ``(nints, ny, nx)`` of a TSO exposure.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            A background-subtracted copy of the input.
        """  # noqa: E501
        check_parameters(self, files=("template_file", "mask_file"))
        result = prepare_output(self, input_data, ACCEPTS)
        exp_type = self._check_input(result)
        data = result.data
        bad = bad_samples(result)
        lost = lost_integrations(bad)
        median = time_median(data, bad)
        axis = None if exp_type == "NRC_TSIMAGE" else dispersion_axis(result)

        method = self._method(exp_type)
        if method == "line" and axis is None:
            raise ImagingExposureError("method='line' needs a spectrum; use 'surface' for imaging.")
        always_bad = bad.all(axis=0)
        template = self._template(median, always_bad) if method == "template" else None
        source = self._source_mask(result, median, axis, always_bad)
        # usable = ~source & ~bad, made in the flags' own memory (no second and third cube)
        usable = np.logical_not(bad, out=bad)
        usable &= ~source[None]
        del bad
        fraction = usable.mean()
        if fraction < 0.01:
            raise ValueError(
                f"Only {100 * fraction:.2f}% of the samples are unilluminated and good: too few "
                "to fit a background (check the source mask parameters or give mask_file)."
            )
        step_at = self._discontinuity(exp_type, method, template, median, ~source)
        options = options_from_step(
            BackgroundOptions, self, method=method, dispersion_axis=1 if axis is None else axis
        )
        fit = fit_background(data, usable, options, template=template, discontinuity=step_at)
        levels, scales = subtract_background(result, fit, lost)
        add_vectors(
            result,
            {"background_level": levels, "background_scale": scales},
            nints=data.shape[0],
        )
        flag_lost_integrations(result, lost, "tso_background", "background_level/scale")
        log.info(
            "Subtracted a %s background (%s per integration) fitted to %d pixels (%.1f%%); "
            "level %.4g %s (median; range %.4g to %.4g), scale %.4f +- %.4f",
            method,
            self.per_integration,
            fit.used.sum(),
            100 * fit.used.mean(),
            np.nanmedian(levels),
            result.meta.bunit_data or "",
            np.nanmin(levels),
            np.nanmax(levels),
            np.nanmedian(scales),
            np.nanstd(scales),
        )
        if fit.n_filled:
            log.info("%d cross-dispersion lines had too few pixels: interpolated", fit.n_filled)
        result.meta.cal_step.tso_background = "COMPLETE"
        return result

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _check_input(model):
        """The exposure type, after checking it agrees with the product."""
        exp_type = str(model.meta.exposure.type).upper()
        if exp_type == "NRC_TSIMAGE" and "SlitModel" in type(model).__name__:
            raise InputError(
                "tso_background: exposure type NRC_TSIMAGE (imaging) in a SlitModel "
                "(a spectroscopic cut-out): the header does not match the product; fix EXP_TYPE."
            )
        if exp_type != "NRC_TSIMAGE":
            try:
                dispersion_axis(model)
            except ImagingExposureError as error:
                raise InputError(f"tso_background: {error}") from error
        return exp_type

    def _method(self, exp_type):
        if self.method != "auto":
            return self.method
        if exp_type == "NIS_SOSS":
            if self.template_file:
                return "template"
            log.info(
                "NIS_SOSS without template_file: fitting a 2-D surface on each side of the "
                "background step instead of scaling the zodiacal template"
            )
        return AUTO_METHOD[exp_type]

    def _template(self, median, always_bad):
        if not self.template_file:
            raise ValueError("method='template' needs template_file.")
        templates = read_template(self.template_file, median.shape)
        if len(templates) == 1:
            return templates[0]
        good = np.isfinite(median) & ~always_bad
        columns = find_template_discontinuity(templates[0])
        sides = None if columns is None else side_masks(median.shape, columns)
        best = choose_template(median, good, templates, sides)
        log.info("Template %d of %d fits the median image best", best, len(templates))
        return templates[best]

    def _source_mask(self, model, median, axis, always_bad):
        line_axis = None if axis is None else (1 if axis == 0 else 0)
        source = choose_source_mask(
            model,
            median.shape,
            lambda: illuminated_pixels(
                median, line_axis, self.mask_n_sigma, self.mask_dilation, always_bad
            ),
            mask_file=self.mask_file,
            mask_method=self.mask_method,
            pad=self.mask_pad,
        )
        return source | always_bad

    def _discontinuity(self, exp_type, method, template, median, dark):
        if self.discontinuity is not None:
            return None if self.discontinuity < 0 else float(self.discontinuity)
        if method == "template":
            columns = find_template_discontinuity(template)
            if columns is not None:
                log.info("Template step at column %.0f (median over rows)", np.median(columns))
            return columns
        if method == "surface" and exp_type == "NIS_SOSS":
            column = find_image_discontinuity(median, dark & np.isfinite(median))
            if column is not None:
                log.info("Background step found in the median image at column %.0f", column)
            return column
        return None
