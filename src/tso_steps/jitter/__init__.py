"""Jitter correction before photom (``tso_jitter``): measure and undo per-integration shifts."""

from tso_steps.jitter.align import (
    Alignment,
    AlignmentOptions,
    measure_alignment,
    realign,
    realign_dq,
)
from tso_steps.jitter.resample import shift_array, shift_dq, shift_kernel
from tso_steps.jitter.step import JitterCorrectStep

__all__ = [
    "Alignment",
    "AlignmentOptions",
    "JitterCorrectStep",
    "measure_alignment",
    "realign",
    "realign_dq",
    "shift_array",
    "shift_dq",
    "shift_kernel",
]
