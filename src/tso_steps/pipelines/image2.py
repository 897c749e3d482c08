"""``tso_image2``: calwebb_image2 with per-integration centroids."""

from jwst.pipeline import Image2Pipeline

from tso_steps.centroid.step import CentroidStep
from tso_steps.inputs import Accepts
from tso_steps.pipelines.splice import Placement, TSOPipelineMixin

__all__ = ["TSOImage2Pipeline"]


class TSOImage2Pipeline(TSOPipelineMixin, Image2Pipeline):
    """jwst's calwebb_image2 with ``tso_centroid`` after ``photom``.

    The ``_calints`` product carries the centroid and PSF-width ``tso_vectors`` that
    ``tso_tso3``'s moving aperture follows and that light-curve fits decorrelate against.
    """

    class_alias = "tso_image2"

    step_defs = {**Image2Pipeline.step_defs, "tso_centroid": CentroidStep}
    accepts = Accepts(
        "tso_image2",
        ("cube",),
        exposure="imaging",
        min_shape=(1, 1),
        reads_pixels=False,
        pipeline=True,
    )
    placements = (Placement("tso_centroid", host="photom"),)
