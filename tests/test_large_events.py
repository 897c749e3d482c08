"""tso_jump and tso_outlier on detectors with inter-pixel capacitance, snowballs and showers.

The simulator couples every pixel to its neighbours (IPC) and adds snowballs (a flat core in
a halo drawn out to 0.5 DN) and, for MIRI, showers; the truth lists every pixel an event
touches.  Event rates are about fifty times JWST's so that every test sees a few hundred
events; jwst's own steps run on the same data as the baseline.
"""

import logging
import warnings

import numpy as np
import pytest
from jwst.outlier_detection import OutlierDetectionStep

from tso_steps import TSOJumpStep, TSOOutlierStep
from tso_steps.scoring import (
    cosmic_ray_rate_effect,
    group_difference_noise,
    score_jump_flags,
    score_outlier_flags,
)
from tso_steps.simulate import CosmicRays, simulate_tso

CROPS = {
    "NRC_TSGRISM": dict(subarray="SUBGRISM64", crop=(64, 512)),
    "NIS_SOSS": dict(crop=(128, 256)),
    "MIR_LRS-SLITLESS": dict(crop=(256, 72)),
    "NRS_BRIGHTOBJ": dict(crop=(32, 512)),
}


def _simulate(mode, product, seed=1, family="default"):
    """60 x 4 exposure with IPC and about one snowball (MIRI: and one shower) every two
    integrations in the crop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = simulate_tso(
            mode, nints=2, ngroups=4, seed=1, products=("rateints",), cosmic_rays=False,
            **CROPS[mode],
        )  # fmt: skip
        active = probe.truth.read_plan.read_times[-1]
        ny, nx = probe.rateints.data.shape[1:]
        per_integration = 1.0 / (ny * nx * active)
        events = CosmicRays(
            rate=3e-4 if mode == "NIS_SOSS" else 2e-3,
            snowball_rate=0.5 * per_integration,
            shower_rate=per_integration if mode.startswith("MIR") else 0.0,
        )
        return simulate_tso(
            mode, nints=60, ngroups=4, seed=seed, cosmic_rays=events, ipc=True,
            products=(product,), psf_family=family, breathing=family != "default",
            **CROPS[mode],
        )  # fmt: skip


@pytest.fixture(scope="module")
def soss_ramp():
    return _simulate("NIS_SOSS", "ramp")


def test_jump_flags_snowballs_without_flagging_the_frame(soss_ramp):
    sim = soss_ramp
    logging.disable(logging.INFO)
    try:
        result = TSOJumpStep.call(sim.ramp)
    finally:
        logging.disable(logging.NOTSET)
    score = score_jump_flags(
        result.groupdq, sim.truth.cosmic_rays, group_difference_noise(sim, nsample=8)
    )
    kinds = set(sim.truth.cosmic_rays["kind"])
    assert {"snowball", "ipc"} <= kinds and score["n_hits"] > 1000
    # measured (seed 1): recall 0.9997, false flags 1.4e-5 per pixel-group difference; before
    # the robust start of the frame fit, two snowballs in one integration threw its flux
    # scale off and 41 000 samples of that integration were flagged (7e-3)
    assert score["recall"] >= 0.99
    assert score["fp_rate"] <= 1e-4


@pytest.mark.parametrize(
    ("mode", "family"),
    [
        ("NRC_TSGRISM", "default"),
        ("MIR_LRS-SLITLESS", "default"),
        ("NRS_BRIGHTOBJ", "default"),
        ("NRS_BRIGHTOBJ", "diffraction"),
        ("NIS_SOSS", "diffraction"),
    ],
)
def test_outlier_recall_with_large_events_is_at_least_jwsts(mode, family):
    sim = _simulate(mode, "rateints", family=family)
    rate_effect = cosmic_ray_rate_effect(sim.rateints.data.shape, sim.truth.cosmic_rays)
    noise = np.nanmedian(sim.rateints.err, axis=0)
    level = np.nanmedian(sim.rateints.data, axis=0)
    logging.disable(logging.INFO)
    try:
        ours = TSOOutlierStep.call(sim.rateints)
        theirs = OutlierDetectionStep.call(sim.rateints)
    finally:
        logging.disable(logging.NOTSET)
    ours = score_outlier_flags((ours.dq & 16) > 0, rate_effect, noise, level)
    theirs = score_outlier_flags((theirs.dq & 16) > 0, rate_effect, noise, level)
    print(mode, family, ours, theirs)
    assert ours["n_hits"] > 1500
    # measured (seed 1), ours vs jwst: NRC_TSGRISM 0.9967 vs 0.9933, MIRI 0.9924 vs 0.9912,
    # NRS_BRIGHTOBJ 0.9904 vs 0.9898, SOSS (diffraction family, breathing) 0.9926 vs 0.9926;
    # false flags 2e-6 to 7e-6 (jwst 1e-6 to 2e-4).  Before this session's changes (a refit
    # from no motion term, event-proof line offsets, motion terms only where the motion
    # signal outweighs their cost): 0.979, 0.986, 0.926, 0.925.  Re-measured with event
    # offsets replaced only on short line segments (running-median spikes): see
    # docs/benchmarks.md, 'IPC, snowballs and showers'.  With flags grown into touching
    # samples beyond 3.5 sigma (neighbor_threshold) and frames whose shift is a spike
    # registered again (2026-12-08): 0.9991, 0.9971, 0.9931 (NRS diffraction 0.9973 vs
    # jwst 0.9916), 0.9977.
    assert ours["recall"] >= theirs["recall"]
    assert ours["recall"] >= 0.98
    assert ours["fp_rate"] <= 2e-5
