"""tso_trace reference traces on real NIRISS/SOSS frames against pastasoss.

Frames: tests/data/real/ (see its PROVENANCE.md).  The program 1512 frame becomes a NIS_SOSS
CubeModel with a few integrations of added noise (tests/real_frames.py); each method runs in
its own process (benchmarks/measured.py).  Differences are ``trace_center - pastasoss`` at the
header PWCPOS over the columns where the order is traced; "offset" is their median and
"shape rms" their rms about it; "columns" is the median of the per-column centres (the data
alone, before a shape model is fitted to them) minus pastasoss.

    python benchmarks/bench_real_trace.py [--seeds 0 11]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

METHODS = {
    "pastasoss prior (default)": {},
    "penalised spline (soss_prior=False)": {"soss_prior": False},
    "global cubic (degree=3)": {"soss_prior": False, "degree": 3},
}


def _worker(method, seed):
    from measured import peak_rss_mb
    from real_frames import SOSS_PWCPOS, soss_cube
    from tso_steps.trace import measure_trace
    from tso_steps.trace.soss_prior import soss_prior_centres

    cube = soss_cube(nints=4, seed=seed)
    start = time.perf_counter()
    ref, _, _ = measure_trace(cube, **METHODS[method])
    wall = time.perf_counter() - start
    out = {"wall": wall, "rss": peak_rss_mb(), "orders": []}
    for k in range(2):
        model = soss_prior_centres(SOSS_PWCPOS, k + 1, ref.center.shape[1])
        d = ref.center[k] - model
        ok = np.flatnonzero(np.isfinite(d))
        d = d[ok]
        columns = ref.column_center[k] - model
        out["orders"].append(
            {
                "cols": f"{ok.min()}-{ok.max()}",
                "rms": float(np.sqrt(np.mean(d**2))),
                "offset": float(np.median(d)),
                "shape": float(np.sqrt(np.mean((d - np.median(d)) ** 2))),
                "max": float(np.abs(d).max()),
                "columns": float(np.nanmedian(columns)),
            }
        )
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 11])
    parser.add_argument("--worker", nargs=2)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], int(args.worker[1]))
        return
    from measured import run_worker

    lines = [
        "| method | seed | order | columns | rms (px) | offset (px) | shape rms (px) "
        "| max (px) | per-column centres (px) | wall (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            for seed in args.seeds:
                res = run_worker(__file__, [method, seed], tmp)
                for k, o in enumerate(res["orders"]):
                    lines.append(
                        f"| {method} | {seed} | {k + 1} | {o['cols']} | {o['rms']:.3f} | "
                        f"{o['offset']:+.3f} | {o['shape']:.3f} | {o['max']:.2f} | "
                        f"{o['columns']:+.3f} | {res['wall']:.1f} | {res['rss']:.0f} |"
                    )
                print(lines[-2], lines[-1], sep="\n", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "real_trace.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
