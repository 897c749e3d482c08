"""JitterCorrectStep: realign every integration's spectrum onto the reference pixel grid."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    Accepts,
    InputError,
    flag_lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.jitter.adapter import cube_frames, realign_cube, realign_spectrum, spectrum_frames
from tso_steps.jitter.align import (
    AlignmentOptions,
    applied_moves,
    axis_summary,
    follow_trace,
    mean_slope,
    measure_alignment,
    measured_shifts,
    missing_shifts,
    trace_after_jitter,
)
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.trace import measure_trace
from tso_steps.trace.geometry import dispersion_axis
from tso_steps.trace.tracing import TraceOptions
from tso_steps.vectors import add_vectors

__all__ = ["JitterCorrectStep"]

log = logging.getLogger("stpipe.tso_steps.jitter")

#: What tso_jitter takes: spectroscopic calints/rateints or x1dints of a time series.
ACCEPTS = Accepts(
    "tso_jitter", ("cube", "slit", "x1dints"), exposure="tso", min_shape=(3, 3), copy="standalone"
)


class JitterCorrectStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Measure each integration's shift and move its data back onto the reference grid.

    Run on 2-D calints before ``photom`` (so photom's static wavelength map applies to the
    right pixels in every integration) or on x1dints (each integration's 1-D spectra are
    moved along the wavelength axis).  Shifts go to ``tso_vectors`` as ``shift_dispersion``
    and ``shift_cross_dispersion`` (pixels, content of the integration relative to the
    reference; NaN along an axis that cannot be measured).  The input is not modified.
    """

    class_alias = "tso_jitter"

    spec = """
    reference = string(default='median')  # 'median' of all integrations, or the 0-based index of one integration
    region = int_list(min=4, max=4, default=None)  # [y0, y1, x0, x1] 0-based half-open window used to measure (default all)
    iterations = integer(min=1, max=5, default=2)  # measurement passes, all run (each rebuilds the median from the realigned data)
    max_pixels = integer(min=100, default=20000)  # pixels with the steepest gradient used for the fit
    max_error = float(min=0, default=0.02)  # axes whose median shift error exceeds this (px) are not corrected
    cross_dispersion = option("trace", "register", default="trace")  # cross-dispersion shift: tso_trace's profile fit (exact for undersampled traces) or the 2-D registration
    resample = boolean(default=True)  # False: only measure and record the shifts
    suffix = string(default='jitter')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Realign a calints/rateints or x1dints product.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.JwstDataModel`
            CubeModel / SlitModel ``(nints, ny, nx)`` or TSOMultiSpecModel.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
        """
        result = prepare_output(self, input_data, ACCEPTS)
        if isinstance(result, datamodels.TSOMultiSpecModel):
            measured = self._spectra(result)
        else:
            measured = self._images(result)
        if measured:
            result.meta.cal_step.tso_jitter = "COMPLETE"
        else:
            log.warning(
                "tso_jitter: no shift could be measured in any integration; nothing was "
                "realigned (cal_step.tso_jitter = SKIPPED)."
            )
            result.meta.cal_step.tso_jitter = "SKIPPED"
        return result

    def _reference(self, nints, lost):
        """'median' or a valid 0-based integration index (clear errors for anything else)."""
        text = str(self.reference).strip()
        if text.lower() == "median":
            return "median"
        try:
            index = int(text)
        except ValueError:
            raise InputError(
                f"tso_jitter: reference must be 'median' or the 0-based index of an "
                f"integration, got {self.reference!r}."
            ) from None
        if not 0 <= index < nints:
            raise InputError(
                f"tso_jitter: reference={index} is out of range: this product holds {nints} "
                f"integrations (0 to {nints - 1})."
            )
        if lost[index]:
            raise InputError(
                f"tso_jitter: reference integration {index} has no usable data (all NaN or "
                "DO_NOT_USE): choose another one, or 'median'."
            )
        return index

    def _region(self, shape):
        if not self.region:
            return None
        y0, y1, x0, x1 = self.region
        ny, nx = shape
        if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise InputError(
                f"tso_jitter: region={list(self.region)} is not a window [y0, y1, x0, x1] "
                f"(0-based, half-open, y0 < y1, x0 < x1) inside the {ny} x {nx} array."
            )
        return (slice(y0, y1), slice(x0, x1))

    def _images(self, model):
        data, lost = cube_frames(model)
        axis = dispersion_axis(model)
        reference = self._reference(data.shape[0], lost)
        region = self._region(data.shape[1:])
        frames = np.where(lost[:, None, None], np.nan, data) if lost.any() else data
        alignment = measure_alignment(
            frames, options_from_step(AlignmentOptions, self, reference=reference, region=region)
        )
        traced = None
        if self.cross_dispersion == "trace" and region is None and reference == "median":
            ref, positions, _ = measure_trace(model)
            slope = mean_slope(ref.center, ref.column_error)
            follow_trace(
                alignment, axis, positions.shift, positions.shift_error, slope, self.max_error
            )
            traced = (ref, positions.shift, slope)
        names = (
            ("cross-dispersion", "dispersion") if axis == 1 else ("dispersion", "cross-dispersion")
        )
        shifts = _report(alignment, names, self.max_error, lost)
        add_vectors(
            model,
            {"shift_dispersion": shifts[:, axis], "shift_cross_dispersion": shifts[:, 1 - axis]},
        )
        flag_lost_integrations(model, lost, "tso_jitter", "shift_dispersion/cross_dispersion")
        _report_missing(shifts, lost)
        if not np.isfinite(shifts).any():
            return False
        if not self.resample:
            return True
        applied = _applied_moves(shifts, axis, traced)
        if traced is not None:
            _, trace_shift, slope = traced
            add_vectors(
                model,
                {"trace_shift_after_jitter": trace_after_jitter(trace_shift, slope, applied, axis)},
            )
        realign_cube(model, data, applied)
        return True

    def _spectra(self, model):
        measured = False
        for n, spec in enumerate(model.spec):
            frames, lost = spectrum_frames(spec.spec_table)
            reference = self._reference(frames.shape[0], lost)
            options = options_from_step(AlignmentOptions, self, reference=reference, region=None)
            alignment = measure_alignment(frames, options)
            shifts = _report(alignment, ("dispersion",), self.max_error, lost)
            if n == 0:
                add_vectors(model, {"shift_dispersion": shifts[:, 0]}, nints=frames.shape[0])
                _report_missing(shifts, lost)
            if not np.isfinite(shifts).any():
                continue
            measured = True
            if self.resample:
                realign_spectrum(spec.spec_table, shifts, lost)
        return measured


def _applied_moves(shifts, axis, traced):
    """The shifts to undo (:func:`~tso_steps.jitter.align.applied_moves`), with the log line.

    The cross-dispersion shift of an undersampled trace is recorded, not resampled, and
    tso_extract follows it per integration (``trace_shift_after_jitter``).
    """
    fwhm = None if traced is None else float(traced[0].fwhm[0])
    limit = TraceOptions().undersampled_fwhm
    applied, held = applied_moves(shifts, axis, fwhm, limit)
    if held:
        log.info(
            "Cross-dispersion shifts recorded but not resampled: the trace is undersampled "
            "(FWHM %.2f px < %.1f px), and interpolating across it would blur its core; "
            "tso_extract follows the trace per integration instead.",
            fwhm,
            limit,
        )
    return applied


def _report_missing(shifts, lost):
    """One log line with the count of integrations whose shift could not be measured."""
    missing = missing_shifts(shifts)
    if missing.any():
        log.warning(
            "%d of %d integrations have no measured shift on a corrected axis (%d without "
            "usable data): recorded as NaN, their data are not moved.",
            int(missing.sum()),
            missing.size,
            int(lost.sum()),
        )


def _report(alignment, axis_names, max_error, lost):
    """Log what was measured; the shifts with unmeasurable axes and lost integrations NaN."""
    summary = axis_summary(alignment)
    for k, name in enumerate(axis_names):
        error, rms, low, high = summary[k]
        if not alignment.usable[k]:
            log.warning(
                "The %s shift cannot be measured (median error %.3g px > max_error %.3g px: "
                "featureless along that axis?); recorded as NaN and not corrected.",
                name,
                error,
                max_error,
            )
        else:
            log.info(
                "%s shift: rms %.4f px, range %.4f to %.4f px, median error %.4f px",
                name.capitalize(),
                rms,
                low,
                high,
                error,
            )
    return measured_shifts(alignment, lost)
