"""Benchmark tso_trace against a Gaussian-fit and a centre-of-mass tracer on simulated data.

jwst 3.0 has no per-integration tracer (extract_1d locates the profile on integration 0
only), so the comparison is with the two tracers the community uses today, run on the SAME
rateints file, each in its own subprocess (wall time and peak RSS measured separately):

* ``gaussian``: per integration and dispersion column, a Gaussian plus constant fitted to the
  cross-dispersion profile (Gauss-Newton, weights 1/variance); the integration's position is
  the inverse-variance weighted mean of the column centres (what Eureka!-style tracers do);
* ``com``: per integration and column, the centre of mass in a window of +-2 FWHM around the
  reference trace after subtracting the median of the pixels just outside it; weighted mean
  over columns.

Both baselines get the reference trace from tso_trace (their windows), so only the
per-integration estimator differs.  Quality: RMS error of the per-integration position
(mean removed) against the simulator's cross-dispersion jitter, in units of the Cramer-Rao
bound computed from the noiseless profile and the per-pixel variance,
``sigma_CRB^-2 = sum (dI/dy)^2 / var``.

Usage::

    python benchmarks/bench_trace.py [--nints 100]
"""

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from measured import peak_rss_mb, run_worker
from tso_steps.scoring import shift_cramer_rao

HERE = Path(__file__).resolve().parent
MODES = {
    "NRC_TSGRISM": (64, 512),
    "NIS_SOSS": (256, 512),
    "NRS_BRIGHTOBJ": (32, 512),
    "MIR_LRS-SLITLESS": (416, 72),
}


def _column_fits(cube, var, centers, half, method):
    """Per-integration positions from per-column Gaussian fits or centres of mass."""
    nints, n_cross, n_disp = cube.shape
    cols = np.flatnonzero(np.isfinite(centers))
    rows = np.arange(n_cross, dtype=float)[:, None]
    c0 = centers[cols][None, :]
    inside = np.abs(rows - c0) <= half
    ring = (np.abs(rows - c0) > half) & (np.abs(rows - c0) <= half + 4)
    positions = np.empty(nints)
    for i in range(nints):
        d = cube[i][:, cols]
        v = var[i][:, cols]
        good = np.isfinite(d) & np.isfinite(v) & (v > 0)
        w = np.where(good & inside, 1.0 / np.where(good, v, 1.0), 0.0)
        d = np.where(good, d, 0.0)
        bkg = np.nanmedian(np.where(ring & good, d, np.nan), axis=0)
        bkg = np.where(np.isfinite(bkg), bkg, 0.0)
        if method == "com":
            flux = np.sum(np.where(inside, d - bkg, 0.0), axis=0)
            com = np.sum(np.where(inside, (d - bkg) * rows, 0.0), axis=0) / flux
            err2 = np.sum(np.where(inside, v * (rows - com) ** 2, 0.0), axis=0) / flux**2
        else:
            com, err2 = _gauss_fit(d, w, rows, c0, half)
        ok = np.isfinite(com) & np.isfinite(err2) & (err2 > 0)
        # Drop failed column fits (> 5 robust sigma from the median offset).
        dev = com - centers[cols]
        mad = 1.4826 * np.median(np.abs(dev[ok] - np.median(dev[ok])))
        ok &= np.abs(dev - np.median(dev[ok])) <= 5 * mad + 1e-9
        positions[i] = np.sum(com[ok] / err2[ok]) / np.sum(1.0 / err2[ok])
    return positions


def _gauss_fit(d, w, rows, c0, half, iterations=8):
    """Vectorised Gauss-Newton fit of a*exp(-(y-c)^2/2s^2)+b per column."""
    c = np.broadcast_to(c0, (1, d.shape[1]))[0].copy()
    s = np.full_like(c, max(half / 3.0, 0.6))
    a = np.max(np.where(w > 0, d, -np.inf), axis=0)
    b = np.zeros_like(c)
    for _ in range(iterations):
        u = (rows - c) / s
        g = np.exp(-0.5 * u**2)
        jac = np.stack([g, a * g * u / s, a * g * u**2 / s, np.ones_like(g)], axis=-1)
        r = d - (a * g + b)
        jw = jac * w[..., None]
        gram = np.einsum("rck,rcl->ckl", jw, jac)
        # Levenberg damping keeps faint columns from diverging.
        gram = gram + 1e-3 * np.einsum("ckk->ck", gram)[:, :, None] * np.eye(4) + 1e-12 * np.eye(4)
        step = np.linalg.solve(gram, np.einsum("rck,rc->ck", jw, r)[..., None])[..., 0]
        a, c, s, b = (
            a + step[:, 0],
            c + np.clip(step[:, 1], -0.5, 0.5),
            s + step[:, 2],
            b + step[:, 3],
        )
        s = np.clip(s, 0.3, 3 * half)
    inverse = np.linalg.inv(gram)
    return c, inverse[:, 1, 1]


def _child(method, path, out_path):
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    import logging

    from stdatamodels.jwst import datamodels

    from tso_steps.trace import TraceStep, dispersion_axis, to_dispersion_last

    logging.disable(logging.INFO)
    ref = np.load(out_path.replace(".json", "_ref.npz"))
    start = time.perf_counter()
    if method == "tso_trace":
        result = TraceStep.call(path)
        positions = np.asarray(result.tso_vectors["trace_position"])
    else:
        with datamodels.open(path) as model:
            axis = dispersion_axis(model)
            cube = to_dispersion_last(np.asarray(model.data, float), axis)
            var = to_dispersion_last(
                np.asarray(model.var_poisson, float) + np.asarray(model.var_rnoise, float), axis
            )
        centers, half = ref["center"], float(ref["half"])
        positions = np.zeros(cube.shape[0])
        for k in range(centers.shape[0]):
            if np.isfinite(centers[k]).any():
                positions = _column_fits(cube, var, centers[k], half, method)
                break
    wall = time.perf_counter() - start
    Path(out_path).write_text(
        json.dumps({"positions": positions.tolist(), "wall": wall, "rss": peak_rss_mb()})
    )
    print(json.dumps({"wall": wall}))


def _crb(truth, rateints, i, h=1e-3):
    """Cramer-Rao bound of the cross-dispersion position (shifts are (dx, dy))."""
    column = 1 if truth.dispersion_axis == 1 else 0
    return shift_cramer_rao(truth, rateints, i, column, h)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=60)
    parser.add_argument("--ngroups", type=int, default=5)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _child(*args.worker)
        return
    from tso_steps.simulate import Jitter, simulate_tso
    from tso_steps.trace import TraceStep

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, crop in MODES.items():
            axis = 0 if mode == "MIR_LRS-SLITLESS" else 1
            rms = (0.0, 0.03) if axis == 1 else (0.03, 0.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sim = simulate_tso(
                    mode,
                    nints=args.nints,
                    ngroups=args.ngroups,
                    crop=crop,
                    seed=11,
                    jitter=Jitter(rms=rms),
                    one_over_f=False,
                    products=("rateints",),
                )
            path = str(Path(tmp) / f"{mode}_rateints.fits")
            sim.rateints.save(path)
            traced = TraceStep().run(sim.rateints)
            half = 2.0 * float(np.median(traced.tso_vectors["trace_width"]))
            truth = sim.truth.shift_cross_dispersion
            crb = np.sqrt(
                np.mean([_crb(sim.truth, sim.rateints, i) ** 2 for i in range(len(truth))])
            )
            for method in ("tso_trace", "gaussian", "com"):
                out = str(Path(tmp) / f"{mode}_{method}.json")
                np.savez(out.replace(".json", "_ref.npz"), center=traced.trace_center, half=half)
                run_worker(__file__, [method, path, out], tmp)
                res = json.loads(Path(out).read_text())
                pos = np.asarray(res["positions"])
                err = (pos - pos.mean()) - (truth - truth.mean())
                rmse = float(np.sqrt(np.mean(err**2)))
                rows.append((mode, method, rmse, crb, rmse / crb, res["wall"], res["rss"]))
                print(
                    f"{mode:18s} {method:10s} rms {rmse:.5f} px  CRB {crb:.5f} px  "
                    f"ratio {rmse / crb:.3f}  {res['wall']:.2f} s  {res['rss']:.0f} MB"
                )
    lines = [
        "# tso_trace benchmark",
        "",
        f"Simulated rateints, {args.nints} integrations x {args.ngroups} groups, 0.03 px "
        "cross-dispersion jitter, cosmic rays on, 1/f off; crops "
        + ", ".join(f"{m} {c[0]}x{c[1]}" for m, c in MODES.items())
        + ".  RMS error of the per-integration position (mean removed) against the "
        "injected jitter, in units of the Cramer-Rao bound.  Wall time and peak RSS per "
        "method in its own process (reading the file included for tso_trace).",
        "",
        "| mode | method | RMS error (px) | CRB (px) | RMS / CRB | wall (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, method, rmse, crb, ratio, wall, rss in rows:
        lines.append(
            f"| {mode} | {method} | {rmse:.5f} | {crb:.5f} | {ratio:.2f} | {wall:.2f} | {rss:.0f} |"
        )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "trace.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
