"""Per-integration spectral tracing (``tso_trace``) and the dispersion-axis table."""

from tso_steps.trace.adapter import measure_trace
from tso_steps.trace.geometry import (
    DISPERSION_AXIS,
    ImagingExposureError,
    dispersion_axis,
    expected_orders,
    to_dispersion_last,
)
from tso_steps.trace.positions import TracePositions, integration_positions
from tso_steps.trace.reference import ReferenceTrace, reference_trace
from tso_steps.trace.step import TraceStep
from tso_steps.trace.tracing import NoTraceError, TraceOptions, trace_cube

__all__ = [
    "DISPERSION_AXIS",
    "ImagingExposureError",
    "NoTraceError",
    "ReferenceTrace",
    "TracePositions",
    "TraceOptions",
    "TraceStep",
    "dispersion_axis",
    "expected_orders",
    "integration_positions",
    "measure_trace",
    "reference_trace",
    "to_dispersion_last",
    "trace_cube",
]
