"""The timing harness every benchmark uses: run a method in its own process and measure it.

Each method of a benchmark runs as ``python bench_x.py --worker ...`` (:func:`run_worker`) or
as a command such as ``strun`` (:func:`run_command`) in a fresh process, so its peak resident
memory (``/usr/bin/time -v``, when present), CPU and wall time are its own; a worker prints
one JSON line of results as its last line of output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tso_steps.offline import offline_environment

__all__ = ["peak_rss_mb", "run_command", "run_worker"]


def run_command(cmd, env, log_path=None):
    """Run ``cmd`` in its own process and measure it.

    Parameters
    ----------
    cmd : list of str
        The command.
    env : dict
        Its environment (e.g. :func:`tso_steps.offline.offline_environment`).
    log_path : str or `~pathlib.Path`, optional
        Where its standard output and error go (default: kept in memory only).

    Returns
    -------
    dict
        ``process_seconds`` (wall), ``cpu_seconds`` (user + system) and ``peak_rss_mb``
        (both NaN without ``/usr/bin/time``), and ``stdout`` / ``stderr`` text.

    Raises
    ------
    RuntimeError
        When the command fails (with the end of its error output).
    """
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    start = time.perf_counter()
    proc = subprocess.run(timer + list(map(str, cmd)), capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if log_path is not None:
        Path(log_path).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} failed:\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = [
        re.search(rf"{kind} time \(seconds\): ([\d.]+)", proc.stderr) for kind in ("User", "System")
    ]
    return {
        "process_seconds": wall,
        "cpu_seconds": sum(float(m.group(1)) for m in cpu) if all(cpu) else float("nan"),
        "peak_rss_mb": int(rss.group(1)) / 1024 if rss else float("nan"),
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }


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
        The worker's JSON result with ``process_seconds`` (wall), ``cpu_seconds`` and
        ``peak_rss_mb`` (NaN without ``/usr/bin/time``).
    """
    cmd = [sys.executable, str(script), "--worker", *map(str, args)]
    measured = run_command(cmd, offline_environment(Path(workdir) / "crds"))
    info = json.loads(measured["stdout"].strip().splitlines()[-1])
    info.update({key: measured[key] for key in ("process_seconds", "cpu_seconds", "peak_rss_mb")})
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
