"""1/f and pre-amplifier offset correction from unilluminated pixels (``tso_one_over_f``)."""

from tso_steps.one_over_f.correct import OneOverFOptions, clean_cube, clean_ramp, dark_shortage
from tso_steps.one_over_f.scene import signal_image
from tso_steps.one_over_f.stripes import fit_stripes, stripe_image

__all__ = [
    "OneOverFOptions",
    "clean_cube",
    "clean_ramp",
    "dark_shortage",
    "fit_stripes",
    "signal_image",
    "stripe_image",
]
