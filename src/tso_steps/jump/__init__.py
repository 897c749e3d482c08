"""Jump detection from the time series of group differences (``tso_jump``)."""

from tso_steps.jump.detect import JumpResult, detect_jumps
from tso_steps.jump.events import expand_events

__all__ = ["JumpResult", "detect_jumps", "expand_events"]
