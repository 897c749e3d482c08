"""tso_trace then tso_extract on a simulated NIRISS/SOSS SUBSTRIP256 rateints, by ``strun``.

Issue 15 asks for a full SOSS segment (537 integrations) through tso_trace + tso_extract in
under 3 minutes on this machine.  The simulator writes the rateints once; each step then runs
as ``strun`` in its own process (:func:`measured.run_command`: wall, CPU, peak RSS), the
extraction reading the trace product::

    python benchmarks/bench_soss_segment.py --nints 537
    python benchmarks/bench_soss_segment.py --nints 40      # a quick check
    python benchmarks/bench_soss_segment.py --workdir DIR --simulate-only   # simulate once,
    python benchmarks/bench_soss_segment.py --workdir DIR   # then time the steps on that file

The file sizes, step times and peak memory relative to the input file are printed as one
Markdown table row per step.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from measured import run_command
from tso_steps.offline import offline_environment


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=537, help="integrations (537: a segment)")
    parser.add_argument("--ngroups", type=int, default=9)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--workdir",
        help="keep the files here, and reuse a rateints simulated there before with the same "
        "--nints, --ngroups and --seed (default: a temporary folder, removed)",
    )
    parser.add_argument(
        "--simulate-only", action="store_true", help="write the rateints into --workdir and stop"
    )
    args = parser.parse_args(argv)
    if args.simulate_only and not args.workdir:
        parser.error("--simulate-only needs --workdir")

    from tso_steps.simulate import simulate_tso

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        where = contextlib.nullcontext(args.workdir)
    else:
        where = tempfile.TemporaryDirectory()
    with where as tmp:
        tmp = Path(tmp)
        rateints = tmp / f"soss_{args.nints}x{args.ngroups}_seed{args.seed}_rateints.fits"
        if rateints.exists():
            print(f"reusing {rateints}")
        else:
            start = time.perf_counter()
            sim = simulate_tso(
                "NIS_SOSS", args.nints, args.ngroups, seed=args.seed, products=("rateints",)
            )
            sim.rateints.save(rateints)
            del sim
            print(f"simulated and wrote {rateints.name} in {time.perf_counter() - start:.0f} s")
        if args.simulate_only:
            return
        env = offline_environment(tmp / "crds")
        strun = shutil.which("strun") or str(Path(sys.executable).with_name("strun"))
        rows = []
        traced = tmp / rateints.name.replace("_rateints.fits", "_trace.fits")
        inputs = {"tso_trace": rateints, "tso_extract": traced}
        for alias, infile in inputs.items():
            size_mb = infile.stat().st_size / 2**20
            m = run_command([strun, alias, infile, "--output_dir", tmp], env)
            rows.append(
                f"| {alias} | {args.nints} x 256 x 2048 | {size_mb:.0f} | "
                f"{m['process_seconds']:.0f} | {m['cpu_seconds']:.0f} | "
                f"{m['peak_rss_mb'] / size_mb:.2f} | {os.getloadavg()[0]:.1f} |"
            )
    print("| step | rateints | input MB | wall s | CPU s | peak RSS / input | load |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
