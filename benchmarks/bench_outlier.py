"""Benchmark tso_outlier against jwst's OutlierDetectionStep (mode 'tso') on simulated data.

Both steps run on the SAME simulated rateints file, each in its own subprocess (open the
file, run the step, save the result, as a pipeline would), so wall time and peak RSS are
measured separately.  Quality is scored against the simulator's cosmic-ray truth:

* recall: fraction of hits whose rate-level effect is >= 6 sigma of the pixel's noise (the
  median ERR of the pixel) that carry the OUTLIER flag;
* false positives: flagged pixel-integrations without any hit, per pixel-integration, and
  how many of them are on source pixels (median rate above 10 sigma: only the transit or the
  jitter touched them).

jwst 3.0 offline: ``strun outlier_detection x_rateints.fits`` is not used; the jwst step is
called from Python on the opened CubeModel (``OutlierDetectionStep.call(model)``), which
selects mode 'tso' itself for a TSO exposure (rolling window 25, snr 5, the defaults).

Usage::

    python benchmarks/bench_outlier.py            # default sizes (a few minutes)
    python benchmarks/bench_outlier.py --nints 100 --grism-rows 32   # quicker
    python benchmarks/bench_outlier.py --modes NIS_SOSS --nints 150  # SOSS SUBSTRIP256
"""

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from measured import peak_rss_mb, run_worker

HERE = Path(__file__).resolve().parent
OUTLIER = 16


def _child(method, path, out_path):
    """Run one step on one file in this process and print timing and memory as JSON."""
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    import logging

    from stdatamodels.jwst import datamodels

    logging.disable(logging.INFO)
    start = time.perf_counter()
    if method == "jwst":
        from jwst.outlier_detection import OutlierDetectionStep

        with datamodels.open(path) as model:
            result = OutlierDetectionStep.call(model)
    else:
        from tso_steps.outlier.step import TSOOutlierStep

        cores = method.split(":")[1] if ":" in method else "1"
        result = TSOOutlierStep.call(path, maximum_cores=cores)
    result.save(out_path)
    wall = time.perf_counter() - start
    # VmHWM is this process's own peak; ru_maxrss would include the parent's pages that the
    # fork before exec mapped.  Forked workers (maximum_cores > 1) share the input pages.
    peak = peak_rss_mb() * 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"wall": wall, "peak_kb": peak, "worker_peak_kb": workers}))


def _run(method, path, workdir):
    out_path = Path(workdir) / f"out_{method.replace(':', '')}.fits"
    stats = run_worker(__file__, [method, str(path), str(out_path)], workdir)
    from astropy.io import fits

    with fits.open(out_path, memmap=False) as hdul:
        flags = (np.asarray(hdul["DQ"].data) & OUTLIER) > 0
    out_path.unlink()
    return stats, flags


def _simulate(mode, nints, crop, seed, workdir):
    """Simulate a rateints file with a 3 % transit, 0.1 px jitter, a 0.5 px tilt, many CRs."""
    from tso_steps.scoring import cosmic_ray_rate_effect
    from tso_steps.simulate import CosmicRays, Jitter, TransitParameters, simulate_tso

    jitter = Jitter(rms=0.1, tilt_integration=nints // 2, tilt=(0.1, 0.5))
    rate = 5e-4 if mode == "NRC_TSGRISM" else 3e-4  # 10x JWST's, for a meaningful recall
    sim = simulate_tso(
        mode,
        nints=nints,
        ngroups=5,
        crop=crop,
        seed=seed,
        transit=TransitParameters(rp_rs=0.173),
        jitter=jitter,
        cosmic_rays=CosmicRays(rate=rate),
        products=("rateints",),
    )
    path = Path(workdir) / f"{mode.lower()}_rateints.fits"
    sim.rateints.save(path)
    rate_effect = cosmic_ray_rate_effect(sim.rateints.data.shape, sim.truth.cosmic_rays)
    noise = np.nanmedian(sim.rateints.err, axis=0)
    level = np.nanmedian(sim.rateints.data, axis=0)
    del sim  # keep the parent small while the children run
    return path, rate_effect.astype(np.float32), noise, level


def _score(flags, rate_effect, noise, level):
    from tso_steps.scoring import score_outlier_flags

    return score_outlier_flags(flags, rate_effect, noise, level)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--nints", type=int, default=300)
    parser.add_argument("--grism-rows", type=int, default=64)
    parser.add_argument("--grism-cols", type=int, default=2048)
    parser.add_argument("--cores", default="2", help="maximum_cores for the second tso_outlier run")
    parser.add_argument(
        "--modes",
        default="NRC_TSGRISM,NRS_BRIGHTOBJ",
        help="comma-separated exposure types (NIS_SOSS and MIR_LRS-SLITLESS at their full size)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", default=str(HERE / "results" / "outlier.md"))
    args = parser.parse_args()
    if args.worker:
        _child(*args.worker)
        return
    crops = {"NRC_TSGRISM": (args.grism_rows, args.grism_cols)}
    cases = [(mode, crops.get(mode)) for mode in args.modes.split(",")]
    methods = ["jwst", "tso_outlier", f"tso_outlier:{args.cores}"]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for mode, crop in cases:
            path, rate_effect, noise, level = _simulate(mode, args.nints, crop, args.seed, workdir)
            size = path.stat().st_size
            shape = "x".join(str(n) for n in rate_effect.shape)
            results = {}
            for method in methods:
                stats, flags = _run(method, path, workdir)
                results[method] = {**stats, **_score(flags, rate_effect, noise, level)}
                print(mode, method, results[method], flush=True)
            base = results["jwst"]
            for method in methods:
                r = results[method]
                rows.append(
                    f"| {mode} {shape} ({size / 1e6:.0f} MB) | {method} | {r['recall']:.4f} "
                    f"({r['n_hits']}) | {r['fp_rate']:.2e} | {r['fp_source']} | "
                    f"{r['wall']:.1f} ({r['wall'] / base['wall']:.2f}x) | "
                    f"{r['peak_kb'] / 1e6:.2f} ({r['peak_kb'] * 1024 / size:.2f}x file) |"
                )
    header = [
        "# tso_outlier vs jwst OutlierDetectionStep (mode tso)",
        "",
        f"Simulated rateints, {args.nints} integrations, 5 groups, 3 % transit, 0.1 px RMS "
        "jitter random walk plus a 0.5 px tilt at mid-exposure, 1/f noise, many cosmic rays.",
        "Recall: hits >= 6 sigma flagged (number of such hits). FP: flags without a hit per "
        "pixel-integration; FP on source: those on pixels brighter than 10 sigma. Wall time "
        "includes opening and saving the file (ratio to jwst); peak RSS in GB (ratio to the "
        "file size). 'tso_outlier:N' uses maximum_cores=N.",
        "",
        "| data | step | recall | FP rate | FP on source | wall s | peak RSS GB |",
        "|---|---|---|---|---|---|---|",
    ]
    text = "\n".join(header + rows) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
