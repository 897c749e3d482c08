"""tso_outlier and tso_jump vs jwst on detectors with IPC, snowballs and showers.

Data: ``simulate_tso`` with ``ipc=True`` (3 x 3 kernel, 0.6 % side coupling) and
``CosmicRays(rate, snowball_rate, shower_rate)``: single hits at 40x (SOSS 6x) JWST's rate,
about one snowball every two integrations in the crop (and, for MIRI, one shower per
integration), every pixel an event touches listed in the truth; 60 integrations x 4 groups,
every PSF family, breathing on for the non-default families.  Per cell:

* outliers (rateints): recall of hits >= 6 sigma of the pixel's ERR and false flags per
  pixel-integration (``score_outlier_flags``), tso_outlier vs jwst ``outlier_detection``;
* jumps (ramp, ``--jump``): recall of group-difference steps >= 6 sigma and false flags
  per pixel-group difference (``score_jump_flags``), tso_jump vs jwst ``jump`` (synthetic
  gain/readnoise references, default parameters).

Usage::

    python benchmarks/bench_events_matrix.py --modes NIS_SOSS NRS_BRIGHTOBJ --seeds 1 2 3
    python benchmarks/bench_events_matrix.py --jump --families default
"""

import argparse
import logging
import os
import tempfile
import warnings

import numpy as np

CROPS = {
    "NRC_TSGRISM": dict(subarray="SUBGRISM64", crop=(64, 512)),
    "NIS_SOSS": dict(crop=(128, 256)),
    "MIR_LRS-SLITLESS": dict(crop=(256, 72)),
    "NRS_BRIGHTOBJ": dict(crop=(32, 512)),
}
FAMILIES = ("default", "diffraction", "undersampled", "moffat")


def simulate(mode, seed, family, product):
    """One cell's exposure (see the module docstring)."""
    from tso_steps.simulate import CosmicRays, simulate_tso

    probe = simulate_tso(
        mode, nints=2, ngroups=4, seed=1, products=("rateints",), cosmic_rays=False, **CROPS[mode]
    )
    active = probe.truth.read_plan.read_times[-1]
    ny, nx = probe.rateints.data.shape[1:]
    per_integration = 1.0 / (ny * nx * active)
    events = CosmicRays(
        rate=3e-4 if mode == "NIS_SOSS" else 2e-3,
        snowball_rate=0.5 * per_integration,
        shower_rate=per_integration if mode.startswith("MIR") else 0.0,
    )
    return simulate_tso(
        mode,
        nints=60,
        ngroups=4,
        seed=seed,
        cosmic_rays=events,
        ipc=True,
        products=(product,),
        psf_family=family,
        breathing=family != "default",
        **CROPS[mode],
    )


def outlier_cell(mode, seed, family):
    from jwst.outlier_detection import OutlierDetectionStep

    from tso_steps import TSOOutlierStep
    from tso_steps.scoring import cosmic_ray_rate_effect, score_outlier_flags

    sim = simulate(mode, seed, family, "rateints")
    effect = cosmic_ray_rate_effect(sim.rateints.data.shape, sim.truth.cosmic_rays)
    noise = np.nanmedian(sim.rateints.err, axis=0)
    level = np.nanmedian(sim.rateints.data, axis=0)
    ours = TSOOutlierStep.call(sim.rateints)
    theirs = OutlierDetectionStep.call(sim.rateints)
    return [score_outlier_flags((m.dq & 16) > 0, effect, noise, level) for m in (ours, theirs)]


def jump_cell(mode, seed, family):
    from jwst.jump import JumpStep

    from tso_steps import TSOJumpStep
    from tso_steps.scoring import group_difference_noise, score_jump_flags
    from tso_steps.simulate.references import write_noise_references

    sim = simulate(mode, seed, family, "ramp")
    sigma = group_difference_noise(sim, nsample=8)
    ours = TSOJumpStep.call(sim.ramp)
    with tempfile.TemporaryDirectory() as folder:
        theirs = JumpStep.call(sim.ramp, **write_noise_references(sim.ramp, sim.truth, folder))
    return [score_jump_flags(m.groupdq, sim.truth.cosmic_rays, sigma) for m in (ours, theirs)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(CROPS))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--jump", action="store_true", help="tso_jump vs jwst jump instead")
    opts = parser.parse_args(argv)
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    if opts.jump and "CRDS_PATH" not in os.environ:
        from tso_steps.offline import offline_environment

        os.environ.update(offline_environment(tempfile.mkdtemp()))
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    cell = jump_cell if opts.jump else outlier_cell
    print(
        "| mode | family | seed | hits >= 6 sigma | recall ours | recall jwst"
        " | false flags ours | false flags jwst |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode in opts.modes:
        for family in opts.families:
            for seed in opts.seeds:
                ours, theirs = cell(mode, seed, family)
                print(
                    f"| {mode} | {family} | {seed} | {ours['n_hits']} | {ours['recall']:.4f} | "
                    f"{theirs['recall']:.4f} | {ours['fp_rate']:.1e} | {theirs['fp_rate']:.1e} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
