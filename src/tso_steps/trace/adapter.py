"""The model adapter of the tracing: a datamodel in, the arrays :func:`trace_cube` takes out.

:func:`measure_trace` is what other steps call (``tso_jitter`` for the cross-dispersion
shift, ``tso_extract`` when its input carries no tso_trace results): it reads the data,
variances and bad-sample mask of a spectral cube through the shared input layer, puts the
dispersion last, builds the SOSS priors from the header and runs the algorithm.  It never
changes the model.
"""

import logging

import numpy as np

from tso_steps.inputs import VarianceFrames, bad_samples
from tso_steps.trace.geometry import dispersion_axis, expected_orders, to_dispersion_last
from tso_steps.trace.soss_prior import SossTracePrior
from tso_steps.trace.tracing import NoTraceError, TraceOptions, trace_cube

__all__ = ["measure_trace", "trace_arrays"]

log = logging.getLogger("stpipe.tso_steps.trace")


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
    cube, variance, bad = trace_arrays(model, axis)
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
    shared = {}  # one wheel angle and one offset for both orders
    ystart = model.meta.subarray.ystart
    return tuple(
        SossTracePrior(float(pwcpos), k + 1, str(subarray), ystart, shared) if k < 2 else None
        for k in range(norders)
    )


def trace_arrays(model, axis):
    """Data, variance and bad-sample mask, dispersion along the last axis.

    The data are the model's own array (a view, no float64 copy of the cube) and the
    variance a :class:`~tso_steps.inputs.VarianceFrames` that sums VAR_POISSON and
    VAR_RNOISE (else squares ERR) in float64 for the part of the cube asked for; the
    algorithm converts the pieces it works on to float64, so the values are those of a
    float64 cube without holding one.
    """
    cube = to_dispersion_last(np.asarray(model.data), axis)
    variance = VarianceFrames(
        model, ("var_poisson", "var_rnoise"), orient=lambda a: to_dispersion_last(a, axis)
    )
    if variance.source is None:
        log.warning("No usable variance arrays: all pixels weighted equally.")
        variance = np.broadcast_to(np.float64(1.0), cube.shape)
    bad = to_dispersion_last(bad_samples(model), axis)  # read one integration at a time
    for i in range(cube.shape[0]):
        var = variance[i]
        bad[i] |= ~np.isfinite(var) | (var <= 0)
    return cube, variance, bad
