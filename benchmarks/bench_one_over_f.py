"""Benchmark tso_one_over_f against jwst's CleanFlickerNoiseStep on the same simulated data.

For each mode the simulator writes one rateints file (plus the same exposure without 1/f
and without any noise, for scoring). Each method runs on that file in its own subprocess
under ``/usr/bin/time -v`` (wall time and peak RSS of the whole process):

* ``tso_one_over_f`` with its defaults;
* jwst ``clean_flicker_noise`` with ``fit_method='median'`` (and ``'fft'`` for NIRSpec, the
  only TSO mode it allows), ``skip=False`` and its default ``background_method='median'``:
  its TSO setting ``'median_image'`` needs assign_wcs reference files (SOSS: the pastasoss
  file), which an offline run does not have. It refuses MIRI LRS.

Scores, against the simulator's truth (see ``docs/steps/tso_one_over_f.rst``):

* noise ratio of 16-pixel channels of a +-4 px box aperture (as in the tests) and of the
  white light (all channels summed): robust scatter over integrations of
  ``B(corrected) - B(noiseless)`` over that of ``B(no 1/f) - B(noiseless)``;
* residual 1/f power: mean square of ``corrected - (data - injected 1/f)`` after removing
  each pixel's time average, over the mean square of the injected 1/f (time average also
  removed); the per-pixel white noise the correction cannot touch is in neither.

Usage::

    python benchmarks/bench_one_over_f.py            # all modes, writes results/one_over_f.md
    python benchmarks/bench_one_over_f.py NRS_BRIGHTOBJ NRC_TSGRISM-4out
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from measured import run_worker
from tso_steps.simulate.scoring import correlated_noise_ratio

HERE = Path(__file__).resolve().parent

CASES = {
    # name: (exposure type, simulator keywords, integrations, groups)
    "NRS_BRIGHTOBJ": ("NRS_BRIGHTOBJ", {}, 50, 4),
    "NIS_SOSS": ("NIS_SOSS", {}, 30, 4),
    "NRC_TSGRISM-4out": ("NRC_TSGRISM", {"subarray": "SUBGRISM64", "noutputs": 4}, 50, 4),
    "NRC_TSGRISM-1out": ("NRC_TSGRISM", {"subarray": "SUBGRISM64", "noutputs": 1}, 50, 4),
    "MIR_LRS-SLITLESS": ("MIR_LRS-SLITLESS", {}, 50, 4),
    "NRC_TSIMAGE": ("NRC_TSIMAGE", {}, 150, 4),
}


# ------------------------------------------------------------------------------------------
# worker: runs one method on one file (inside the measured subprocess)


def _worker(method, infile, outfile):
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
    from stdatamodels.jwst import datamodels

    start = time.perf_counter()
    with datamodels.open(infile) as model:
        if method == "tso_one_over_f":
            from tso_steps.one_over_f.step import OneOverFStep

            result = OneOverFStep().run(model)
        else:
            from jwst.clean_flicker_noise import CleanFlickerNoiseStep

            fit = method.split("_")[-1]
            # no flat-fielding and no SOSS trace model: "N/A" keeps CRDS out (offline). Its
            # TSO setting background_method='median_image' needs assign_wcs references (and
            # pastasoss for SOSS), unavailable offline: the default 'median' is used.
            result = CleanFlickerNoiseStep(
                skip=False,
                fit_method=fit,
                override_flat="N/A",
                override_pastasoss="N/A",
            ).run(model)
        status = str(result.meta.cal_step.clean_flicker_noise or "COMPLETE")
        np.save(outfile, np.asarray(result.data, dtype=np.float32))
    print(json.dumps({"step_seconds": time.perf_counter() - start, "status": status}))


# ------------------------------------------------------------------------------------------
# scoring


def score(data, floor, noiseless, injected, truth):
    out = {
        key: correlated_noise_ratio(data, floor, noiseless, truth, width)
        for key, width in (("channel16", 16), ("white", None))
    }
    residual = data - floor
    residual = residual - residual.mean(axis=0)
    dynamic = injected - injected.mean(axis=0)
    out["power"] = float(np.mean(residual.astype(np.float64) ** 2) / np.mean(dynamic**2))
    return out


# ------------------------------------------------------------------------------------------
# driver


def _measure(method, infile, outfile):
    return run_worker(__file__, [method, infile, outfile], Path(infile).parent)


def run_case(name, workdir):
    from tso_steps.simulate import simulate_tso

    exp_type, kwargs, nints, ngroups = CASES[name]
    common = dict(nints=nints, ngroups=ngroups, seed=21, products=("rateints",), **kwargs)
    sim = simulate_tso(exp_type, **common)
    quiet = dict(photon_noise=False, read_noise=False, one_over_f=False, cosmic_rays=False)
    noiseless = simulate_tso(exp_type, **quiet, **common).rateints.data
    injected = sim.truth.one_over_f
    floor = sim.rateints.data - injected
    infile = workdir / f"{name}_rateints.fits"
    sim.rateints.save(infile)
    methods = ["tso_one_over_f"]
    if not exp_type.startswith("MIR"):
        methods.append("clean_flicker_noise_median")
    if exp_type == "NRS_BRIGHTOBJ":
        methods.append("clean_flicker_noise_fft")
    rows = [("uncorrected", score(sim.rateints.data, floor, noiseless, injected, sim.truth), {})]
    for method in methods:
        outfile = workdir / f"{name}_{method}.npy"
        info = _measure(method, infile, outfile)
        data = np.load(outfile)
        rows.append((method, score(data, floor, noiseless, injected, sim.truth), info))
    shape = "x".join(str(n) for n in sim.rateints.data.shape)
    return name, shape, rows


def _table(results):
    lines = [
        "| mode (rateints shape) | method | noise ratio, 16-px channels | noise ratio, white "
        "light | residual 1/f power | step wall s | process wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, shape, rows in results:
        ours = next(info for method, _, info in rows if method == "tso_one_over_f")
        for method, scores, info in rows:
            timing = ["", "", ""]
            if info:
                timing = [
                    f"{info['step_seconds']:.1f}",
                    f"{info['process_seconds']:.1f}",
                    f"{info['peak_rss_mb']:.0f}",
                ]
                if method != "tso_one_over_f":
                    timing[0] += f" ({info['step_seconds'] / ours['step_seconds']:.1f}x ours)"
                    timing[2] += f" ({info['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x ours)"
            label = method
            if info and info.get("status") not in (None, "COMPLETE"):
                label += f" ({info['status']})"
            lines.append(
                f"| {name} ({shape}) | {label} | {scores['channel16']:.3f} | "
                f"{scores['white']:.3f} | {scores['power']:.3f} | " + " | ".join(timing) + " |"
            )
    return "\n".join(lines)


def main(argv):
    names = [a for a in argv if a in CASES] or list(CASES)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"running {name} ...", flush=True)
            results.append(run_case(name, Path(tmp)))
    table = _table(results)
    print(table)
    out = HERE / "results" / "one_over_f.md"
    out.parent.mkdir(exist_ok=True)
    header = (
        "# tso_one_over_f vs jwst clean_flicker_noise\n\n"
        "Generated by `python benchmarks/bench_one_over_f.py` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Noise ratio: 1 = white-noise "
        "floor (see the script's docstring); residual 1/f power: fraction of the injected "
        "time-variable correlated noise power left.\n\n"
    )
    out.write_text(header + table + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:5])
    else:
        main(sys.argv[1:])
