"""OneOverFStep: remove 1/f noise and output offsets using the unilluminated pixels."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.exposure import ImagingExposureError, dispersion_axis
from tso_steps.inputs import (
    GROUP_DO_NOT_USE,
    Accepts,
    InputError,
    check_parameters,
    flag_lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.inputs.budget import MEMORY_BUDGET_SPEC, budget_bytes, chunk_spans
from tso_steps.masks import choose_source_mask, image_mask
from tso_steps.one_over_f.adapter import BAD_GROUP, lost_integrations, unusable_samples
from tso_steps.one_over_f.correct import OneOverFOptions, clean_cube, clean_ramp, dark_shortage
from tso_steps.one_over_f.scene import MEDIAN_BLOCK, signal_image
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.readout import LineLayout
from tso_steps.vectors import add_vectors

__all__ = ["OneOverFStep"]

log = logging.getLogger("stpipe.tso_steps.one_over_f")


#: What tso_one_over_f takes: ramps or rateints of a time series.
ACCEPTS = Accepts(
    "tso_one_over_f", ("ramp", "cube"), exposure="tso", min_shape=(2, 2), copy="standalone"
)
# Above this fraction of (fast line, output) cells without enough dark pixels,
# ``source_model='auto'`` models the source instead of predicting those levels.
_SHORTAGE_FOR_SOURCE_MODEL = 0.02
# ``method='auto'`` picks ``gp`` for these exposure types and numbers of outputs (where it
# beat the other methods in white light on every 1/f spectrum and seed measured, with an
# unbiased transit depth: docs/steps/tso_one_over_f.rst, "Which method").
_GP_EXPOSURES = {"NRC_TSIMAGE": (1,)}
# Float32 frames a chunk of the cube needs at once, per frame (frames, residuals, stripes,
# source model and its gradients: a count of the temporaries, not a measurement).
_FRAME_TEMPORARIES = 12
# Without memory_budget the working memory is this share of the science array (float32),
# capped at the fixed defaults (16 integrations, MEDIAN_BLOCK values) that full segments
# reach: fixed chunks alone cost twice the data of a small file (issue 15).
_DEFAULT_SHARE = 0.25
# ... but never below this: every chunk has fixed costs (the Wiener filter is factorised per
# chunk), and a small file cut into one-integration chunks took 2.5x the CPU (MIRI LRS).
_DEFAULT_FLOOR = 64 * 2**20


def _default_bytes(shape):
    """Working memory without a budget: a share of the float32 science array, bytes."""
    return max(_DEFAULT_SHARE * 4 * float(np.prod(shape)), _DEFAULT_FLOOR)


def _median_block(memory_budget, shape):
    """Pixel values per block of the scene median (float32, about four copies while sorted)."""
    if memory_budget is None:
        return int(min(MEDIAN_BLOCK, max(shape[-1] * shape[-2], _default_bytes(shape) // 16)))
    return max(1, budget_bytes(memory_budget) // (4 * 4))


def _dispersion_axis(model):
    """Array axis of the dispersion, None for imaging (``method='gp'``'s source basis)."""
    try:
        return dispersion_axis(model)
    except ImagingExposureError:
        return None


def _gp_wins(model, layout):
    """True where ``method='auto'`` picks ``gp``: the modes where it won (docs, measured).

    NIRCam imaging TSO with one output (the SUB64P-like subarrays measured): lower white
    light than ``lines`` on every seed and 1/f spectrum measured, depth unbiased (issue 12).
    Elsewhere ``auto`` stays with ``lines``/``wiener``, and so it does with
    ``source_model='no'`` (``gp`` won with the source observed).
    """
    exp_type = str(model.meta.exposure.type or "").upper()
    return exp_type in _GP_EXPOSURES and layout.namp in _GP_EXPOSURES[exp_type]


def _frames_per_chunk(memory_budget, shape):
    """Integrations of a rateints cube corrected at once (at most 16 without a budget)."""
    frame_bytes = _FRAME_TEMPORARIES * 4 * shape[-1] * shape[-2]
    if memory_budget is None:
        return int(min(16, max(1, _default_bytes(shape) // frame_bytes)))
    spans = chunk_spans(
        shape[0], frame_bytes, memory_budget, 16 * frame_bytes, "tso_one_over_f", "integrations"
    )
    return spans[0][1] - spans[0][0] if spans else 16


class OneOverFStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Fast-by-fast, slow-by-slow 1/f and pre-amplifier offset correction for TSO subarrays.

    The reference-pixel correction for subarrays that have none: per output (and per
    even/odd sample) offsets and per fast line, per output levels are measured on
    unilluminated pixels of every frame and subtracted (see ``docs/steps/tso_one_over_f.rst``).
    A ``RampModel`` is corrected group by group through its group differences (the result is
    still a ramp, in DN); a rateints ``CubeModel`` integration by integration (DN/s).

    The output is a new model of the input's type with the mask of the pixels used attached
    as ``one_over_f_mask`` (uint8, 1 = unilluminated pixel used) and ``tso_vectors`` columns
    ``one_over_f_rms`` (RMS of the stripes removed, data units) and ``one_over_f_scale``
    (source-model scale, 1 when not used). The input is not modified.
    """

    class_alias = "tso_one_over_f"

    spec = f"""
    mask_file = string(default=None)  # file of unilluminated pixels (nonzero = use): FITS, ASDF or .npy; replaces the automatic mask
    mask_method = option('auto', 'trace', 'image', default='auto')  # auto: trace/centroid vectors (if present) plus the median-image threshold; trace: vectors only; image: threshold only
    mask_n_sigma = float(min=0, default=3.0)  # median-image mask: threshold above the background, robust sigma
    mask_dilation = integer(min=0, default=4)  # median-image mask: pixels of dilation around the thresholded source
    mask_pad = float(min=0, default=3.0)  # trace/centroid mask: pixels added to the half-width (4 sigma of the trace, 5 of the PSF)
    source_model = option('auto', 'yes', 'no', default='auto')  # subtract a scaled median frame before measuring and use every good pixel (auto: when over 2% of line/output cells lack dark pixels, e.g. NIRCam grism with 4 outputs)
    odd_even = boolean(default=True)  # separate offsets for even and odd samples of each output
    min_pixels = integer(min=1, default=5)  # fewer usable pixels in a line of one output: predict its level from the other outputs and nearby lines
    clip_sigma = float(min=1, default=4.0)  # clipping threshold for pixels in a level, sigma
    segment = integer(min=1, default=None)  # reads per segment of a line with its own level (default: one level per line and output)
    method = option('auto', 'lines', 'wiener', 'gp', default='auto')  # line levels: wiener = conditional mean of every level given all measured lines and outputs, under a covariance fitted to the dark pixels; lines = each line's own robust mean (+ other outputs, neighbours); gp = conditional mean of the 1/f at every pixel's read time, source modelled by a free spectrum (source model on unless 'no'); auto = gp on NIRCam imaging with 1 output, wiener with several outputs and the source model off (MIRI LRS), else lines (see the docs: measured)
    background_window = integer(min=0, default=31)  # lines of the running median that keeps a smooth background out of the static stripes (0: remove all static line structure)
    {MEMORY_BUDGET_SPEC}
    suffix = string(default='oneoverf')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Correct a ramp or rateints product for 1/f noise and output offsets.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.RampModel` or `~stdatamodels.jwst.datamodels.CubeModel`

        Returns
        -------
        `~stdatamodels.jwst.datamodels.RampModel` or `~stdatamodels.jwst.datamodels.CubeModel`
            A corrected copy of the input.
        """  # noqa: E501
        check_parameters(self, files=("mask_file",))
        result = prepare_output(self, input_data, ACCEPTS)
        layout = LineLayout.from_model(result, step="tso_one_over_f", required=True)
        is_ramp = isinstance(result, datamodels.RampModel)
        data = result.data
        if data.dtype.kind != "f" or data.dtype.itemsize != 4:  # a mapped >f4 file stays mapped
            data = data.astype(np.float32)

        pixel_bad = unusable_samples(result, is_ramp)
        # integrations without data take no part (they would bias the mask and the model)
        lost = lost_integrations(result, is_ramp, pixel_bad)
        if lost.sum() > lost.size - ACCEPTS.min_ints:
            raise InputError(
                f"tso_one_over_f: only {int((~lost).sum())} of {lost.size} integrations hold "
                "a usable sample (the rest are all NaN, DO_NOT_USE or saturated); it needs "
                f"at least {ACCEPTS.min_ints}."
            )
        keep = ~lost
        work = data[keep] if lost.any() else data
        work_bad = pixel_bad[keep] if lost.any() and pixel_bad.ndim == 3 else pixel_bad
        dark, source = self._mask(result, work, work_bad)
        shortage = dark_shortage(dark, layout, self.min_pixels)
        method = self.method
        if method == "auto" and self.source_model != "no" and _gp_wins(result, layout):
            method = "gp"
        use_model = self.source_model == "yes" or (
            self.source_model == "auto"
            and (
                shortage > _SHORTAGE_FOR_SOURCE_MODEL
                or not dark.any()
                or method == "gp"  # its source model has a free spectrum: always on
            )
        )
        if method == "gp" and not use_model and not dark.any():
            raise InputError(
                "tso_one_over_f: method='gp' with source_model='no' measures the 1/f on "
                "unilluminated pixels only, and the mask leaves none; use source_model='auto' "
                "(the source is then modelled) or a mask with unilluminated pixels."
            )
        if method == "auto":  # where wiener won on every spectrum measured (MIRI LRS)
            method = "wiener" if layout.namp > 1 and not use_model else "lines"
        log.info(
            "%d unilluminated pixels (%.1f%%); %.1f%% of line/output cells have fewer than %d; "
            "source model %s; line levels: %s",
            dark.sum(),
            100 * dark.mean(),
            100 * shortage,
            self.min_pixels,
            "on" if use_model else "off",
            method,
        )
        options = options_from_step(
            OneOverFOptions,
            self,
            source_model=use_model,
            method=method,
            dispersion_axis=_dispersion_axis(result),
            chunk=_frames_per_chunk(self.memory_budget, work.shape),
            median_block=_median_block(self.memory_budget, data.shape),
        )
        if is_ramp:
            group_dq = result.groupdq if result.groupdq.shape == data.shape else None
            if group_dq is not None and lost.any():
                group_dq = group_dq[keep]
            summary = clean_ramp(
                work,
                dark,
                layout,
                group_dq,
                BAD_GROUP,
                bad=work_bad,
                source=source,
                options=options,
            )
        else:
            summary = clean_cube(work, dark, layout, bad=work_bad, source=source, options=options)
        if lost.any():
            data[keep] = work
        result.data = data
        result.one_over_f_mask = dark.astype(np.uint8)
        rms = np.full(data.shape[0], np.nan)
        scale = np.full(data.shape[0], np.nan)
        rms[keep] = summary.stripe_rms
        scale[keep] = summary.scale
        add_vectors(
            result,
            {"one_over_f_rms": rms, "one_over_f_scale": scale},
            nints=data.shape[0],
        )
        if (
            flag_lost_integrations(
                None if is_ramp else result, lost, "tso_one_over_f", "one_over_f_rms/scale"
            )
            and is_ramp
            and result.groupdq.shape == data.shape
        ):
            result.groupdq[lost] |= GROUP_DO_NOT_USE
        unit = "DN" if is_ramp else "DN/s"
        log.info(
            "Removed stripes of RMS %.3g %s (median; min %.3g, max %.3g) per %s in %d "
            "integrations; %.1f%% of line levels predicted from other outputs or lines",
            np.nanmedian(rms),
            unit,
            np.nanmin(rms),
            np.nanmax(rms),
            "group difference" if is_ramp else "integration",
            data.shape[0],
            100 * summary.filled_fraction,
        )
        result.meta.cal_step.tso_one_over_f = "COMPLETE"
        return result

    # ------------------------------------------------------------------------------------
    def _mask(self, model, data, pixel_bad):
        """Unilluminated pixels to use, and the source pixels (for the source-model scale)."""
        shape = data.shape[-2:]
        always_bad = pixel_bad if pixel_bad.ndim == 2 else pixel_bad.all(axis=0)
        source = choose_source_mask(
            model,
            shape,
            lambda: image_mask(
                signal_image(data, block=_median_block(self.memory_budget, data.shape)),
                self.mask_n_sigma,
                self.mask_dilation,
                bad=always_bad,
            ),
            mask_file=self.mask_file,
            mask_method=self.mask_method,
            pad=self.mask_pad,
        )
        return ~source & ~always_bad, source & ~always_bad
