"""The model adapter of the extraction: a spectral datamodel in, the arrays it needs out.

The data, variances and bad mask with the dispersion last, the readout-stripe maps of the
1/f-aware extraction, the wavelength along each order and the trace geometry (tso_trace's
results on the input, else :func:`~tso_steps.trace.measure_trace`).  Nothing here changes
the model.
"""

import logging
import warnings

import numpy as np

from tso_steps.extract.products import trace_wavelengths
from tso_steps.extract.stripes import stripe_labels
from tso_steps.inputs import InputError, bad_samples, error_variance, variance_arrays
from tso_steps.readout import LineLayout
from tso_steps.trace import measure_trace, to_dispersion_last
from tso_steps.vectors import get_vectors

__all__ = ["extract_arrays", "order_wavelengths", "stripe_maps", "trace_geometry"]

log = logging.getLogger("stpipe.tso_steps.extract")


def extract_arrays(model, axis):
    """Data, Poisson and read-noise variances and bad mask, dispersion last.

    Views of the model's own arrays (no copy of the cube, whatever their byte order: FITS
    arrays are big-endian); the extraction converts band-sized pieces to float64.
    """
    cube = to_dispersion_last(np.asarray(model.data), axis)
    parts = {
        name: to_dispersion_last(np.asarray(array), axis)
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
    var_p = parts.get("var_poisson", np.broadcast_to(np.float32(0.0), var_r.shape))
    bad = to_dispersion_last(bad_samples(model), axis)
    bad |= ~np.isfinite(var_r) | ~(var_r > 0)
    return cube, var_p, var_r, bad


def stripe_maps(model, axis):
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


def order_wavelengths(model, axis, centers):
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


def trace_geometry(model, norders=None):
    """Reference trace per order, per-integration shift and FWHM: tso_trace's, else measured.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.SlitModel`
    norders : int, optional
        Orders to keep (default: all that tso_trace recorded or finds).

    Returns
    -------
    centers : ndarray, shape ``(norders, n_disp)``
    shifts : ndarray, shape ``(nints,)``
        Cross-dispersion trace shift of each integration, pixels (unmeasured: 0).
    fwhm : float
        Trace FWHM, pixels.
    """  # noqa: E501
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
        if norders:
            centers = centers[:norders]
        log.info("Using the trace from tso_trace (%d orders)", len(centers))
    else:
        log.info("No tso_trace results on the input: measuring the trace")
        ref, positions, _ = measure_trace(model, norders=norders)
        centers, shifts, fwhm = ref.center, positions.shift, float(ref.fwhm[0])
    shifts = np.where(np.isfinite(shifts), shifts, 0.0)
    return centers, shifts, fwhm
