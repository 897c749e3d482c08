"""TraceStep: the spectral trace of every integration of a TSO exposure."""

import logging

import numpy as np
from jwst.stpipe import Step

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import Accepts, flag_lost_integrations, prepare_output
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.trace.adapter import measure_trace
from tso_steps.vectors import add_vectors

__all__ = ["TraceStep"]

log = logging.getLogger("stpipe.tso_steps.trace")

#: What tso_trace takes: spectroscopic rateints/calints, 2 integrations, 2 x 4 pixels.  A
#: file is mapped: the step uses four of its six arrays and changes only the DQ of lost
#: integrations (the product is written from the mapped pages, not from a private copy).
ACCEPTS = Accepts(
    "tso_trace",
    ("cube", "slit"),
    exposure="spectroscopic",
    min_shape=(2, 4),
    copy="standalone",
    mapped=True,
)


class TraceStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
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
