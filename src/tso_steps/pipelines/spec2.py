"""``tso_spec2``: calwebb_spec2 with 2-D background, tracing and jitter correction before photom."""

from jwst.pipeline import Spec2Pipeline

from tso_steps.background.step import Background2DStep
from tso_steps.inputs import Accepts
from tso_steps.jitter.step import JitterCorrectStep
from tso_steps.pipelines.splice import Placement, TSOPipelineMixin
from tso_steps.trace.step import TraceStep

__all__ = ["TSOSpec2Pipeline"]


class TSOSpec2Pipeline(TSOPipelineMixin, Spec2Pipeline):
    """jwst's calwebb_spec2 with ``tso_background``, ``tso_trace`` and ``tso_jitter``.

    The three run, in that order, right after ``barshadow``: the last step before ``photom``
    on every time-series path of calwebb_spec2 (NIRCam grism, NIRSpec BOTS, MIRI LRS; for
    NIRISS/SOSS, the last before ``extract_1d``).  So the background is removed and the
    spectra are re-registered on the 2-D frames before the static wavelength-dependent
    photometric calibration is applied.  The ``_calints`` product carries the trace
    (``trace_center``) and the ``tso_vectors`` that ``tso_tso3`` extracts along.
    """

    class_alias = "tso_spec2"

    step_defs = {
        **Spec2Pipeline.step_defs,
        "tso_background": Background2DStep,
        "tso_trace": TraceStep,
        "tso_jitter": JitterCorrectStep,
    }
    accepts = Accepts(
        "tso_spec2",
        ("cube", "slit"),
        exposure="spectroscopic",
        min_shape=(1, 1),
        reads_pixels=False,
        pipeline=True,
    )
    placements = (
        Placement("tso_background", host="barshadow"),
        Placement("tso_trace", host="barshadow"),
        Placement("tso_jitter", host="barshadow"),
    )
