"""Run one benchmark worker in its own process and measure it (shared by the bench scripts).

Each method of a benchmark runs as ``python bench_x.py --worker ...`` in a fresh process, so
its peak resident memory (``/usr/bin/time -v``, when present) and wall time are its own; the
worker prints one JSON line of results as its last line of output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tso_steps.offline import offline_environment

__all__ = ["peak_rss_mb", "run_worker"]


def run_worker(script, args, workdir):
    """Run ``python script --worker *args`` offline; return its JSON result plus measurements.

    Parameters
    ----------
    script : str
        The benchmark script (its ``__file__``).
    args : list of str
        Arguments after ``--worker``.
    workdir : str or `~pathlib.Path`
        Where the throwaway CRDS cache goes.

    Returns
    -------
    dict
        The worker's JSON result with ``process_seconds`` (wall) and ``peak_rss_mb`` (NaN
        without ``/usr/bin/time``).
    """
    cmd = [sys.executable, str(script), "--worker", *map(str, args)]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    env = offline_environment(Path(workdir) / "crds")
    start = time.perf_counter()
    proc = subprocess.run(timer + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed:\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["process_seconds"] = wall
    info["peak_rss_mb"] = int(rss.group(1)) / 1024 if rss else float("nan")
    return info


def peak_rss_mb():
    """Peak resident memory of this process so far (``VmHWM``), MB; NaN off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")
