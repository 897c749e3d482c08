"""tso-steps: time-series (TSO) steps for the JWST calibration pipeline.

Every step is an ``stpipe`` Step registered under an alias starting with ``tso_``, so
``strun tso_pixel_timing file.fits``, ``PixelTimingStep.call(model)`` and ASDF parameter files
all work once the package is installed.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tso-steps")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from tso_steps.offline import default_disable_crds_steppars  # noqa: E402

# offline (no CRDS server, no cache) CRDS would end the process in Step.call / strun
default_disable_crds_steppars()

from tso_steps.aperture.step import MovingApertureStep  # noqa: E402
from tso_steps.background.step import Background2DStep  # noqa: E402
from tso_steps.centroid.step import CentroidStep  # noqa: E402
from tso_steps.extract.step import OptimalExtractStep  # noqa: E402
from tso_steps.jitter.step import JitterCorrectStep  # noqa: E402
from tso_steps.jump.step import TSOJumpStep  # noqa: E402
from tso_steps.one_over_f.step import OneOverFStep  # noqa: E402
from tso_steps.outlier.step import TSOOutlierStep  # noqa: E402
from tso_steps.timing.step import PixelTimingStep  # noqa: E402
from tso_steps.trace.step import TraceStep  # noqa: E402

__all__ = [
    "Background2DStep",
    "CentroidStep",
    "JitterCorrectStep",
    "MovingApertureStep",
    "OneOverFStep",
    "OptimalExtractStep",
    "PixelTimingStep",
    "TSOJumpStep",
    "TSOOutlierStep",
    "TraceStep",
    "__version__",
]
