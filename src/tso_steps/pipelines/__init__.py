"""jwst's calwebb pipelines with tso-steps spliced in.

``tso_detector1``, ``tso_spec2``, ``tso_image2`` and ``tso_tso3`` run jwst's own pipelines with
our steps at the places described in :mod:`tso_steps.pipelines.splice` and on the
documentation page "Inside the calwebb pipelines".
"""

from tso_steps.pipelines.detector1 import TSODetector1Pipeline
from tso_steps.pipelines.image2 import TSOImage2Pipeline
from tso_steps.pipelines.spec2 import TSOSpec2Pipeline
from tso_steps.pipelines.splice import Placement, ProvenanceCarrier, TSOPipelineMixin
from tso_steps.pipelines.tso3 import TSOTso3Pipeline

__all__ = [
    "Placement",
    "ProvenanceCarrier",
    "TSODetector1Pipeline",
    "TSOImage2Pipeline",
    "TSOPipelineMixin",
    "TSOSpec2Pipeline",
    "TSOTso3Pipeline",
]
