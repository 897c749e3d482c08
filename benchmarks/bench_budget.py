"""Peak memory of tso_jump, tso_outlier and tso_one_over_f with and without ``memory_budget``.

The simulator writes one NIRCam grism ramp and one rateints file (SUBGRISM64, 64 x 2048,
4 outputs). Each run is a fresh subprocess that imports the step, calls it on the file name
(as ``strun`` does) and saves the product. This process reads the child's
``/proc/PID/status`` every 2 ms (from outside, so a child holding the GIL in numpy is still
sampled): the peak of its anonymous memory (``RssAnon``: private memory; the rest of the
resident set is file pages - of the mapped input or its scratch copy - which the kernel can
write back and drop) separately while the step runs and while the product is saved, and
the peak resident set ``VmHWM`` at the end of the step. The products with and without a
budget are compared (data, DQ) before a row is printed.

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
import time
from pathlib import Path

import numpy as np

STEPS = {
    "tso_jump": ("tso_steps.jump.step", "TSOJumpStep", "ramp", ("data", "groupdq")),
    "tso_outlier": ("tso_steps.outlier.step", "TSOOutlierStep", "rateints", ("data", "dq")),
    "tso_one_over_f": ("tso_steps.one_over_f.step", "OneOverFStep", "rateints", ("data",)),
}
POLL_SECONDS = 0.002


def _status(pid="self"):
    """``VmHWM`` and ``RssAnon`` of a process in MiB (empty once it has exited)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "RssAnon"):
                    fields[key] = int(value.split()[0]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def child(step, path, budget, out, phases):
    """Run one step in this process, marking its phases in the file ``phases``."""
    import importlib

    module, name, _, _ = STEPS[step]
    cls = getattr(importlib.import_module(module), name)
    Path(phases).write_text("step")  # python + jwst + tso_steps imported
    start = time.perf_counter()
    kwargs = {} if budget is None else {"memory_budget": budget}
    result = cls.call(path, **kwargs)
    wall = time.perf_counter() - start
    Path(phases).write_text("save")
    result.save(out)
    print(json.dumps({"wall": wall}))


def run(step, path, budget, out, env):
    """Run the child and sample its memory from here; returns the peaks (MiB) and wall."""
    phases = Path(f"{out}.phase")
    cmd = [sys.executable, __file__, "--child", step, str(path), str(budget), str(out), phases]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"imports": 0.0, "step": 0.0, "save": 0.0}
    phase, hwm_step = "imports", 0.0
    while proc.poll() is None:
        status = _status(proc.pid)
        if phases.exists():
            now = phases.read_text() or phase
            if now != phase and phase == "step":
                hwm_step = status.get("VmHWM", hwm_step)
            phase = now
        if "RssAnon" in status:
            key = "imports" if phase == "imports" else phase
            peak[key] = max(peak[key], status["RssAnon"])
        time.sleep(POLL_SECONDS)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{step} (budget {budget}) failed:\n{stderr[-3000:]}")
    phases.unlink(missing_ok=True)
    wall = json.loads(stdout.strip().splitlines()[-1])["wall"]
    return {**peak, "vmhwm_step": hwm_step, "wall": wall}


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


def identical(a, b, names):
    from stdatamodels.jwst import datamodels

    with datamodels.open(a) as x, datamodels.open(b) as y:
        return all(np.array_equal(getattr(x, n), getattr(y, n), equal_nan=True) for n in names)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, step, path, budget, out, phases = sys.argv
        return child(step, path, None if budget == "None" else float(budget), out, phases)
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
              f"NRC_TSGRISM SUBGRISM64 {args.nints} x {args.ngroups}; MiB")  # fmt: skip
        print("| step | input | file | memory_budget MB | peak RSS, step | peak anonymous, step "
              "| peak anonymous, save | imports | wall s | identical |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
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
                print(f"| {step} | {kind} | {size:.0f} | {budget or 'None'} | "
                      f"{r['vmhwm_step']:.0f} | {r['step']:.0f} | {r['save']:.0f} | "
                      f"{r['imports']:.0f} | {r['wall']:.1f} | {same} |", flush=True)  # fmt: skip
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
