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

import importlib  # noqa: E402

#: Where each exported step lives.  A step is imported on first use (PEP 562), so
#: ``strun tso_outlier`` does not import every other step and what they need (photutils,
#: ...): that was about half the CPU of importing the package.
_STEP_MODULES = {
    "Background2DStep": "tso_steps.background.step",
    "CentroidStep": "tso_steps.centroid.step",
    "JitterCorrectStep": "tso_steps.jitter.step",
    "MovingApertureStep": "tso_steps.aperture.step",
    "OneOverFStep": "tso_steps.one_over_f.step",
    "OptimalExtractStep": "tso_steps.extract.step",
    "PixelTimingStep": "tso_steps.timing.step",
    "TSOJumpStep": "tso_steps.jump.step",
    "TSOOutlierStep": "tso_steps.outlier.step",
    "TraceStep": "tso_steps.trace.step",
}


def __getattr__(name):
    """Import an exported step class on first access."""
    module = _STEP_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_STEP_MODULES))


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
