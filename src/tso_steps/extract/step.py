"""OptimalExtractStep: per-integration optimal (or box) spectra of a TSO exposure."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.exposure import dispersion_axis
from tso_steps.extract.adapter import (
    extract_arrays,
    order_wavelengths,
    stripe_maps,
    trace_geometry,
)
from tso_steps.extract.core import ExtractOptions, default_halfwidth, extract_order
from tso_steps.extract.products import make_x1dints, order_columns
from tso_steps.inputs import (
    DO_NOT_USE,
    Accepts,
    InputError,
    flag_lost_integrations,
    lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.vectors import add_vectors, get_vectors, integration_numbers

__all__ = ["OptimalExtractStep"]

log = logging.getLogger("stpipe.tso_steps.extract")

#: What tso_extract takes (read only: the input model is not copied; a file is mapped, so
#: only the bands around the traces and the arrays used are read, not ERR or VAR_FLAT).
ACCEPTS = Accepts(
    "tso_extract",
    ("cube", "slit"),
    exposure="spectroscopic",
    min_shape=(2, 4),
    copy="never",
    mapped=True,
)


class OptimalExtractStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Extract one spectrum per integration and order from a spectroscopic TSO product.

    Horne optimal extraction with a profile built from the exposure itself and moved with each
    integration's measured trace (or a box that follows the trace).  The output is an x1dints
    ``TSOMultiSpecModel`` (one ``spec`` per order) that jwst's ``white_light`` reads; the
    input's ``tso_vectors`` travel with it, plus ``n_extract_rejected`` (pixels rejected inside
    the extraction per integration) and ``extract_background`` (mean background per pixel).
    The input is not modified.
    """

    class_alias = "tso_extract"

    spec = """
    method = option('optimal', 'box', default='optimal')  # optimal (Horne) extraction or a box that follows the trace
    halfwidth = float(min=0.5, default=None)  # aperture half-width across the dispersion, pixels (default max(3, ceil(1.5 FWHM + 1)))
    one_over_f = boolean(default=False)  # optimal only: fit readout-stripe (1/f) offsets jointly with the spectrum
    line_degree = integer(min=0, max=5, default=2)  # one_over_f: per-output polynomial degree in the line index (slow 1/f under the trace)
    background_width = integer(min=0, default=None)  # rows beyond the aperture for the local background (default 4; 0 for NIS_SOSS; 0: none)
    background_window = integer(min=1, default=31)  # dispersion pixels the local background is averaged over
    profile_window = integer(min=0, default=0)  # dispersion pixels the spatial profile is fitted over; 0: chosen by held-out residuals
    fit_width = boolean(default=True)  # optimal only: fit the profile's width in every integration (PSF breathing)
    clip_sigma = float(min=0, default=5.0)  # reject pixels beyond this many sigma from the profile model (0: no rejection)
    max_iterations = integer(min=0, default=4)  # rejection iterations (one pixel per column each)
    norders = integer(min=1, max=3, default=None)  # orders to extract when the trace is measured here (default: all the trace step finds)
    suffix = string(default='x1dints')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Extract per-integration spectra.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.SlitModel`
            Spectral rateints/calints ``(nints, ny, nx)``.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        """  # noqa: E501
        opened = not isinstance(input_data, datamodels.JwstDataModel)
        model = prepare_output(self, input_data, ACCEPTS)
        try:
            return self._extract(model)
        finally:
            if opened:
                model.close()

    def _extract(self, model):
        axis = dispersion_axis(model)
        cube, var_p, var_r, bad = extract_arrays(model, axis)
        lost = lost_integrations(bad)
        centers, shifts, fwhm = trace_geometry(model, self.norders)
        labels = amps = lines = None
        if self.one_over_f and self.method == "optimal":
            labels, amps, lines = stripe_maps(model, axis)
        elif self.one_over_f:
            log.warning("one_over_f applies to the optimal extraction only; ignored for box.")
        background_width = self.background_width
        if background_width is None:
            background_width = 0 if model.meta.exposure.type == "NIS_SOSS" else 4
        halfwidth = self.halfwidth or default_halfwidth(fwhm)
        n_cross = cube.shape[-2]
        if self.halfwidth is not None and 2 * halfwidth + 1 > n_cross:
            raise InputError(
                f"tso_extract: halfwidth={halfwidth:g} px makes an aperture of "
                f"{2 * halfwidth + 1:g} px, wider than the {n_cross} px across the "
                "dispersion: give a smaller halfwidth (or None for the default)."
            )
        options = options_from_step(
            ExtractOptions, self, halfwidth=halfwidth, background_width=background_width
        )
        waves = order_wavelengths(model, axis, centers)
        results, orders, rejected, backgrounds = [], [], 0, []
        for k, center in enumerate(centers):
            if not np.isfinite(center).any():
                continue
            res = extract_order(
                cube,
                var_p,
                var_r,
                bad,
                center,
                shifts,
                options,
                labels=labels,
                amplifiers=amps,
                lines=lines,
            )
            ext = res.extraction
            rejected = rejected + ext.rejected.sum(axis=1)
            backgrounds.append(np.nanmean(res.background[:, res.band.lit], axis=1))
            results.append(order_columns(res, axis, cube.shape[-2]))
            orders.append(k + 1)
            log.info(
                "Order %d: %s extraction of %d columns, half-width %.1f px, %d pixels "
                "rejected (%.4f %%)%s",
                k + 1,
                self.method,
                int(res.band.lit.sum()),
                halfwidth,
                int(ext.rejected.sum()),
                100.0 * ext.rejected.sum() / max(int(ext.npixels.sum()), 1),
                f", stripe prior {np.sqrt(ext.stripe_prior):.3g} rms"
                if hasattr(ext, "stripe_prior")
                else "",
            )
            del res, ext  # the profile's tables must not outlive their order
        nints = cube.shape[0]
        for columns in results:
            for name in ("flux", "var_poisson", "var_rnoise"):
                columns[name][lost] = np.nan
        unit = model.meta.bunit_data or "DN/s"
        output = make_x1dints(
            model,
            orders,
            [waves[k - 1] for k in orders],
            results,
            unit,
            integration_numbers(model, nints),
        )
        vectors = get_vectors(model)
        if len(vectors) == nints:
            output.tso_vectors = vectors.as_array()
        add_vectors(
            output,
            {
                "n_extract_rejected": np.asarray(rejected, dtype=np.int64)
                * np.ones(nints, dtype=np.int64),
                "extract_background": np.mean(backgrounds, axis=0),
            },
            nints=nints,
        )
        if flag_lost_integrations(None, lost, "tso_extract", "FLUX"):
            for spec in output.spec:
                spec.spec_table["DQ"][lost] |= DO_NOT_USE
        if output.meta.cal_step.extract_1d == "SKIPPED":
            # a stamp copied from the input: it says jwst's extract_1d did not run on the
            # calints, not that this extraction failed (calwebb_tso3 drops "SKIPPED" spectra)
            output.meta.cal_step.extract_1d = None
        output.meta.cal_step.tso_extract = "COMPLETE"
        return output
