"""tso_one_over_f methods over several seeds: white light and transit depth against the floor.

One realisation is not enough to rank methods whose white-light ratios differ by 10 %, nor
to see a depth bias of one sigma.  For every mode, 1/f spectrum and seed this simulates the
exposure of ``bench_one_over_f.py`` (same cases, spectra and scores) with that seed, runs
``tso_one_over_f`` with each method in this process and prints one JSON line per run, then
the means over seeds:

* ``white``: white-light noise ratio to the white floor (1 = floor);
* ``dpull``: white-light transit depth minus the floor data's, in units of its 1-sigma
  error; ``dppm`` the same in ppm (with its standard error over seeds);
* ``leak``: the regression of (white light of the corrected data - of the floor) on the
  transit shape, as a fraction of the depth (+: depth deepened; what the correction put in
  phase with the transit, whatever the fit of the light curve);
* ``cpu``: CPU seconds of the step (user + sys of this process).

Usage::

    python benchmarks/bench_one_over_f_seeds.py NRC_TSGRISM-1out --spectra sim a0.7+white \\
        --seeds 21 35 36 37 --methods auto gp
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict

import numpy as np

from bench_one_over_f import CASES, SPECTRA, _option, score, simulate_case


def transit_leak(data, ctx):
    """Fraction of the depth that ``data - floor`` carries in phase with the transit."""
    from tso_steps.scoring import channel_sums, truth_aperture

    axis, aperture = truth_aperture(ctx["truth"], data.shape[1:])
    white = [
        channel_sums(c, axis, aperture, None)[:, 0].astype(np.float64)
        for c in (data, ctx["floor"], ctx["noiseless"])
    ]
    flux = np.median(white[2])
    shape = 1 - white[2] / flux
    design = np.stack([np.ones_like(shape), shape], axis=1)
    coef = np.linalg.lstsq(design, white[0] - white[1], rcond=None)[0]
    return float(-coef[1] / flux)


def run(name, spectrum, seed, methods):
    from tso_steps.one_over_f.step import OneOverFStep

    sim, ctx = simulate_case(name, spectrum, seed)
    rows = []
    for method in methods:
        start = time.process_time()
        data = OneOverFStep(method=method).run(sim.rateints).data
        cpu = time.process_time() - start
        s = score(data, ctx)
        row = dict(mode=name, spectrum=spectrum, seed=seed, method=method, cpu=cpu)
        row.update({k: float(s[k]) for k in ("white", "ch16", "frame", "dpull")})
        row["dppm"] = float(s["dbias_ppm"])
        row["leak"] = transit_leak(data, ctx)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def summary(rows):
    """Means over seeds per (mode, spectrum, method), as a markdown table."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["mode"], r["spectrum"], r["method"])].append(r)
    lines = [
        "| mode | 1/f | method | seeds | white light | d(depth) sigma: mean (each) | "
        "d(depth) ppm: mean +- s.e. | leak, % of depth | cpu s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (mode, spectrum, method), rs in groups.items():
        pulls = np.array([r["dpull"] for r in rs])
        ppm = np.array([r["dppm"] for r in rs])
        err = ppm.std(ddof=1) / np.sqrt(ppm.size) if ppm.size > 1 else np.nan
        each = " ".join(f"{p:+.2f}" for p in pulls)
        lines.append(
            f"| {mode} | {spectrum} | {method} | {len(rs)} | "
            f"{np.mean([r['white'] for r in rs]):.3f} | {pulls.mean():+.2f} ({each}) | "
            f"{ppm.mean():+.0f} +- {err:.0f} | {100 * np.mean([r['leak'] for r in rs]):+.2f} | "
            f"{np.mean([r['cpu'] for r in rs]):.1f} |"
        )
    return "\n".join(lines)


def main(argv):
    spectra, argv = _option(argv, "--spectra", SPECTRA)
    methods, argv = _option(argv, "--methods", ("auto", "lines", "wiener", "gp"))
    seeds, argv = _option(argv, "--seeds", [str(s) for s in range(1000)])
    names = [a for a in argv if a in CASES] or ["NRC_TSGRISM-1out"]
    rows = []
    for name in names:
        for spectrum in spectra or ["sim"]:
            for seed in [int(s) for s in seeds or (21, 35, 36, 37)]:
                rows += run(name, spectrum, seed, methods or ("auto", "gp"))
    print(summary(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
