"""Scoring against a simulation's injected truth: the one place for it.

Used by the tests, the benchmarks and ``tso-steps demo``, and public so that users can score
their own reductions of simulated data the same way.  No step imports it: it is support for
judging the steps, not part of them.

* :mod:`tso_steps.scoring.detector`: jump and outlier flags, 1/f and background residuals;
* :mod:`tso_steps.scoring.positions`: trace and centroid shifts, Cramer-Rao bounds;
* :mod:`tso_steps.scoring.light_curves`: transit depths, extracted spectra, background levels;
* :mod:`tso_steps.scoring.demo` and :mod:`tso_steps.scoring.verdicts`: the demo's report.

Every public function is importable from ``tso_steps.scoring`` directly.
"""

from .detector import (
    background_noise_ratio,
    channel_sums,
    correlated_noise_ratio,
    cosmic_ray_rate_effect,
    depth_recovery,
    group_difference_noise,
    line_level_oracle,
    score_jump_flags,
    score_outlier_flags,
    truth_aperture,
)
from .light_curves import (
    TransitFit,
    channel_error_ratio,
    fit_transit_scale,
    ideal_level_residual,
    level_noise_floor,
    region_residual,
    true_profile_cube,
    white_light_scatter,
)
from .positions import (
    flux_weighted_trace_positions,
    pointing_cramer_rao,
    score_trace_shifts,
    shift_cramer_rao,
    simulate_trace_case,
)

__all__ = [
    "TransitFit",
    "background_noise_ratio",
    "channel_error_ratio",
    "channel_sums",
    "correlated_noise_ratio",
    "cosmic_ray_rate_effect",
    "depth_recovery",
    "fit_transit_scale",
    "flux_weighted_trace_positions",
    "group_difference_noise",
    "ideal_level_residual",
    "level_noise_floor",
    "line_level_oracle",
    "pointing_cramer_rao",
    "region_residual",
    "score_jump_flags",
    "score_outlier_flags",
    "score_trace_shifts",
    "shift_cramer_rao",
    "simulate_trace_case",
    "true_profile_cube",
    "truth_aperture",
    "white_light_scatter",
]
