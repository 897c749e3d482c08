"""Peak memory of tso_jump, tso_outlier and tso_one_over_f with and without ``memory_budget``.

The simulator writes one NIRCam grism ramp and one rateints file (SUBGRISM64, 64 x 2048,
4 outputs). Each run is a fresh subprocess that imports the step, calls it on the file name
(as ``strun`` does) and saves the product; a thread samples ``/proc/self/status`` every
10 ms for the peak resident set (``VmHWM``) and the peak of its anonymous part
(``RssAnon``: private memory; the rest of the resident set is pages of the memory-mapped
input, which the kernel can drop and reread). The products with and without a budget are
compared (data, DQ) before a row is printed.

Usage::

    python benchmarks/bench_budget.py                      # 60 integrations x 5 groups
    python benchmarks/bench_budget.py --nints 100 --budget 40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STEPS = {
    "tso_jump": ("tso_steps.jump.step", "TSOJumpStep", "ramp", ("data", "groupdq")),
    "tso_outlier": ("tso_steps.outlier.step", "TSOOutlierStep", "rateints", ("data", "dq")),
    "tso_one_over_f": ("tso_steps.one_over_f.step", "OneOverFStep", "rateints", ("data",)),
}


def _status():
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon"):
                fields[key] = int(value.split()[0]) / 1024.0  # MB (of 2**20 bytes)
    return fields


def child(step, path, budget, out):
    """Run one step in this process; print its peak memory as JSON."""
    import importlib

    module, name, _, _ = STEPS[step]
    cls = getattr(importlib.import_module(module), name)
    peak = {"RssAnon": 0.0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["RssAnon"] = max(peak["RssAnon"], _status()["RssAnon"])
            time.sleep(0.01)

    baseline = _status()["RssAnon"]  # python + jwst + tso_steps imported
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    kwargs = {} if budget is None else {"memory_budget": budget}
    result = cls.call(path, **kwargs)
    result.save(out)
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    status = _status()
    peak_anon = max(peak["RssAnon"], status["RssAnon"])
    row = {"baseline_anon": baseline, "peak_anon": peak_anon, "vmhwm": status["VmHWM"]}
    print(json.dumps({**row, "wall": wall}))


def simulate(root, nints, ngroups):
    from tso_steps.simulate import Jitter, simulate_tso

    sim = simulate_tso(
        "NRC_TSGRISM", nints=nints, ngroups=ngroups, seed=21, cosmic_rays=1e-3,
        subarray="SUBGRISM64", jitter=Jitter(rms=0.03), products=("ramp", "rateints"),
    )  # fmt: skip
    paths = {}
    for kind in ("ramp", "rateints"):
        paths[kind] = root / f"jw09999001001_01101_00001-seg001_nrcalong_{kind}.fits"
        getattr(sim, kind).save(paths[kind])
    return paths


def run(step, path, budget, out, env):
    cmd = [sys.executable, __file__, "--child", step, str(path), str(budget), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{step} (budget {budget}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def identical(a, b, names):
    from stdatamodels.jwst import datamodels

    with datamodels.open(a) as x, datamodels.open(b) as y:
        return all(np.array_equal(getattr(x, n), getattr(y, n), equal_nan=True) for n in names)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, step, path, budget, out = sys.argv
        return child(step, path, None if budget == "None" else float(budget), out)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=60)
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--budget", type=float, default=50.0, help="MB")
    parser.add_argument("--steps", nargs="+", default=list(STEPS))
    args = parser.parse_args()
    from tso_steps.offline import offline_environment

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        env = {**offline_environment(root / "crds"), "STPIPE_DISABLE_CRDS_STEPPARS": "true"}
        paths = simulate(root, args.nints, args.ngroups)
        load = os.getloadavg()[0]
        print(f"load average (1 min) at the start: {load:.1f} on {os.cpu_count()} cores; "
              f"NRC_TSGRISM SUBGRISM64 {args.nints} x {args.ngroups}")  # fmt: skip
        print("| step | input | file MB | memory_budget MB | peak RSS MB | peak anonymous MB "
              "| of which imports | wall s | identical |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for step in args.steps:
            kind, names = STEPS[step][2], STEPS[step][3]
            path = paths[kind]
            size = path.stat().st_size / 2**20
            outs = {}
            for budget in (None, args.budget):
                outs[budget] = root / f"{step}_{budget}.fits"
                r = run(step, path, budget, outs[budget], env)
                same = "-" if budget is None else (
                    "yes" if identical(outs[None], outs[budget], names) else "NO")  # fmt: skip
                print(f"| {step} | {kind} | {size:.0f} | {budget or 'None'} | {r['vmhwm']:.0f} "
                      f"| {r['peak_anon']:.0f} | {r['baseline_anon']:.0f} | {r['wall']:.1f} "
                      f"| {same} |", flush=True)  # fmt: skip
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
