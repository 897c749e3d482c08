"""``tso_detector1``: calwebb_detector1 with tso-steps' group-level 1/f and jump detection."""

from jwst.pipeline import Detector1Pipeline

from tso_steps.inputs import Accepts
from tso_steps.jump.step import TSOJumpStep
from tso_steps.one_over_f.step import OneOverFStep
from tso_steps.pipelines.entrance import NonFiniteFlagger
from tso_steps.pipelines.splice import Placement, TSOPipelineMixin

__all__ = ["TSODetector1Pipeline"]


class TSODetector1Pipeline(TSOPipelineMixin, Detector1Pipeline):
    """jwst's calwebb_detector1 with ``tso_one_over_f`` and ``tso_jump`` at group level.

    ``tso_one_over_f`` runs just before the jump stage (after the dark, so 1/f stripes
    do not look like jumps); ``tso_jump`` replaces jwst's ``jump``, which is skipped by default
    (``--steps.jump.skip=false`` runs both; their flags are ORed).  Every other step, parameter and
    product is jwst's: ``strun tso_detector1 jw..._uncal.fits`` writes ``_rate`` and
    ``_rateints``, with our ``meta.cal_step`` entries and ``tso_vectors`` restored on both.
    NaN and inf ramp samples are flagged DO_NOT_USE before ``ramp_fit`` (which would
    otherwise give a pixel NaN in every group a rate of 0).
    """

    class_alias = "tso_detector1"

    step_defs = {
        **Detector1Pipeline.step_defs,
        "tso_one_over_f": OneOverFStep,
        "tso_jump": TSOJumpStep,
    }
    placements = (
        Placement("tso_one_over_f", host="jump", when="pre"),
        Placement("tso_jump", host="jump", when="post", replaces=True),
    )
    accepts = Accepts(
        "tso_detector1", ("ramp", "uncal"), min_shape=(1, 1), reads_pixels=False, pipeline=True
    )

    def internal_hooks(self):
        """NaN and inf ramp samples flagged DO_NOT_USE just before ramp fitting."""
        return [("ramp_fit", "pre", NonFiniteFlagger(self.class_alias))]
