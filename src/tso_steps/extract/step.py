"""OptimalExtractStep: per-integration optimal (or box) spectra of a TSO exposure."""

import logging
import warnings

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.exposure import dispersion_axis
from tso_steps.extract.core import ExtractOptions, default_halfwidth, extract_order
from tso_steps.extract.products import make_x1dints, trace_wavelengths
from tso_steps.extract.stripes import stripe_labels
from tso_steps.inputs import (
    DO_NOT_USE,
    Accepts,
    InputError,
    bad_samples,
    error_variance,
    flag_lost_integrations,
    lost_integrations,
    options_from_step,
    prepare_output,
    variance_arrays,
)
from tso_steps.readout import LineLayout
from tso_steps.trace import measure_trace, to_dispersion_last
from tso_steps.vectors import add_vectors, get_vectors, integration_numbers

__all__ = ["OptimalExtractStep"]

log = logging.getLogger("stpipe.tso_steps.extract")

#: What tso_extract takes (read only: the input model is not copied).
ACCEPTS = Accepts(
    "tso_extract", ("cube", "slit"), exposure="spectroscopic", min_shape=(2, 4), copy="never"
)


class OptimalExtractStep(AtomicSaveMixin, Step):
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
    profile_window = integer(min=0, default=0)  # dispersion pixels the spatial profile is smoothed over; 0: chosen by held-out residuals
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
        cube, var_p, var_r, bad = _arrays(model, axis)
        lost = lost_integrations(bad)
        centers, shifts, fwhm = self._geometry(model)
        labels = amps = lines = None
        if self.one_over_f and self.method == "optimal":
            labels, amps, lines = _stripe_maps(model, axis)
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
        waves = _wavelengths(model, axis, centers)
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
            results.append(_order_columns(res, axis, cube.shape[-2]))
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

    def _geometry(self, model):
        """Reference trace per order, per-integration shift and FWHM (from tso_trace or here)."""
        vectors = get_vectors(model)
        center = getattr(model, "trace_center", None) if model.hasattr("trace_center") else None
        nints = model.data.shape[0]
        if center is not None and "trace_shift" in vectors.colnames and len(vectors) == nints:
            centers = np.atleast_2d(np.asarray(center, dtype=float))
            shifts = np.asarray(vectors["trace_shift"], dtype=float)
            if "trace_shift_after_jitter" in vectors.colnames:
                # tso_jitter resampled the data: follow the trace that is left in them
                shifts = np.asarray(vectors["trace_shift_after_jitter"], dtype=float)
                log.info("Following the trace left after tso_jitter's resampling")
            fwhm = (
                float(np.nanmedian(vectors["trace_width"]))
                if "trace_width" in vectors.colnames
                else 2.0
            )
            if self.norders:
                centers = centers[: self.norders]
            log.info("Using the trace from tso_trace (%d orders)", len(centers))
        else:
            log.info("No tso_trace results on the input: measuring the trace")
            ref, positions, _ = measure_trace(model, norders=self.norders)
            centers, shifts, fwhm = ref.center, positions.shift, float(ref.fwhm[0])
        shifts = np.where(np.isfinite(shifts), shifts, 0.0)
        return centers, shifts, fwhm


def _arrays(model, axis):
    """Data, Poisson and read-noise variances and bad mask, dispersion last.

    float32 views where the model's arrays are float32 (no copy of the cube); the extraction
    converts band-sized pieces to float64.
    """
    cube = to_dispersion_last(np.asarray(model.data, dtype=np.float32), axis)
    parts = {
        name: to_dispersion_last(np.asarray(array, dtype=np.float32), axis)
        for name, array in variance_arrays(model, ("var_poisson", "var_rnoise")).items()
    }
    if "var_rnoise" not in parts:
        err2 = error_variance(model)
        if err2 is None:
            raise InputError(
                "tso_extract needs VAR_RNOISE/VAR_POISSON or ERR arrays (none is usable): "
                "run it on a rateints/calints product from ramp_fit."
            )
        log.warning("No VAR_RNOISE: the ERR array is used as read noise, no Poisson model.")
        parts = {"var_rnoise": to_dispersion_last(err2.astype(np.float32), axis)}
    var_r = parts["var_rnoise"]
    var_p = parts.get("var_poisson", np.zeros_like(var_r))
    bad = to_dispersion_last(bad_samples(model), axis)
    bad |= ~np.isfinite(var_r) | ~(var_r > 0)
    return cube, var_p, var_r, bad


def _stripe_maps(model, axis):
    """Stripe label, output and line index of every pixel, dispersion last."""
    layout = LineLayout.from_model(
        model, step="tso_extract", required=True, fix="or run with one_over_f=False"
    )
    amp, line = layout.amplifier_map(), layout.line_map()
    labels = stripe_labels(amp, line, layout.noutputs)
    log.info(
        "1/f-aware extraction: %d outputs, fast axis along %s",
        layout.noutputs,
        "x" if layout.fast_axis == 1 else "y",
    )
    return (
        to_dispersion_last(labels, axis),
        to_dispersion_last(amp, axis),
        to_dispersion_last(line, axis),
    )


def _wavelengths(model, axis, centers):
    """Wavelength along every order's trace (micron), else the dispersion pixel index."""
    n_disp = model.data.shape[-1 if axis == 1 else -2]
    wave = getattr(model, "wavelength", None) if model.hasattr("wavelength") else None
    if wave is not None and wave.shape == model.data.shape[-2:] and np.nanmax(wave) > 0:
        image = to_dispersion_last(np.asarray(wave, dtype=float), axis)
        return [trace_wavelengths(image, c) for c in centers]
    wcs = getattr(model.meta, "wcs", None)
    if wcs is not None:
        try:
            yy, xx = np.indices(model.data.shape[-2:])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = np.asarray(wcs(xx, yy)[2], dtype=float)
            if np.isfinite(image).any():
                image = to_dispersion_last(image, axis)
                return [trace_wavelengths(image, c) for c in centers]
        except Exception as exc:  # noqa: BLE001 - any WCS failure falls back to pixels
            log.debug("WCS evaluation failed: %s", exc)
    log.warning("No wavelength array or usable WCS: WAVELENGTH holds the dispersion pixel index.")
    index = np.arange(n_disp, dtype=float)
    return [np.where(np.isfinite(c), index, np.nan) for c in centers]


def _order_columns(res, axis, n_cross):
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
