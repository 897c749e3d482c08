"""tso_trace on the matrix modes x PSF families x breathing, against a simple baseline and the CRB.

Every cell simulates rateints with one of the profile families of
:mod:`tso_steps.simulate.psf_families` (drawn independently of tso_trace's profile model),
with or without PSF width breathing (2 % smooth FWHM drift plus a 0.5 % step at the tilt
event), 0.03 px cross-dispersion jitter plus a 0.02 px tilt, no cosmic rays, no 1/f
(:func:`~tso_steps.scoring.simulate_trace_case`).  Each mode runs in its own
process (:func:`measured.run_worker`).  Quality: RMS error of the
per-integration position (mean removed) against the injected cross-dispersion offset, in
units of the Cramer-Rao bound of that cell's true profile and noise
(:func:`~tso_steps.scoring.shift_cramer_rao`, averaged over every 10th
integration); the baseline is a flux-weighted centre per column
(:func:`~tso_steps.scoring.flux_weighted_trace_positions`).

Usage::

    python benchmarks/bench_trace_matrix.py [--nints 60] [--seeds 1 2]
"""

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from measured import run_worker

HERE = Path(__file__).resolve().parent
CROPS = {
    "NRC_TSGRISM": (40, 128),
    "NIS_SOSS": (80, 128),
    "NRS_BRIGHTOBJ": (32, 128),
    "MIR_LRS-SLITLESS": (128, 40),
}
FAMILIES = ("default", "diffraction", "undersampled", "moffat")


def _worker(mode, seeds, nints):
    from tso_steps.scoring import score_trace_shifts, simulate_trace_case
    from tso_steps.trace import measure_trace

    logging.disable(logging.INFO)
    cells = []
    for family in FAMILIES:
        for breathing in (False, True):
            for seed in seeds:
                sim = simulate_trace_case(
                    mode, family, breathing, seed=seed, nints=nints, crop=CROPS[mode]
                )
                ref, positions, _ = measure_trace(sim.rateints)
                score = score_trace_shifts(sim, positions.shift, ref.center[0], ref.halfwidth[0])
                cells.append({"family": family, "breathing": breathing, "seed": seed, **score})
    print(json.dumps({"cells": cells}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, seeds, nints = args.worker
        _worker(mode, [int(x) for x in seeds.split(",")], int(nints))
        return
    rows = []
    seed_arg = ",".join(map(str, args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        for mode in CROPS:
            info = run_worker(__file__, [mode, seed_arg, args.nints], tmp)
            print(f"{mode}: {info['process_seconds']:.0f} s, {info['peak_rss_mb']:.0f} MB")
            for family in FAMILIES:
                for breathing in (False, True):
                    cells = [
                        c
                        for c in info["cells"]
                        if c["family"] == family and c["breathing"] == breathing
                    ]
                    ratio = [c["trace"] / c["crb"] for c in cells]
                    base = [c["com"] / c["crb"] for c in cells]
                    crb = float(np.mean([c["crb"] for c in cells]))
                    state = "on" if breathing else "off"
                    rows.append((mode, family, state, ratio, base, crb))
                    print(
                        f"{mode:17s} {family:12s} {state:3s} tso_trace "
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
