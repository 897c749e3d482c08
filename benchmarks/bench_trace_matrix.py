"""tso_trace on the matrix modes x PSF families x breathing, against a simple baseline and the CRB.

Every cell simulates rateints with one of the profile families of
:mod:`tso_steps.simulate.psf_families` (drawn independently of tso_trace's profile model),
with or without PSF width breathing (2 % smooth FWHM drift plus a 0.5 % step at the tilt
event), 0.03 px cross-dispersion jitter plus a 0.02 px tilt, no cosmic rays, no 1/f.  Each
cell runs in its own process (:func:`measured.run_worker`).  Quality: RMS error of the
per-integration position (mean removed) against the injected cross-dispersion offset, in
units of the Cramer-Rao bound of that cell's true profile and noise
(:func:`~tso_steps.simulate.scoring.shift_cramer_rao`, averaged over every 10th
integration); the baseline is a flux-weighted centre per column
(:func:`~tso_steps.simulate.scoring.flux_weighted_trace_positions`).

Usage::

    python benchmarks/bench_trace_matrix.py [--nints 100] [--seeds 1 2]
"""

import argparse
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from measured import run_worker

HERE = Path(__file__).resolve().parent
CROPS = {
    "NRC_TSGRISM": (48, 256),
    "NIS_SOSS": (96, 256),
    "NRS_BRIGHTOBJ": (32, 256),
    "MIR_LRS-SLITLESS": (256, 48),
}
FAMILIES = ("default", "diffraction", "undersampled", "moffat")


def _worker(mode, family, breathing, seed, nints):
    from tso_steps.simulate import Jitter, simulate_tso
    from tso_steps.simulate.scoring import flux_weighted_trace_positions, shift_cramer_rao
    from tso_steps.trace import dispersion_axis, measure_trace, to_dispersion_last

    logging.disable(logging.INFO)
    axis = 1 if mode != "MIR_LRS-SLITLESS" else 0
    rms = (0.0, 0.03) if axis == 1 else (0.03, 0.0)
    tilt = (0.0, 0.02) if axis == 1 else (0.02, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso(
            mode,
            nints=nints,
            ngroups=3,
            seed=seed,
            crop=CROPS[mode],
            products=("rateints",),
            jitter=Jitter(rms=rms, tilt_integration=nints // 2, tilt=tilt),
            cosmic_rays=False,
            one_over_f=False,
            psf_family=family,
            breathing=breathing == "on",
        )
    ref, positions, _ = measure_trace(sim.rateints)
    truth = sim.truth.shift_cross_dispersion
    truth = truth - truth.mean()
    disp = dispersion_axis(sim.rateints)
    cube = to_dispersion_last(np.asarray(sim.rateints.data, float), disp)
    var = sim.rateints.var_poisson + sim.rateints.var_rnoise
    com = flux_weighted_trace_positions(
        cube, to_dispersion_last(np.asarray(var, float), disp), ref.center[0], ref.halfwidth[0]
    )
    column = 1 if sim.truth.dispersion_axis == 1 else 0
    sample = range(0, nints, 10)
    bounds = [shift_cramer_rao(sim.truth, sim.rateints, i, column) for i in sample]
    crb = np.sqrt(np.mean(np.square(bounds)))
    out = {
        "trace": float(np.sqrt(np.mean((positions.shift - positions.shift.mean() - truth) ** 2))),
        "com": float(np.sqrt(np.mean((com - com.mean() - truth) ** 2))),
        "crb": float(crb),
    }
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, family, breathing, seed, nints = args.worker
        _worker(mode, family, breathing, int(seed), int(nints))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in CROPS:
            for family in FAMILIES:
                for breathing in ("off", "on"):
                    cells = [
                        run_worker(__file__, [mode, family, breathing, s, args.nints], tmp)
                        for s in args.seeds
                    ]
                    ratio = [c["trace"] / c["crb"] for c in cells]
                    base = [c["com"] / c["crb"] for c in cells]
                    crb = np.mean([c["crb"] for c in cells])
                    rows.append((mode, family, breathing, ratio, base, crb))
                    print(
                        f"{mode:17s} {family:12s} {breathing:3s} tso_trace "
                        + " ".join(f"{r:.2f}" for r in ratio)
                        + "  centre "
                        + " ".join(f"{r:.2f}" for r in base)
                        + f"  CRB {crb:.5f} px",
                        flush=True,
                    )
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "| mode | PSF family | breathing | tso_trace / CRB | flux-weighted centre / CRB "
        f"| CRB (px) |  <- seeds {seeds}, {args.nints} integrations",
        "|---|---|---|---|---|---|",
    ]
    for mode, family, breathing, ratio, base, crb in rows:
        lines.append(
            f"| {mode} | {family} | {breathing} | "
            + " / ".join(f"{r:.2f}" for r in ratio)
            + " | "
            + " / ".join(f"{r:.2f}" for r in base)
            + f" | {crb:.5f} |"
        )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "trace_matrix.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
