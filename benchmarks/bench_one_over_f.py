"""Score tso_one_over_f, the per-line oracle and jwst's clean_flicker_noise on simulated 1/f.

For every mode and every 1/f spectrum the simulator writes one rateints exposure, plus the
same exposure without any noise (same seed: same transit and jitter).  The white-noise floor
is the data minus the injected correlated noise (``truth.one_over_f``; a white part of the
spectrum stays in the floor, like read noise).  Methods, all on the same data in one run:

* ``uncorrected``;
* ``oracle``: the TRUE mean correlated noise of every fast line and output subtracted
  (:func:`tso_steps.scoring.line_level_oracle`): the best any one-level-per-line
  correction can do;
* ``tso_one_over_f`` with each ``method`` (``auto``, ``lines``, ``wiener``, ``gp``; default
  ``lines wiener gp``, choose with ``--methods``), in this process;
* jwst ``clean_flicker_noise`` (``fit_method='median'``, ``skip=False``, its default
  ``background_method='median'``: the TSO setting ``'median_image'`` needs assign_wcs
  reference files an offline run lacks), in its own process (it refuses MIRI LRS).

Scores (``tso_steps.scoring``):

* ``white``: noise ratio of the white light (aperture sum per integration) to the floor's
  (:func:`correlated_noise_ratio` with ``width=None``); ``ch16``: the same for 16-pixel
  channels;
* ``frame``: frame-level noise of background pixels (source below 1e-3 of its peak)
  relative to the floor (:func:`background_noise_ratio`);
* ``d(depth)``: recovered transit depth minus that recovered from the floor data (same white
  noise, so the difference is what the correction did), white light, in units of the fit's
  1-sigma error and in relative flux (ppm); and the largest ``|d(depth)|/sigma`` over the
  16-pixel channels.

Spectra: ``sim`` (the simulator's default, index 1), ``a0.7+white`` (index 0.7, 30 % of the
variance white), ``a1.3+knee`` (index 1.3, flat below 50 Hz), ``a1.0+knee+white``.

Usage::

    python benchmarks/bench_one_over_f.py                    # everything -> results/one_over_f.md
    python benchmarks/bench_one_over_f.py NRC_TSGRISM-4out --spectra sim a1.3+knee
    python benchmarks/bench_one_over_f.py NIS_SOSS --spectra sim --methods auto gp
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
SPECTRA = {
    "sim": None,
    "a0.7+white": {"alpha": 0.7, "white": 0.3},
    "a1.3+knee": {"alpha": 1.3, "knee": 50.0},
    "a1.0+knee+white": {"alpha": 1.0, "knee": 20.0, "white": 0.2},
}
METHODS = ("lines", "wiener", "gp")


# ------------------------------------------------------------------------------------------
# worker: jwst clean_flicker_noise on one file (inside the measured subprocess)


def _worker(infile, outfile):
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
    from jwst.clean_flicker_noise import CleanFlickerNoiseStep
    from stdatamodels.jwst import datamodels

    start = time.perf_counter()
    with datamodels.open(infile) as model:
        # no flat field and no SOSS trace model offline: "N/A" keeps CRDS out
        result = CleanFlickerNoiseStep(
            skip=False, fit_method="median", override_flat="N/A", override_pastasoss="N/A"
        ).run(model)
        status = str(result.meta.cal_step.clean_flicker_noise or "COMPLETE")
        np.save(outfile, np.asarray(result.data, dtype=np.float32))
    print(json.dumps({"step_seconds": time.perf_counter() - start, "status": status}))


# ------------------------------------------------------------------------------------------
# scoring


def score(data, ctx):
    from tso_steps.scoring import (
        background_noise_ratio,
        correlated_noise_ratio,
        depth_recovery,
    )

    floor, noiseless, truth = ctx["floor"], ctx["noiseless"], ctx["truth"]
    out = {
        "white": correlated_noise_ratio(data, floor, noiseless, truth, None),
        "ch16": correlated_noise_ratio(data, floor, noiseless, truth, 16),
        "frame": background_noise_ratio(data, floor, noiseless, ctx["background"]),
    }
    white, ref = depth_recovery(data, noiseless, truth), ctx["depth_floor"]
    out["dpull"] = white["pull"] - ref["pull"]
    out["dbias_ppm"] = 1e6 * (white["bias"] - ref["bias"])
    if truth.dispersion_axis is not None:
        chans, ref16 = depth_recovery(data, noiseless, truth, 16), ctx["depth_floor16"]
        n = min(chans["pulls"].size, ref16["pulls"].size)
        out["dpull16"] = float(np.max(np.abs(chans["pulls"][:n] - ref16["pulls"][:n])))
    else:
        out["dpull16"] = np.nan
    return out


def simulate_case(name, spectrum, seed=21):
    """One case's exposure and the scoring context (floor, noiseless data, truth, depths)."""
    from tso_steps.scoring import depth_recovery
    from tso_steps.simulate import simulate_tso

    exp_type, kwargs, nints, ngroups = CASES[name]
    common = dict(nints=nints, ngroups=ngroups, seed=seed, products=("rateints",), **kwargs)
    sim = simulate_tso(exp_type, one_over_f_spectrum=SPECTRA[spectrum], **common)
    quiet = dict(photon_noise=False, read_noise=False, one_over_f=False, cosmic_rays=False)
    noiseless = simulate_tso(exp_type, **quiet, **common).rateints.data
    floor = sim.rateints.data - sim.truth.one_over_f
    source = sim.truth.source_image(0)
    ctx = {
        "floor": floor,
        "noiseless": noiseless,
        "truth": sim.truth,
        "background": source < 1e-3 * source.max(),
        "depth_floor": depth_recovery(floor, noiseless, sim.truth),
    }
    if sim.truth.dispersion_axis is not None:
        ctx["depth_floor16"] = depth_recovery(floor, noiseless, sim.truth, 16)
    return sim, ctx


def run_case(name, spectrum, workdir, methods=METHODS):
    from tso_steps.one_over_f.step import OneOverFStep
    from tso_steps.readout import LineLayout, ReadoutGeometry
    from tso_steps.scoring import line_level_oracle

    sim, ctx = simulate_case(name, spectrum)
    layout = LineLayout.from_geometry(ReadoutGeometry.from_model(sim.rateints))
    rows = [("uncorrected", score(sim.rateints.data, ctx), None)]
    oracle = line_level_oracle(sim.rateints.data, sim.truth.one_over_f, layout)
    rows.append(("oracle (true line levels)", score(oracle, ctx), None))
    for method in methods:
        start = time.perf_counter()
        data = OneOverFStep(method=method).run(sim.rateints).data
        rows.append((f"tso_one_over_f {method}", score(data, ctx), time.perf_counter() - start))
    if not CASES[name][0].startswith("MIR"):
        infile = workdir / f"{name}_{spectrum}_rateints.fits"
        outfile = workdir / f"{name}_{spectrum}_jwst.npy"
        sim.rateints.save(infile)
        info = run_worker(__file__, [infile, outfile], workdir)
        label = "jwst clean_flicker_noise"
        if info.get("status") not in (None, "COMPLETE"):
            label += f" ({info['status']})"
        rows.append((label, score(np.load(outfile), ctx), info["step_seconds"]))
    shape = "x".join(str(n) for n in sim.rateints.data.shape)
    return name, spectrum, shape, rows


def _table(results):
    lines = [
        "| mode (rateints shape) | 1/f spectrum | method | white light | 16-px channels | "
        "frame (background) | d(depth) white, sigma | d(depth) white, ppm | "
        "max abs d(depth) 16-px, sigma | step s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, spectrum, shape, rows in results:
        for method, s, seconds in rows:
            wall = "" if seconds is None else f"{seconds:.1f}"
            lines.append(
                f"| {name} ({shape}) | {spectrum} | {method} | {s['white']:.3f} | "
                f"{s['ch16']:.3f} | {s['frame']:.3f} | {s['dpull']:+.2f} | "
                f"{s['dbias_ppm']:+.0f} | {s['dpull16']:.2f} | {wall} |"
            )
    return "\n".join(lines)


def _option(argv, flag, choices):
    """Values after ``flag`` (up to the next ``--`` flag) and argv without them."""
    if flag not in argv:
        return None, argv
    at = argv.index(flag)
    end = next((i for i in range(at + 1, len(argv)) if argv[i].startswith("--")), len(argv))
    values = argv[at + 1 : end]
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {list(choices)}")
    return values, argv[:at] + argv[end:]


def main(argv):
    spectra, argv = _option(argv, "--spectra", SPECTRA)
    spectra = spectra or list(SPECTRA)
    methods, argv = _option(argv, "--methods", ("auto", "lines", "wiener", "gp"))
    methods = methods or METHODS
    names = [a for a in argv if a in CASES] or list(CASES)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for spectrum in spectra:
                print(f"running {name} {spectrum} ...", flush=True)
                results.append(run_case(name, spectrum, Path(tmp), methods))
                print(_table(results[-1:]), flush=True)
    table = _table(results)
    print(table)
    out = HERE / "results" / "one_over_f.md"
    out.parent.mkdir(exist_ok=True)
    header = (
        "# tso_one_over_f vs the per-line oracle and jwst clean_flicker_noise\n\n"
        f"Generated by `python benchmarks/bench_one_over_f.py {' '.join(sys.argv[1:])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Ratios: 1 = white-noise "
        "floor (see the script's docstring).\n\n"
    )
    out.write_text(header + table + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:4])
    else:
        main(sys.argv[1:])
