"""PixelTimingStep: attach per-pixel read times to a TSO product."""

import logging

import numpy as np
from jwst.stpipe import Step
from stdatamodels.jwst import datamodels

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import Accepts, check_parameters, prepare_output
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.readout import ReadoutGeometry, ReadoutMetadataError
from tso_steps.timing.pixel_times import (
    bin_mid_times,
    extraction_bin_pixels,
    pixel_read_offsets,
)

__all__ = ["PixelTimingStep"]

log = logging.getLogger("stpipe.tso_steps.timing")

#: What tso_pixel_timing takes: any time-series product (its data are not read).
ACCEPTS = Accepts(
    "tso_pixel_timing",
    ("ramp", "cube", "slit", "x1dints"),
    exposure="tso",
    min_shape=(1, 1),
    reads_pixels=False,
    copy="standalone",
)


class PixelTimingStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Time-stamp every pixel (images) or every spectral bin (x1dints) of a TSO product.

    On a ramp, rateints or calints model the step attaches ``pixel_read_offsets``: a
    ``(ny, nx)`` float64 array, the seconds after the start of each frame's readout at which
    each pixel is read (DMS orientation). ``int_mid + (pixel_read_offsets - TFRAME/2)`` is the
    mid-time of a pixel's measurement (see ``docs/timing.rst``).

    On an x1dints (``TSOMultiSpecModel``) it attaches, to every ``spec`` entry,
    ``bin_mid_BJD_TDB``: an ``(nints, nwave)`` array of the mid-time of every wavelength bin of
    every integration, in BJD_TDB (MJD-style days, like ``int_times``).

    The input is not modified; a copy is returned.
    """

    class_alias = "tso_pixel_timing"

    spec = """
    cutout_origin = int_list(min=2, max=2, default=None)  # x1dints only: 0-based (x, y) in the full subarray of the frame the extraction limits refer to (for extract_2d cut-outs)
    check_frame_time = boolean(default=True)  # raise if TFRAME disagrees with the readout geometry
    suffix = string(default='timing')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Attach read times to a TSO product.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.JwstDataModel`
            A RampModel, CubeModel, SlitModel (3-D) or TSOMultiSpecModel.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            A copy of the input with the read times attached.
        """
        check_parameters(self, non_negative=("cutout_origin",))
        result = prepare_output(self, input_data, ACCEPTS)
        if isinstance(result, datamodels.TSOMultiSpecModel):
            self._time_spectral_bins(result)
        else:
            self._time_pixels(result)
        result.meta.cal_step.tso_pixel_timing = "COMPLETE"
        return result

    def _time_pixels(self, model):
        offsets = pixel_read_offsets(model, check_frame_time=self.check_frame_time)
        model.pixel_read_offsets = offsets
        log.info(
            "Attached pixel read offsets to %s array: reads span %.6f s of a %.6f s frame",
            "x".join(str(n) for n in offsets.shape),
            offsets.max() - offsets.min(),
            model.meta.exposure.frame_time,
        )

    def _time_spectral_bins(self, model):
        ny, nx = model.meta.subarray.ysize, model.meta.subarray.xsize
        if ny is None or nx is None:
            raise ReadoutMetadataError(
                "x1dints needs SUBSIZE1/SUBSIZE2 (meta.subarray.xsize/ysize) to locate its "
                "pixels on the detector."
            )
        geometry = ReadoutGeometry.from_model(model, shape=(ny, nx))
        frame_time = model.meta.exposure.frame_time
        if self.check_frame_time:
            geometry.check_frame_time(frame_time)
        offsets = geometry.read_offsets()
        int_times = model.int_times
        if int_times is None or len(int_times) == 0:
            raise ValueError("x1dints has no int_times table; bins cannot be time-stamped.")
        origin = tuple(self.cutout_origin) if self.cutout_origin else (0, 0)
        if self.cutout_origin is None and model.meta.exposure.type == "NRC_TSGRISM":
            log.warning(
                "NRC_TSGRISM spectra are extracted from an extract_2d cut-out whose origin "
                "x1dints does not record; bin times assume origin (0, 0). Pass cutout_origin "
                "(the cut-out's 0-based x, y in the subarray) for exact times."
            )
        for spec in model.spec:
            table = spec.spec_table
            ints = np.asarray(table["INT_NUM"], dtype=int)
            lookup = {int(n): i for i, n in enumerate(int_times["integration_number"])}
            if any(int(n) not in lookup for n in ints):
                raise ValueError("x1dints INT_NUM values are missing from its int_times table.")
            int_mid = np.asarray(int_times["int_mid_BJD_TDB"])[[lookup[int(n)] for n in ints]]
            limits = [
                spec.extraction_xstart,
                spec.extraction_xstop,
                spec.extraction_ystart,
                spec.extraction_ystop,
            ]
            if any(v is None for v in limits) or spec.dispersion_direction not in (1, 2):
                raise ReadoutMetadataError(
                    "x1dints spectrum lacks its extraction region (EXTRXSTR/EXTRXSTP/EXTRYSTR/"
                    "EXTRYSTP) or dispersion direction (DISPAXIS)."
                )
            nbins = table["WAVELENGTH"].shape[1]
            bins = extraction_bin_pixels(
                (ny, nx), spec.dispersion_direction, *limits, nbins, origin=origin
            )
            spec.bin_mid_BJD_TDB = bin_mid_times(int_mid, offsets, frame_time, bins)
            spread = np.nanmax(spec.bin_mid_BJD_TDB[0]) - np.nanmin(spec.bin_mid_BJD_TDB[0])
            log.info(
                "Time-stamped %d bins x %d integrations; bins span %.4f s within an integration",
                nbins,
                len(ints),
                spread * 86400.0,
            )
