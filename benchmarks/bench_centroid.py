"""Benchmark tso_centroid against the centroids of jwst's TSOPhotometryStep on the same data.

For each scene the simulator writes one NRC_TSIMAGE SUB64P rateints file (transit, 0.02 px
jitter random walk plus a tilt event half-way, cosmic rays (unflagged), 1/f noise,
background, photon and read noise).  Each step then runs on that file in its own Python
subprocess under ``/usr/bin/time -v`` (wall time and peak RSS of the whole process, imports
included):

* ``tso_centroid`` (``CentroidStep().run(path)``, default template method, and
  ``method=com``), and ``tso_centroid`` -> ``tso_one_over_f`` -> ``tso_centroid`` (1/f
  stripes removed with the source masked from the first centroids);
* jwst 3.0 ``tso_photometry``'s centroiding: its lower-level functions, called exactly as
  ``TSOPhotometryStep.process`` calls them (``convert_data_units`` with a GAIN array, then
  ``tso_source_centroid``): per integration a centre of mass in a ``search_box_width`` box
  around XREF_SCI/YREF_SCI, then again in a ``fit_box_width`` box around the median of
  those, plus a Gaussian PRF fit for the width.  The whole step cannot run on the
  simulated files because its aperture photometry evaluates ``meta.wcs``, which the
  simulator does not attach.  The GAIN is a constant reference (the simulator's gain) built
  with stdatamodels; XREF_SCI/YREF_SCI are set to the true nominal position.  It is run with
  its defaults (boxes 41 and 11 px) and with ``fit_box_width=41`` (a box that holds the
  whole weak-lens donut).

Accuracy: RMS over integrations of (measured - true position) after removing the mean
offset, x and y, and the mean offset itself (absolute bias).  For scale, the Cramer-Rao bound
of a white-noise (photon + read noise) shift estimate is printed.

Usage::

    python benchmarks/bench_centroid.py            # 200 integrations per scene
    python benchmarks/bench_centroid.py --nints 500
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from measured import run_worker
from tso_steps.scoring import pointing_cramer_rao

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- child runs
def _child(kind, path, out, gain_path=None, fit_box=11, method="template"):
    """Run one step on one file and save its centroids (executed in a subprocess)."""
    import time

    from stdatamodels.jwst import datamodels

    start = time.perf_counter()
    if kind in ("ours", "ours_1f"):
        from tso_steps.centroid import CentroidStep
        from tso_steps.vectors import get_vectors

        # a file name, as strun passes it: opened once, no copy
        result = CentroidStep(method=method).run(path)
        if kind == "ours_1f":
            from tso_steps.one_over_f.step import OneOverFStep

            # 1/f masks the source from the first centroids, then centroid again
            result = CentroidStep(method=method).run(OneOverFStep().run(result))
        vectors = get_vectors(result)
        cx, cy = np.asarray(vectors["centroid_x"]), np.asarray(vectors["centroid_y"])
    else:
        from jwst.tso_photometry.tso_photometry import convert_data_units, tso_source_centroid

        model = datamodels.open(path)
        # What TSOPhotometryStep.process does before its aperture photometry (which needs a
        # WCS the simulator does not attach): unit conversion with the GAIN reference, then
        # tso_source_centroid with the step's default parameters.
        gain = datamodels.GainModel(gain_path)
        convert_data_units(model, gain.data)
        cx, cy, *_ = tso_source_centroid(
            model,
            model.meta.wcsinfo.siaf_xref_sci - 1,
            model.meta.wcsinfo.siaf_yref_sci - 1,
            search_box_width=41,
            fit_box_width=fit_box,
            source_radius=4.0,
        )
    elapsed = time.perf_counter() - start
    np.savez(out, cx=cx, cy=cy, step_seconds=elapsed)
    print(json.dumps({"step_seconds": elapsed}))


# --------------------------------------------------------------------------- parent
def _simulate(element, nints, seed, root, subarray="SUB64P"):
    from stdatamodels.jwst import datamodels

    from tso_steps.simulate import simulate_tso

    jitter = {"rms": 0.02, "tilt_integration": nints // 2, "tilt": (0.4, -0.3)}
    sim = simulate_tso(
        "NRC_TSIMAGE",
        nints=nints,
        ngroups=5,
        element=element,
        subarray=subarray,
        seed=seed,
        jitter=jitter,
        products=("rateints",),
    )
    cube = sim.rateints
    y0, x0 = sim.truth.psf_center
    cube.meta.wcsinfo.siaf_xref_sci = x0 + 1.0  # 1-based planned position (exact)
    cube.meta.wcsinfo.siaf_yref_sci = y0 + 1.0
    path = root / f"{element}_{subarray}_rateints.fits"
    cube.save(path)
    gain = datamodels.GainModel(data=np.full(cube.data.shape[1:], sim.truth.gain, np.float32))
    gain.update(cube, only="PRIMARY")
    gain.meta.reftype = "GAIN"
    gain.meta.subarray.name = cube.meta.subarray.name
    for key in ("xstart", "ystart", "xsize", "ysize"):
        setattr(gain.meta.subarray, key, getattr(cube.meta.subarray, key))
    gain.meta.author, gain.meta.pedigree = "bench_centroid", "DUMMY"
    gain.meta.description, gain.meta.useafter = "constant gain", "2020-01-01T00:00:00"
    gain_path = root / f"{element}_{subarray}_gain.fits"
    gain.save(gain_path)
    return sim, path, gain_path


def _run(args, root, label):
    out = root / f"{label}.npz"
    info = run_worker(__file__, [json.dumps({**args, "out": str(out)})], root)
    result = np.load(out)
    return (
        result["cx"],
        result["cy"],
        info["process_seconds"],
        info["cpu_seconds"],
        float(result["step_seconds"]),
        info["peak_rss_mb"],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--large", type=int, default=0, help="also run SUB400P WLP8 with this many integrations"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.worker:
        _child(**json.loads(opts.worker))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenes = [
            ("WLP8", "SUB64P", opts.nints, "WLP8 defocused"),
            ("CLEAR", "SUB64P", opts.nints, "CLEAR in focus"),
        ]
        if opts.large:
            scenes.append(("WLP8", "SUB400P", opts.large, f"WLP8 SUB400P x {opts.large}"))
        for element, subarray, nints, scene in scenes:
            sim, path, gain_path = _simulate(element, nints, opts.seed, root, subarray)
            print(f"{scene}: {path.stat().st_size / 2**20:.0f} MB rateints", flush=True)
            truth = sim.truth
            crb = pointing_cramer_rao(sim)
            y0, x0 = truth.psf_center
            runs = [
                ("tso_centroid (template)", {"kind": "ours", "method": "template"}),
                ("tso_centroid (com)", {"kind": "ours", "method": "com"}),
                ("tso_one_over_f + tso_centroid", {"kind": "ours_1f", "method": "template"}),
                ("jwst tso_photometry (fit box 11)", {"kind": "jwst", "fit_box": 11}),
                ("jwst tso_photometry (fit box 41)", {"kind": "jwst", "fit_box": 41}),
            ]
            for label, args in runs:
                args = {**args, "path": str(path), "gain_path": str(gain_path)}
                tag = f"{element}_{subarray}_{len(rows)}"
                cx, cy, wall, cpu, step_s, rss = _run(args, root, tag)
                ex, ey = cx - (x0 + truth.shift_x), cy - (y0 + truth.shift_y)
                rows.append(
                    {
                        "scene": scene,
                        "step": label,
                        "rms_x": float(np.nanstd(ex)),
                        "rms_y": float(np.nanstd(ey)),
                        "bias_x": float(np.nanmean(ex)),
                        "bias_y": float(np.nanmean(ey)),
                        "failed": int((~np.isfinite(ex)).sum()),
                        "crb_x": float(crb[0]),
                        "crb_y": float(crb[1]),
                        "wall": wall,
                        "cpu": cpu,
                        "step_s": step_s,
                        "rss": rss,
                    }
                )
                print(rows[-1], flush=True)
    _write(rows, opts)


def _write(rows, opts):
    lines = [
        "# tso_centroid vs jwst tso_photometry centroids (NRC_TSIMAGE, simulated)",
        "",
        f"Simulator: tso_steps.simulate NRC_TSIMAGE, SUB64P {opts.nints} integrations "
        f"(SUB400P: {opts.large or 'not run'}) x 5 groups, seed {opts.seed}: transit, "
        "0.02 px jitter random walk plus a (0.4, -0.3) px "
        "tilt event half-way, unflagged cosmic rays, 1/f noise, background, photon and read "
        "noise.  Each step runs in its own subprocess under `/usr/bin/time -v` (wall time and "
        "peak RSS of the whole process, imports included; 'step s' is opening the file plus "
        "the step call, without imports; CPU s is user + system time of the process; the machine "
        "(2 CPUs) was shared with other jobs, so wall times are noisy). "
        "RMS: scatter of (measured - true) position over integrations after removing the "
        "mean offset; bias: that mean offset (absolute position error).  CRB: white-noise "
        "Cramer-Rao bound of one integration's shift (1/f noise is not in it, which is why "
        "y, the slow axis across the 1/f stripes, sits above it).  Generated by "
        "`benchmarks/bench_centroid.py`.",
        "",
        "jwst: `tso_source_centroid` called as `TSOPhotometryStep` calls it (the full step needs a "
        "WCS for its aperture photometry, which the simulated files lack).",
        "",
        "| scene | step | RMS x px | RMS y px | RMS / CRB (x, y) | bias x px | bias y px | "
        "failed | wall s | CPU s | step s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scene']} | {r['step']} | {r['rms_x']:.4f} | {r['rms_y']:.4f} | "
            f"{r['rms_x'] / r['crb_x']:.2f}, {r['rms_y'] / r['crb_y']:.2f} | "
            f"{r['bias_x']:+.4f} | {r['bias_y']:+.4f} | {r['failed']} | {r['wall']:.1f} | "
            f"{r['cpu']:.1f} | "
            f"{r['step_s']:.2f} | {r['rss']:.0f} |"
        )
    lines += [
        "",
        "Ratios, jwst / tso_centroid (template): above 1 means tso_centroid is better "
        "(RMS) or cheaper (time, RSS).",
        "",
        "| scene | jwst run | RMS x ratio | RMS y ratio | wall ratio | CPU ratio | "
        "step-time ratio | RSS ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        ours = next(r for r in rows if r["scene"] == scene and "template" in r["step"])
        for r in rows:
            if r["scene"] != scene or not r["step"].startswith("jwst"):
                continue
            lines.append(
                f"| {scene} | {r['step']} | {r['rms_x'] / ours['rms_x']:.1f} | "
                f"{r['rms_y'] / ours['rms_y']:.1f} | {r['wall'] / ours['wall']:.2f} | "
                f"{r['cpu'] / ours['cpu']:.2f} | "
                f"{r['step_s'] / ours['step_s']:.2f} | {r['rss'] / ours['rss']:.2f} |"
            )
    out = HERE / "results" / "centroid.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
