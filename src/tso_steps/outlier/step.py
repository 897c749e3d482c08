"""TSOOutlierStep: flag outliers in time in TSO rateints/calints and x1dints."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    DO_NOT_USE,
    Accepts,
    flag_lost_integrations,
    lost_in,
    options_from_step,
    prepare_output,
)
from tso_steps.inputs.budget import MEMORY_BUDGET_SPEC
from tso_steps.outlier.adapter import (
    apply_flags,
    apply_spectral_flags,
    cube_arrays,
    measured_motion,
    motion_design,
    spectral_series,
    typical_noise,
)
from tso_steps.outlier.cube import cube_relative_flux, detect_cube_outliers, reference_frames
from tso_steps.outlier.detect import OutlierOptions, detect_series_outliers, motion_sensitive
from tso_steps.parallel import OneBlasThreadMixin, resolve_workers
from tso_steps.readout import LineLayout
from tso_steps.vectors import add_vectors

__all__ = ["TSOOutlierStep"]

log = logging.getLogger("stpipe.tso_steps.outlier")

#: What tso_outlier takes: rateints/calints or x1dints of a time series (any image size).
ACCEPTS = Accepts(
    "tso_outlier", ("cube", "slit", "x1dints"), exposure="tso", min_shape=(1, 1), copy="standalone"
)


class TSOOutlierStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Flag samples that are outliers in their own time series (cosmic rays, glitches).

    Every pixel (or, for x1dints, every wavelength bin) is compared with a model of its
    time series: a running median over integrations of the data divided by each
    integration's relative flux (so a transit or eclipse is not an outlier), plus a
    per-pixel regression on the motion of the source (tso_vectors shifts, or shifts
    measured here), so jitter and tilt events are not outliers either.  Samples deviating by
    more than ``rejection_threshold`` times the pixel's robust scatter get OUTLIER and DO_NOT_USE in
    DQ (existing bits are kept) and become NaN in the science and error arrays, the jwst
    convention that downstream steps understand; with ``replace=True`` they instead take the
    model value and keep only OUTLIER.  The flagged fraction of each integration is stored
    in ``tso_vectors`` column ``outlier_fraction``.

    A file name given as input is opened and modified in place before being returned (no
    second copy in memory); a model given as input is copied first and left unchanged.
    """

    class_alias = "tso_outlier"

    spec = f"""
    rejection_threshold = float(default=4.5, min=0.5)  # flag where |residual| > rejection_threshold x the pixel's robust scatter
    rolling_window_width = integer(default=25, min=3)  # integrations in the running median
    max_iterations = integer(default=4, min=1)  # maximum fit-and-flag passes (stops early once the flags are stable)
    replace = boolean(default=False)  # replace flagged values by the model value (flag OUTLIER only) instead of NaN + DO_NOT_USE
    motion = option('auto', 'vectors', 'measure', 'none', default='auto')  # motion regressors: tso_vectors columns, shifts measured here, or none; auto = vectors if present, else measure
    motion_degree = integer(default=2, min=1, max=2)  # 1: shifts only; 2: also their squares and products
    err_floor = float(default=1.0, min=0)  # the empirical scatter may not fall below this fraction of ERR
    neighbor_threshold = float(default=3.5, min=0)  # also flag samples next to a flagged one (same integration) beyond this x the robust scatter; 0 = off
    suffix = string(default='crfints')  # output suffix, as jwst's outlier_detection in calwebb_tso3
    maximum_cores = string(default='1')  # worker processes for the pixel blocks: an integer, 'quarter', 'half' or 'all' ('none' = 1)
    {MEMORY_BUDGET_SPEC}
    """  # noqa: E501

    def process(self, input_data):
        """Flag outliers in time.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.JwstDataModel`
            A CubeModel or 3-D SlitModel (rateints/calints), or a TSOMultiSpecModel
            (x1dints).

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            The same kind of model with outliers flagged.
        """
        result = prepare_output(self, input_data, ACCEPTS)
        workers = resolve_workers(self.maximum_cores)
        if isinstance(result, datamodels.TSOMultiSpecModel):
            self._flag_spectra(result)
        else:
            self._flag_cube(result, max(1, workers))
        result.meta.cal_step.tso_outlier = "COMPLETE"
        return result

    def _flag_cube(self, model, workers):
        data, err, dq = cube_arrays(model)
        nints = data.shape[0]
        reference = reference_frames(data, dq, DO_NOT_USE, workers, self.memory_budget)
        if not np.isfinite(reference).any():
            raise ValueError("tso_outlier: every sample is NaN or DO_NOT_USE.")
        flux = cube_relative_flux(data, reference, dq, DO_NOT_USE)
        design, _, motion_rms = motion_design(
            model, self.motion, self.motion_degree, lambda: measured_motion(data, reference)
        )
        sensitive = None
        noise = typical_noise(err)
        if design is not None and noise is not None:
            sensitive = motion_sensitive(reference, noise, motion_rms, design.shape[1], nints)
            log.info(
                "Motion regression on %d of %d pixels (where the motion signal outweighs "
                "the cost of fitting it)",
                sensitive.sum(),
                sensitive.size,
            )
        # a cut-out (calints from extract_2d) keeps the outputs of its subarray
        lines = LineLayout.from_model(model, data.shape[1:], step="tso_outlier", required=False)
        found = detect_cube_outliers(
            data,
            err,
            dq,
            DO_NOT_USE,
            design=design,
            motion_pixels=sensitive,
            relative_flux=flux,
            line_axis=lines.fast_axis,
            segments=lines.amplifier_map(),
            options=options_from_step(OutlierOptions, self),
            max_workers=workers,
            memory_budget=self.memory_budget,
        )
        apply_flags(model, found.indices, found.model_values, self.replace)
        lost = lost_in(model)
        fraction = np.where(lost, np.nan, found.counts / data[0].size)
        add_vectors(model, {"outlier_fraction": fraction}, nints=nints)
        flag_lost_integrations(model, lost, "tso_outlier", "outlier_fraction")
        log.info(
            "Flagged %d samples (%.3g %% of %d pixel-integrations) in %d integrations after "
            "%d iteration(s); %s",
            found.indices.size,
            100.0 * found.indices.size / data.size,
            data.size,
            nints,
            found.iterations,
            "replaced by the model" if self.replace else "set to NaN",
        )

    def _flag_spectra(self, model):
        nints = None
        total = None
        for number, spec in enumerate(model.spec):
            flux, flux_error, bad = spectral_series(spec)
            nints = flux.shape[0]
            design, _, _ = motion_design(
                model,
                self.motion,
                self.motion_degree,
                lambda flux=flux, bad=bad: measured_motion(np.where(bad, np.nan, flux)),
            )
            flags, predicted = detect_series_outliers(
                flux,
                flux_error,
                bad,
                design=design,
                options=options_from_step(OutlierOptions, self),
            )
            apply_spectral_flags(spec.spec_table, flags, predicted, self.replace)
            counts = flags.sum(axis=1)
            total = counts if total is None else total + counts
            log.info(
                "Spectrum %d: flagged %d of %d bin-integrations (%.3g %%)",
                number,
                flags.sum(),
                flags.size,
                100.0 * flags.mean(),
            )
        nbins = sum(np.asarray(s.spec_table["FLUX"]).shape[1] for s in model.spec)
        add_vectors(model, {"outlier_fraction": total / nbins}, nints=nints)
