"""TSOJumpStep: flag jumps (cosmic rays, snowballs, showers) from the time series."""

import logging
import time

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    DO_NOT_USE,
    GROUP_DO_NOT_USE,
    GROUP_SATURATED,
    Accepts,
    check_parameters,
    options_from_step,
    prepare_output,
)
from tso_steps.inputs.budget import MEMORY_BUDGET_SPEC
from tso_steps.jump.detect import JumpOptions, detect_jumps
from tso_steps.parallel import OneBlasThreadMixin, resolve_workers
from tso_steps.readout import LineLayout
from tso_steps.vectors import add_vectors

__all__ = ["TSOJumpStep"]

log = logging.getLogger("stpipe.tso_steps.jump")

#: What tso_jump takes: time-series ramps; a model is copied unless inside a pipeline.
ACCEPTS = Accepts("tso_jump", ("ramp",), exposure="tso", min_shape=(2, 2), copy="standalone")


class TSOJumpStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Flag jumps in a TSO ramp by comparing each group difference with the other integrations.

    For every pixel and group difference the expected value is the running median of the
    same group difference in the neighbouring integrations, rescaled by each integration's
    relative flux and corrected for image motion and for the 1/f offset of each detector
    line; the noise is the pixel's own robust scatter. Group ``g`` is flagged JUMP_DET in
    ``groupdq`` when the difference between groups ``g - 1`` and ``g`` departs from its
    expectation by more than ``rejection_threshold`` sigma; large events also flag their
    neighbourhood. Works for any number of groups >= 2. No reference file is needed; gain
    and read-noise files given as ``override_gain`` and ``override_readnoise`` refine the
    noise estimate of short series.

    The output is the input model with JUMP_DET OR-ed into ``groupdq`` (other bits kept) and
    per-integration ``tso_vectors`` columns ``n_jumps``, ``jump_flux_scale``,
    ``jump_shift_x`` and ``jump_shift_y``. A file name is opened and updated without copy
    (memory); a model passed in is copied unless the step runs inside a pipeline.
    """

    class_alias = "tso_jump"

    spec = f"""
    rejection_threshold = float(default=4.25, min=0)  # flag a group difference this many sigma above its expected value
    negative_threshold = float(default=5.0, min=0)  # ... or this many sigma below it (negative jumps are rare)
    rolling_window_width = integer(default=25, min=3)  # integrations in the running median that predicts each group difference
    minimum_ints = integer(default=5, min=2)  # minimum usable integrations in a window to test a sample (fewer integrations in the file: step skipped)
    flag_neighbors = boolean(default=True)  # flag the neighbourhood of large events
    neighbor_threshold = float(default=200.0, min=0)  # score (sigma) from which a hit flags its neighbours; radius grows by one pixel per decade above it
    max_neighbor_radius = integer(default=30, min=1)  # largest radius (pixels) flagged around any event
    min_event_area = integer(default=5, min=1)  # smallest cluster of flagged pixels (or any saturated core) treated as an extended event
    expand_factor = float(default=2.0, min=1)  # flagged radius / equivalent radius of an extended event
    line_offsets = boolean(default=True)  # remove the common offset of each line and output per group difference (1/f noise)
    motion = option('measure', 'none', default='measure')  # motion regressors (jitter): measure = each frame's shifts measured from its group differences; none = no motion terms (as tso_outlier's motion)
    maximum_cores = string(default='1')  # threads: an integer, 'quarter', 'half' or 'all' ('none' = 1)
    {MEMORY_BUDGET_SPEC}
    suffix = string(default='jump')  # suffix of the output file
    """  # noqa: E501

    reference_file_types = ["gain", "readnoise"]

    def process(self, input_data):
        """Flag jumps in a ramp.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.RampModel`

        Returns
        -------
        `~stdatamodels.jwst.datamodels.RampModel`
        """
        check_parameters(self, ordered=(("minimum_ints", "rolling_window_width"),))
        result = prepare_output(self, input_data, ACCEPTS)
        nints, ngroups, ny, nx = result.data.shape
        if ngroups < 2:
            raise ValueError(
                f"tso_jump needs at least 2 groups per integration, got {ngroups}: a one-group "
                "ramp has no group difference to test."
            )
        if nints < self.minimum_ints:
            log.warning(
                "Only %d integrations (< minimum_ints=%d): no time-series reference; "
                "tso_jump skipped.",
                nints,
                self.minimum_ints,
            )
            result.meta.cal_step.tso_jump = "SKIPPED"
            return result
        usable = self._usable_integrations(result)
        if usable.sum() < self.minimum_ints:
            log.warning(
                "Only %d of %d integrations hold a usable group difference (the others are "
                "all DO_NOT_USE, saturated or NaN): fewer than minimum_ints=%d, so there is no "
                "time-series reference; tso_jump skipped (no flags changed).",
                int(usable.sum()),
                nints,
                self.minimum_ints,
            )
            result.meta.cal_step.tso_jump = "SKIPPED"
            return result
        if not usable.all():
            log.warning(
                "%d of %d integrations hold no usable group difference (all DO_NOT_USE, "
                "saturated or NaN): nothing is tested in them (n_jumps 0, jump_flux_scale NaN)",
                int((~usable).sum()),
                nints,
            )
        data = result.data

        lines = LineLayout.from_model(
            result,
            (ny, nx),
            step="tso_jump",
            required=self.line_offsets,
            fix="or run with line_offsets=False",
        )

        gain, readnoise = self._noise_references(result)
        workers = resolve_workers(self.maximum_cores)
        log.info(
            "Detecting jumps in %d integrations x %d groups x %dx%d: threshold %.1f sigma, "
            "window %d, %d thread(s)",
            nints,
            ngroups,
            ny,
            nx,
            self.rejection_threshold,
            self.rolling_window_width,
            workers,
        )
        t0 = time.perf_counter()
        options = options_from_step(
            JumpOptions,
            self,
            workers=workers,
            chunk_mbytes=_slab_mbytes(self.memory_budget, workers),
            nframes=result.meta.exposure.nframes or 1,
            fast_axis=lines.fast_axis,
            n_amps=lines.noutputs,
            interleaved=lines.interleaved,
        )
        summary = detect_jumps(
            data,
            result.groupdq,
            result.pixeldq,
            options=options,
            gain=gain,
            readnoise=readnoise,
        )
        total = int(summary.n_flagged.sum())
        log.info(
            "Flagged %d group samples (%.4f %% of %d tested) as jumps, plus %d around %d "
            "extended events and bright hits, in %.1f s",
            total,
            100.0 * total / max(summary.n_tested, 1),
            summary.n_tested,
            summary.n_neighbours,
            summary.n_events,
            time.perf_counter() - t0,
        )
        add_vectors(
            result,
            {
                "n_jumps": summary.n_flagged.astype(np.int64),
                "jump_flux_scale": np.where(usable, summary.relative_flux, np.nan),
                # the fit measures minus the displacement (S = M - d . grad M)
                "jump_shift_x": -summary.shifts[:, 0],
                "jump_shift_y": -summary.shifts[:, 1],
            },
        )
        result.meta.cal_step.tso_jump = "COMPLETE"
        return result

    @staticmethod
    def _usable_integrations(model):
        """Integrations with at least one pixel holding two usable consecutive groups."""
        bad_group = GROUP_DO_NOT_USE | GROUP_SATURATED
        pixel_bad = None
        if model.pixeldq is not None and model.pixeldq.shape == model.data.shape[-2:]:
            pixel_bad = (model.pixeldq & DO_NOT_USE) != 0
        usable = np.zeros(model.data.shape[0], dtype=bool)
        group_dq = model.groupdq if model.groupdq.shape == model.data.shape else None
        for i in range(model.data.shape[0]):
            good = np.isfinite(model.data[i])
            if group_dq is not None:
                good &= (group_dq[i] & bad_group) == 0
            if pixel_bad is not None:
                good &= ~pixel_bad[None]
            usable[i] = bool((good[1:] & good[:-1]).any())
        return usable

    def _noise_references(self, model):
        """Gain and read-noise arrays when the user gave both override files, else None."""
        gain_file = getattr(self, "override_gain", None)
        readnoise_file = getattr(self, "override_readnoise", None)
        if not gain_file or not readnoise_file or "N/A" in (gain_file, readnoise_file):
            if gain_file or readnoise_file:
                log.warning("Both override_gain and override_readnoise are needed; ignored.")
            return None, None
        with datamodels.GainModel(self.get_reference_file(model, "gain")) as ref:
            gain = _science_cutout(ref, model)
        with datamodels.ReadnoiseModel(self.get_reference_file(model, "readnoise")) as ref:
            readnoise = _science_cutout(ref, model)
        log.info("Noise prior from gain %s and read noise %s", gain_file, readnoise_file)
        return gain, readnoise


def _slab_mbytes(memory_budget, workers):
    """MB of group differences per slab: a slab's temporaries are about ten times that."""
    if memory_budget is None:
        return 16.0
    return max(float(memory_budget) / (_SLAB_TEMPORARIES * max(1, workers)), 1e-3)


#: Working memory of one slab, in units of its float32 group differences (the estimate of
#: docs/steps/tso_jump.rst; with it a 50 MB budget kept the private memory 49 MiB above the
#: imports on a 188 MiB ramp, docs/benchmarks.md).
_SLAB_TEMPORARIES = 10


def _science_cutout(ref, model):
    """The reference array cut to the science subarray (full-frame or matching refs)."""
    from jwst.lib import reffile_utils

    if reffile_utils.ref_matches_sci(model, ref):
        array = ref.data
    else:
        array = reffile_utils.get_subarray_model(model, ref).data
    array = np.asarray(array, dtype=np.float32)
    if array.shape != model.data.shape[-2:]:
        raise ValueError(
            f"Reference array {array.shape} does not match the science array "
            f"{model.data.shape[-2:]}."
        )
    return array
