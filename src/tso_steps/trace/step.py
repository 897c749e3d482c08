"""TraceStep: the spectral trace of every integration of a TSO exposure."""

import logging

import numpy as np
from jwst.stpipe import Step

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    Accepts,
    bad_samples,
    error_variance,
    flag_lost_integrations,
    prepare_output,
    variance_arrays,
)
from tso_steps.trace.geometry import dispersion_axis, expected_orders, to_dispersion_last
from tso_steps.trace.soss_prior import SossTracePrior
from tso_steps.trace.tracing import NoTraceError, TraceOptions, trace_cube
from tso_steps.vectors import add_vectors

__all__ = ["TraceStep", "measure_trace"]

log = logging.getLogger("stpipe.tso_steps.trace")

#: What tso_trace takes: spectroscopic rateints/calints, 2 integrations, 2 x 4 pixels.
ACCEPTS = Accepts("tso_trace", ("cube", "slit"), exposure="spectroscopic", min_shape=(2, 4))


class TraceStep(AtomicSaveMixin, Step):
    """Measure the cross-dispersion position and width of the trace in every integration.

    The exposure's reference trace (0-based cross-dispersion centre of every order at every
    dispersion pixel, NaN where an order is absent) is attached as ``trace_center``
    ``(norders, n_dispersion)``; every integration's shift against the median frame, its
    mean centre and its FWHM go to ``tso_vectors`` (``trace_position``, ``trace_width``,
    ``trace_shift``, ``trace_shift_error``).  The full trace of integration ``i`` is
    ``trace_center + trace_shift[i]``.  The input is not modified; a copy is returned.
    """

    class_alias = "tso_trace"

    spec = """
    norders = integer(min=1, max=3, default=None)  # orders to trace (default: 2 for SOSS SUBSTRIP256/FULL, else 1)
    degree = integer(min=0, max=9, default=None)  # reference trace along the dispersion: None = robust penalised spline (GCV), an integer = robust polynomial of that degree
    soss_prior = boolean(default=True)  # NIS_SOSS with PWCPOS: pastasoss's traces (wheel angle and offset fitted) as the reference trace
    segment = integer(min=16, default=128)  # dispersion pixels sharing one empirical profile template
    min_snr = float(min=0, default=5.0)  # columns whose profile is less significant are not traced
    clip_sigma = float(min=0, default=5.0)  # per-integration fit: reject samples beyond this many sigma (0: none)
    undersampled_fwhm = float(min=0, default=2.5)  # orders with a narrower FWHM (px) are moved with a pixel-integrated profile model
    suffix = string(default='trace')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Trace a spectroscopic rateints/calints product.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.SlitModel`
            Per-integration spectral images ``(nints, ny, nx)``.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            A copy with ``trace_center`` and the ``tso_vectors`` columns.
        """  # noqa: E501
        result = prepare_output(self, input_data, ACCEPTS)
        ref, positions, found = measure_trace(
            result,
            norders=self.norders,
            degree=self.degree,
            segment=self.segment,
            soss_prior=self.soss_prior,
            min_snr=self.min_snr,
            clip_sigma=self.clip_sigma,
            undersampled_fwhm=self.undersampled_fwhm,
        )
        nints = result.data.shape[0]
        flag_lost_integrations(
            result, ~np.isfinite(positions.shift), "tso_trace", "trace_position/width/shift"
        )
        base = float(np.nanmean(ref.center[0]))
        trace_position = base + positions.shift
        trace_width = ref.fwhm[0] * (1.0 + positions.width_scale)
        result.trace_center = ref.center.astype(np.float64)
        add_vectors(
            result,
            {
                "trace_position": trace_position,
                "trace_width": trace_width,
                "trace_shift": positions.shift,
                "trace_shift_error": positions.shift_error,
            },
            nints=nints,
        )
        for k in np.flatnonzero(found):
            lit = np.isfinite(ref.center[k])
            log.info(
                "Order %d: traced %d of %d dispersion pixels, centre %.2f to %.2f px, FWHM %.2f px",
                k + 1,
                lit.sum(),
                lit.size,
                np.nanmin(ref.center[k]),
                np.nanmax(ref.center[k]),
                ref.fwhm[k],
            )
        log.info(
            "Trace position rms %.4f px (median error %.4f px, %d pixels per integration), "
            "width %.2f px (rms %.3f px) over %d integrations",
            np.nanstd(trace_position),
            np.nanmedian(positions.shift_error),
            positions.npixels,
            np.nanmedian(trace_width),
            np.nanstd(trace_width),
            nints,
        )
        result.meta.cal_step.tso_trace = "COMPLETE"
        return result


def measure_trace(
    model,
    norders=None,
    degree=None,
    segment=128,
    min_snr=5.0,
    clip_sigma=5.0,
    undersampled_fwhm=2.5,
    soss_prior=True,
):
    """Reference trace and per-integration shifts of a spectral cube (no model changes).

    The model adapter of :func:`~tso_steps.trace.tracing.trace_cube` (the algorithm on
    arrays), for other steps (``tso_jitter`` uses it for the cross-dispersion shift).
    Parameters as in the step's spec.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.CubeModel` or `~stdatamodels.jwst.datamodels.SlitModel`

    Returns
    -------
    ref : `~tso_steps.trace.reference.ReferenceTrace`
    positions : `~tso_steps.trace.positions.TracePositions`
    found : ndarray of bool, shape ``(norders,)``
        Orders found on the array.

    Raises
    ------
    ImagingExposureError, ValueError

    See Also
    --------
    tso_steps.trace.tracing.trace_cube : the same on arrays.
    """  # noqa: E501
    axis = dispersion_axis(model)
    exp_type = model.meta.exposure.type
    norders = norders or expected_orders(exp_type, model.meta.subarray.name)
    options = TraceOptions(
        norders=norders,
        degree=degree,
        segment=segment,
        min_snr=min_snr,
        clip_sigma=clip_sigma,
        undersampled_fwhm=undersampled_fwhm,
        priors=_soss_priors(model, norders) if soss_prior else None,
    )
    cube, variance, bad = _arrays(model, axis)
    try:
        return trace_cube(cube, variance, bad, options)
    except NoTraceError as error:
        raise ValueError(
            f"tso_trace found no spectral trace in this {exp_type} exposure."
        ) from error


def _soss_priors(model, norders):
    """pastasoss trace priors for a NIS_SOSS exposure with PWCPOS (else None)."""
    if str(model.meta.exposure.type).upper() != "NIS_SOSS":
        return None
    pwcpos = getattr(model.meta.instrument, "pupil_position", None)
    if pwcpos is None or not np.isfinite(pwcpos):
        log.warning(
            "NIS_SOSS exposure without PWCPOS (meta.instrument.pupil_position): the reference "
            "trace is a data-driven spline, not pastasoss's model."
        )
        return None
    subarray = model.meta.subarray.name
    log.info("SOSS reference trace: pastasoss traces at PWCPOS %.4f deg as the prior", pwcpos)
    return tuple(
        SossTracePrior(float(pwcpos), k + 1, str(subarray), model.meta.subarray.ystart)
        if k < 2
        else None
        for k in range(norders)
    )


def _arrays(model, axis):
    """Data, variance and bad-sample mask, dispersion along the last axis."""
    cube = to_dispersion_last(np.asarray(model.data, dtype=np.float64), axis)
    parts = variance_arrays(model, ("var_poisson", "var_rnoise"))
    variance = None
    for part in parts.values():
        part = np.asarray(part, dtype=np.float64)
        variance = part if variance is None else variance + part
    if variance is None:
        variance = error_variance(model)
        if variance is None:
            log.warning("No usable variance arrays: all pixels weighted equally.")
            variance = np.ones_like(model.data, dtype=np.float64)
    variance = to_dispersion_last(variance, axis)
    bad = to_dispersion_last(bad_samples(model), axis)
    bad |= ~np.isfinite(variance) | (variance <= 0)
    return cube, variance, bad
