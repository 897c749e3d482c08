"""Throughput of ``tso-steps batch`` (1 and 2 dask workers) against a serial ``strun`` loop.

The simulator writes ``--files`` single-segment NIRCam grism ramps (SUBGRISM64, 4 outputs,
different seeds). Each method runs as one command in its own subprocess, timed from start
to end (imports, cluster start-up and FITS I/O included):

* ``strun loop``: ``strun tso_jump FILE --output_dir DIR`` once per file, one after another;
* ``batch w1`` / ``batch w2``: ``tso-steps batch tso_jump FILE... --workers N``.

The three methods run one after the other on the same files in one invocation. The batch
products are checked against the strun products (``groupdq`` and ``data`` must be
identical) before the rows are printed. Throughput is segments per minute of wall time. The
rows are printed in the format of the table in ``docs/benchmarks.md`` ("tso-steps batch:
throughput against a serial strun loop"), labelled with ``--label`` (default: the start
time in UTC), with the 1-minute load average when each method started: on a loaded
machine a second worker has no free core, so read the rows with the load.

Usage::

    python benchmarks/bench_batch.py                 # 6 files of 30 integrations x 5 groups
    python benchmarks/bench_batch.py --files 8 --nints 50 --label "idle, 2 cores"
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from measured import run_command
from tso_steps.offline import offline_environment
from tso_steps.simulate import simulate_tso


def simulate_files(root, count, nints, ngroups):
    paths = []
    for index in range(count):
        sim = simulate_tso(
            "NRC_TSGRISM", nints=nints, ngroups=ngroups, seed=100 + index,
            subarray="SUBGRISM64", products=("ramp",),
        )  # fmt: skip
        name = f"jw09999001001_01101_{index + 1:05d}-seg001_nrcalong_uncal.fits"
        sim.ramp.meta.filename = name
        sim.ramp.save(root / name)
        paths.append(root / name)
    return paths


def timed(cmd, env):
    """Wall seconds of one command (:func:`measured.run_command`)."""
    return run_command(cmd, env)["process_seconds"]


def strun_loop(paths, out, env):
    strun = shutil.which("strun") or "strun"
    return sum(timed([strun, "tso_jump", str(path), f"--output_dir={out}"], env) for path in paths)


def batch(paths, out, workers, env):
    cmd = [sys.executable, "-m", "tso_steps.cli", "batch", "tso_jump", *map(str, paths)]
    return timed([*cmd, "--output-dir", str(out), "--workers", str(workers), "--quiet"], env)


def same_products(reference, other):
    names = sorted(p.name for p in reference.glob("*_jump.fits"))
    if names != sorted(p.name for p in other.glob("*_jump.fits")):
        return False
    for name in names:
        with datamodels.open(reference / name) as a, datamodels.open(other / name) as b:
            if not (np.array_equal(a.groupdq, b.groupdq) and np.array_equal(a.data, b.data)):
                return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--nints", type=int, default=30)
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--label", default=None, help="run label of the rows (default: UTC time)")
    args = parser.parse_args()
    label = args.label or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        env = {**offline_environment(root / "crds"), "STPIPE_DISABLE_CRDS_STEPPARS": "true"}
        paths = simulate_files(root, args.files, args.nints, args.ngroups)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        load = os.getloadavg()[0]
        rows = [("strun loop", 1, strun_loop(paths, root / "strun", env), load)]
        for workers in (1, 2):
            out = root / f"batch{workers}"
            load = os.getloadavg()[0]
            rows.append(("batch", workers, batch(paths, out, workers, env), load))
            if not same_products(root / "strun", out):
                raise RuntimeError(f"batch with {workers} worker(s): products differ from strun's")
        print(
            f"{args.files} files of NRC_TSGRISM SUBGRISM64 {args.nints} x {args.ngroups} "
            f"({size:.0f} MB each), step tso_jump; batch products identical to strun: yes; "
            f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
            "cores"
        )
        print(
            "| run | method | workers | load at start | wall s | segments / min "
            "| speed-up vs strun loop |"
        )
        print("|---|---|---|---|---|---|---|")
        base = rows[0][2]
        for index, (name, workers, wall, start_load) in enumerate(rows):
            rate = 60.0 * args.files / wall
            print(
                f"| {label if index == 0 else ''} | {name} | {workers} | {start_load:.1f} "
                f"| {wall:.1f} | {rate:.1f} | {base / wall:.2f} |"
            )


if __name__ == "__main__":
    main()
