"""Simulated JWST time-series (TSO) exposures with known truth.

``simulate_tso`` produces an uncal-like :class:`~stdatamodels.jwst.datamodels.RampModel`, a
rateints-like :class:`~stdatamodels.jwst.datamodels.CubeModel` and a :class:`SimulationTruth`
for NIRCam grism and imaging TSO, NIRISS/SOSS, NIRSpec BOTS and MIRI LRS slitless.  Every
effect (transit, jitter, cosmic rays with snowballs and showers, 1/f and amplifier offsets,
background, photon and read noise, saturation, inter-pixel capacitance) can be switched off
or given its own amplitude, and is returned as truth::

    from tso_steps.simulate import simulate_tso

    sim = simulate_tso("NRC_TSGRISM", nints=50, ngroups=5, crop=(32, 256), seed=1)
    sim.ramp, sim.rateints, sim.truth.light_curve, sim.truth.cosmic_rays
"""

from .core import SimulationResult, simulate_tso
from .effects import Background, CosmicRays, DetectorNoise, Ipc, Jitter
from .models import BARYCENTRIC_CORRECTION, TT_MINUS_UTC, int_times_table
from .modes import MODES, READOUT_PATTERNS, get_mode
from .ramp import ReadPlan
from .specs import ModeSpec
from .transit import (
    TransitParameters,
    occulted_fraction,
    transit_light_curve,
    transmission_spectrum,
)
from .truth import SimulationTruth

__all__ = [
    "BARYCENTRIC_CORRECTION",
    "MODES",
    "READOUT_PATTERNS",
    "TT_MINUS_UTC",
    "Background",
    "CosmicRays",
    "DetectorNoise",
    "Ipc",
    "Jitter",
    "ModeSpec",
    "ReadPlan",
    "SimulationResult",
    "SimulationTruth",
    "TransitParameters",
    "get_mode",
    "int_times_table",
    "occulted_fraction",
    "simulate_tso",
    "transit_light_curve",
    "transmission_spectrum",
]
