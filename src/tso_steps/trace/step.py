"""TraceStep: the spectral trace of every integration of a TSO exposure."""

import logging
import warnings

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.trace.geometry import dispersion_axis, expected_orders, to_dispersion_last
from tso_steps.trace.pixel_profile import fit_pixel_profiles
from tso_steps.trace.positions import integration_positions
from tso_steps.trace.reference import _fill_bad, reference_trace
from tso_steps.trace.soss_prior import SossTracePrior
from tso_steps.vectors import add_vectors

__all__ = ["TraceStep", "measure_trace"]

log = logging.getLogger("stpipe.tso_steps.trace")

DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]


class TraceStep(Step):
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
    clip = float(min=0, default=5.0)  # per-integration fit: reject samples beyond this many sigma (0: none)
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
        with datamodels.open(input_data) as input_model:
            result = input_model.copy()
        if not isinstance(result, (datamodels.CubeModel, datamodels.SlitModel)):
            raise TypeError(
                f"tso_trace takes a rateints/calints CubeModel or SlitModel, got "
                f"{type(result).__name__}."
            )
        if result.data.ndim != 3 or result.data.shape[0] < 2:
            raise ValueError(
                f"tso_trace needs at least 2 integrations, got data of shape {result.data.shape}."
            )
        ref, positions, found = measure_trace(
            result,
            norders=self.norders,
            degree=self.degree,
            segment=self.segment,
            soss_prior=self.soss_prior,
            min_snr=self.min_snr,
            clip=self.clip,
            undersampled_fwhm=self.undersampled_fwhm,
        )
        nints = result.data.shape[0]
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
            np.std(trace_position),
            np.nanmedian(positions.shift_error),
            positions.npixels,
            np.nanmedian(trace_width),
            np.std(trace_width),
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
    clip=5.0,
    undersampled_fwhm=2.5,
    soss_prior=True,
):
    """Reference trace and per-integration shifts of a spectral cube (no model changes).

    The algorithm of :class:`TraceStep` as a function, for other steps (``tso_jitter`` uses
    it for the cross-dispersion shift).  Parameters as in the step's spec.

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
    """  # noqa: E501
    axis = dispersion_axis(model)
    exp_type = model.meta.exposure.type
    norders = norders or expected_orders(exp_type, model.meta.subarray.name)
    cube, variance, bad = _arrays(model, axis)
    if bad.all():
        raise ValueError("tso_trace: every sample is NaN or DO_NOT_USE.")
    mean, mean_var = _stack(cube, variance, bad)
    priors = _soss_priors(model, norders) if soss_prior else None
    ref = reference_trace(
        mean,
        mean_var,
        norders=norders,
        degree=degree,
        min_snr=min_snr,
        segment=segment,
        priors=priors,
        undersampled_fwhm=undersampled_fwhm,
    )
    found = np.isfinite(ref.center).any(axis=1)
    for prior in priors or []:
        if prior is not None and prior.last is not None:
            log.info(
                "Order %d: pastasoss trace fitted with PWCPOS %+.4f deg, offset %+.3f px "
                "(%d columns kept)",
                prior.order,
                prior.last.dpwcpos,
                prior.last.dy,
                prior.last.used.sum(),
            )
    if not found[0]:
        raise ValueError(f"tso_trace found no spectral trace in this {exp_type} exposure.")
    for k in np.flatnonzero(~found):
        log.warning("Order %d not found on the array: its trace_center row is NaN.", k + 1)
    filled = _fill_bad(mean, np.isfinite(mean))
    profiles = _pixel_profiles(filled, mean_var, ref, found, undersampled_fwhm)
    positions = integration_positions(
        cube,
        variance,
        filled,
        ref.center[found],
        ref.halfwidth[found],
        bad=bad,
        profiles=profiles,
        clip=clip,
    )
    return ref, positions, found


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
    return [
        SossTracePrior(float(pwcpos), k + 1, str(subarray), model.meta.subarray.ystart)
        if k < 2
        else None
        for k in range(norders)
    ]


def _pixel_profiles(mean, variance, ref, found, max_fwhm):
    """Pixel-integrated profile models for the undersampled orders (None for the others)."""
    weight = np.where(np.isfinite(variance) & (variance > 0), 1.0 / variance, 0.0)
    profiles = []
    for k in np.flatnonzero(found):
        if ref.fwhm[k] < max_fwhm:
            profiles.append(fit_pixel_profiles(mean, weight, ref.center[k], ref.halfwidth[k]))
            log.info(
                "Order %d is undersampled (FWHM %.2f px): shifts use a pixel-integrated model",
                k + 1,
                ref.fwhm[k],
            )
        else:
            profiles.append(None)
    return profiles


def _stack(cube, variance, bad, clip=5.0):
    """Clipped mean frame and its variance.

    A clipped mean rather than a median: the template's noise enters every integration's
    fit, and a mean has pi/2 times less of it; samples more than ``clip`` sigma from the
    median (cosmic rays) are left out.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        clean = np.where(bad, np.nan, cube)
        median = np.nanmedian(clean, axis=0)
        keep = ~bad & (np.abs(cube - median) <= clip * np.sqrt(variance))
        count = keep.sum(axis=0)
        mean = np.where(count > 0, np.sum(np.where(keep, cube, 0.0), axis=0) / count, median)
        mean_var = np.sum(np.where(keep, variance, 0.0), axis=0) / np.maximum(count, 1) ** 2
    mean_var = np.where(count > 0, mean_var, np.nan)
    return mean, mean_var


def _arrays(model, axis):
    """Data, variance and bad-sample mask, dispersion along the last axis."""
    cube = to_dispersion_last(np.asarray(model.data, dtype=np.float64), axis)
    variance = None
    for name in ("var_poisson", "var_rnoise"):
        if model.hasattr(name) and getattr(model, name).shape == model.data.shape:
            part = np.asarray(getattr(model, name), dtype=np.float64)
            variance = part if variance is None else variance + part
    if variance is None or not np.isfinite(variance).any() or not np.nanmax(variance) > 0:
        err = np.asarray(model.err, dtype=np.float64) if model.hasattr("err") else None
        if err is not None and err.shape == model.data.shape and np.nanmax(err) > 0:
            variance = err**2
        else:
            log.warning("No usable variance arrays: all pixels weighted equally.")
            variance = np.ones_like(model.data, dtype=np.float64)
    variance = to_dispersion_last(variance, axis)
    bad = ~np.isfinite(cube) | ~np.isfinite(variance) | (variance <= 0)
    if model.hasattr("dq") and model.dq is not None and model.dq.size:
        dq = to_dispersion_last(np.asarray(model.dq), axis)
        bad |= np.broadcast_to((dq & DO_NOT_USE) > 0, cube.shape)
    return cube, variance, bad
