"""Per-pixel readout time stamps (``tso_pixel_timing``)."""

from tso_steps.timing.pixel_times import (
    bin_mid_times,
    extraction_bin_pixels,
    pixel_read_offsets,
    pixel_time_shift,
)

__all__ = ["bin_mid_times", "extraction_bin_pixels", "pixel_read_offsets", "pixel_time_shift"]
