"""Benchmark tso_jump against jwst's JumpStep on the same simulated NIRCam grism ramps.

For each run the simulator writes one ramp file; ``strun tso_jump`` and ``strun jump``
(given synthetic gain and CDS read-noise references built with stdatamodels, as
override_gain / override_readnoise) each run on it in their own subprocess under
``/usr/bin/time -v`` (peak RSS and wall time of the whole process). Quality is scored
against the simulator's injected cosmic rays:

* recall: fraction of hits of at least 6 sigma of the group-difference noise (sigma from
  the simulator's noiseless rate, gain and white frame noise) whose group is flagged;
* false positives per tested pixel-group: flags on samples without an injected hit, all
  flags and, separately, excluding the 8 pixels around injected hits (the simulator's hits
  are single pixels, so neighbour flags around a real hit count as false here).

Usage::

    python benchmarks/bench_jump.py                # SUBGRISM64 at 50 and 150 integrations
    python benchmarks/bench_jump.py --full         # also SUBGRISM256 100 x 5 (memory/time)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from stdatamodels.jwst import datamodels

from measured import run_command
from tso_steps.offline import offline_environment
from tso_steps.scoring import group_difference_noise, score_jump_flags
from tso_steps.simulate import simulate_tso
from tso_steps.simulate.references import write_noise_references

JUMP_DET = 4
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _crds_cache(root):
    return offline_environment(root / "crds")


def _references(ramp, truth, root):
    """Synthetic GAIN and READNOISE (CDS) references matching the ramp's subarray."""
    overrides = write_noise_references(ramp, truth, root)
    return {
        "gain": Path(overrides["override_gain"]),
        "readnoise": Path(overrides["override_readnoise"]),
    }


def _run(cmd, env, log_path):
    """Run a command measured (:func:`measured.run_command`); return (wall s, peak RSS bytes)."""
    info = run_command(cmd, env, log_path)
    return info["process_seconds"], info["peak_rss_mb"] * 2**20


def _noise_sigma(sim):
    return group_difference_noise(sim)


def score(groupdq, cosmic_rays, sigma, min_sigma=6.0):
    """Recall of >= min_sigma hits and false-positive rates per pixel-group."""
    return score_jump_flags(groupdq, cosmic_rays, sigma, min_sigma)


def bench_case(label, sim, root, env, jwst=True, repeat=1):
    tag = label.replace(" ", "_")
    ramp_path = root / f"{tag}_ramp.fits"
    sim.ramp.save(ramp_path)
    size = ramp_path.stat().st_size
    refs = _references(sim.ramp, sim.truth, root)
    sigma = _noise_sigma(sim)
    rows = {}
    # the class path works before and after the lead registers the alias
    runs = {"tso_jump": ["tso_steps.jump.step.TSOJumpStep", str(ramp_path)]}
    if jwst:
        runs["jwst jump"] = [
            "jump",
            str(ramp_path),
            f"--override_gain={refs['gain']}",
            f"--override_readnoise={refs['readnoise']}",
        ]
    for name, args in runs.items():
        stem = f"{tag}_{name.replace(' ', '_')}"
        # stpipe appends the step's suffix to output_file: find what it wrote
        cmd = [str(BIN / "strun"), *args, f"--output_dir={root}", f"--output_file={stem}"]
        # best-of-N wall time (the machine may be shared); peak RSS is the same every run
        runs_measured = [_run(cmd, env, root / f"{stem}.log") for _ in range(repeat)]
        wall = min(w for w, _ in runs_measured)
        rss = max(r for _, r in runs_measured)
        out = next(root.glob(f"{stem}*.fits"))
        with datamodels.RampModel(out) as result:
            metrics = score(result.groupdq, sim.truth.cosmic_rays, sigma)
        metrics.update(wall=wall, rss=rss, rss_ratio=rss / size)
        rows[name] = metrics
        print(label, name, metrics, flush=True)
        out.unlink()
    ramp_path.unlink()
    return size, rows


def _table(cases):
    lines = [
        "| case | file MB | step | hits >= 6 sigma | recall | FP / pixel-group | isolated FP "
        "| wall s | peak RSS MB | RSS / file |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = [
        "",
        "| case | recall ratio | FP ratio | isolated FP ratio | time ratio | RSS ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, (size, rows) in cases.items():
        for name, m in rows.items():
            lines.append(
                f"| {label} | {size / 1e6:.0f} | {name} | {m['n_hits']} | {m['recall']:.4f} | "
                f"{m['fp_rate']:.2e} | {m['fp_isolated']:.2e} | {m['wall']:.1f} | "
                f"{m['rss'] / 1e6:.0f} | {m['rss_ratio']:.2f} |"
            )
        if "jwst jump" in rows:
            a, b = rows["tso_jump"], rows["jwst jump"]

            def ratio(u, v):
                return f"{u / v:.2f}" if v else "n/a"

            ratios.append(
                f"| {label} | {ratio(a['recall'], b['recall'])} | "
                f"{ratio(a['fp_rate'], b['fp_rate'])} | "
                f"{ratio(a['fp_isolated'], b['fp_isolated'])} | {ratio(a['wall'], b['wall'])} | "
                f"{ratio(a['rss'], b['rss'])} |"
            )
    return "\n".join(lines + ratios) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, nargs="*", default=[50, 150])
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--cr-rate", type=float, default=5e-4, help="hits / pixel / s")
    parser.add_argument("--full", action="store_true", help="add SUBGRISM256 100 x 5")
    parser.add_argument("--repeat", type=int, default=2, help="runs per step (best wall time)")
    parser.add_argument("--out", default=str(HERE / "results" / "jump.md"))
    args = parser.parse_args(argv)
    cases = {}
    with tempfile.TemporaryDirectory(prefix="bench_jump_") as tmp:
        root = Path(tmp)
        env = _crds_cache(root)
        for nints in args.nints:
            sim = simulate_tso(
                "NRC_TSGRISM",
                nints=nints,
                ngroups=args.ngroups,
                subarray="SUBGRISM64",
                seed=nints,
                cosmic_rays=args.cr_rate,
                products=("ramp",),
            )
            label = f"SUBGRISM64 {nints}x{args.ngroups}"
            cases[label] = bench_case(label, sim, root, env, repeat=args.repeat)
            del sim
        if args.full:
            sim = simulate_tso(
                "NRC_TSGRISM",
                nints=100,
                ngroups=5,
                subarray="SUBGRISM256",
                seed=7,
                cosmic_rays=args.cr_rate,
                products=("ramp",),
            )
            cases["SUBGRISM256 100x5"] = bench_case(
                "SUBGRISM256 100x5", sim, root, env, repeat=args.repeat
            )
            del sim
    text = (
        "# tso_jump vs jwst jump (NIRCam grism, simulated)\n\n"
        f"Simulator: tso_steps.simulate, NRC_TSGRISM F322W2, 4 outputs, {args.ngroups} groups, "
        f"transit, 0.02 px jitter, 1/f noise, cosmic rays {args.cr_rate:g} /pixel/s "
        "(log-uniform 100-5000 DN, single pixels). Both steps run by `strun` in a subprocess "
        "under `/usr/bin/time -v` (wall time and peak RSS of the whole process, imports "
        f"included; best wall time of {args.repeat} runs). jwst gets synthetic GAIN/READNOISE "
        "references (true gain, CDS read noise). "
        f"Machine: {os.cpu_count()} CPUs.\n\n" + _table(cases)
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
