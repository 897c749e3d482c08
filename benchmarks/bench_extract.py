"""Benchmark tso_extract against jwst's Extract1dStep box and a plain box sum.

Every method runs in its own subprocess on the SAME simulated rateints (the simulation is
re-made from its seed in each process and is not timed); wall time of the extraction and the
process's peak RSS are measured there.  Methods:

* ``true_profile``: Horne extraction handed the simulator's noiseless source of every
  integration as its profile (the reference; its formal white-light error is the photon +
  read-noise limit quoted below);
* ``tso_extract``: our step with its defaults (profile from the exposure, moved with the trace);
* ``tso_extract_1f``: the same with ``one_over_f=True``;
* ``tso_extract_box``: our box that follows the trace (``method='box'``);
* ``plain_box``: a numpy sum of the rows ``round(centre) +- h`` (static);
* ``jwst_extract_1d``: jwst 3.0 ``Extract1dStep`` box with the same static rows, run offline
  (an EXTRACT1D JSON reference, a wavelength array and a minimal gwcs supplied; no apcorr).

Quality: scatter of the white light about ``a + b * L`` (``L`` the true light curve; the
free offset puts extractions that keep the background on the same footing), divided by the
true source flux, ppm, and relative to the limit; the same per dispersion column (median
over columns).

Usage::

    python benchmarks/bench_extract.py [--nints 100]
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from measured import peak_rss_mb, run_worker

HERE = Path(__file__).resolve().parent
METHODS = (
    "true_profile",
    "tso_extract",
    "tso_extract_1f",
    "tso_extract_box",
    "plain_box",
    "jwst_extract_1d",
)
CASES = {
    "grism": dict(mode="NRC_TSGRISM", crop=(32, 256), jitter=0.02, one_over_f=False),
    "grism_1f": dict(mode="NRC_TSGRISM", crop=(32, 256), jitter=0.02, one_over_f=True),
    "grism_bkg": dict(
        mode="NRC_TSGRISM",
        crop=(32, 256),
        jitter=0.02,
        one_over_f=False,
        brightness=0.05,
        background=2000.0,
        read_noise=2.0,
    ),
    "nrs_1f": dict(mode="NRS_BRIGHTOBJ", crop=(32, 512), jitter=0.02, one_over_f=True),
}
DESCRIPTION = {
    "grism": "NIRCam F322W2 grism 32x256 cut-out, FWHM ~1.9 px, 0.02 px jitter, cosmic rays, "
    "background, no 1/f",
    "grism_1f": "as grism, with 1/f, pre-amp and odd/even noise",
    "grism_bkg": "as grism, source x0.05, background 2000 e/s/px, read noise 2 DN "
    "(background-limited)",
    "nrs_1f": "NIRSpec PRISM 32x512 cut-out, 0.02 px jitter, cosmic rays, background, 1/f",
}


def _simulate(case, nints):
    from tso_steps.simulate import simulate_tso

    options = dict(CASES[case])
    mode = options.pop("mode")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=nints, ngroups=5, seed=7, products=("rateints",), **options)


def jwst_box_inputs(model, truth, center, half, workdir):
    """Make ``model`` ready for jwst's Extract1dStep box offline; return the reference path.

    Attaches a minimal gwcs (wavelength polynomial along the dispersion), the wavelength
    array and the dispersion direction, and writes a JSON EXTRACT1D reference with the
    static rows ``median(center) +- half``.
    """
    from astropy.modeling import models
    from gwcs import WCS
    from gwcs import coordinate_frames as cf

    axis = truth.dispersion_axis
    wave = truth.wavelength[0]
    ok = np.isfinite(wave)
    x = np.arange(wave.size)
    coef = np.polynomial.polynomial.polyfit(x[ok], wave[ok], 3)
    poly = models.Polynomial1D(3, **{f"c{k}": v for k, v in enumerate(coef)})
    index = 0 if axis == 1 else 1
    forward = models.Mapping((index, index, index), n_inputs=2) | (
        models.Const1D(0.0) & models.Const1D(0.0) & poly
    )
    model.meta.wcs = WCS([(cf.Frame2D(name="detector"), forward), ("world", None)])
    model.meta.wcsinfo.dispersion_direction = 1 if axis == 1 else 2
    along = np.where(ok, wave, 0.0)
    wave_image = np.broadcast_to(along if axis == 1 else along[:, None], model.data.shape[1:])
    model.wavelength = np.array(wave_image, dtype=np.float32)
    mid = float(np.nanmedian(center))
    lo, hi = round(mid) - half, round(mid) + half
    lit = np.flatnonzero(np.isfinite(center))
    aperture = {"id": "ANY", "region_type": "target", "disp_axis": 1 if axis == 1 else 2}
    if axis == 1:
        aperture.update(xstart=int(lit[0]), xstop=int(lit[-1]), ystart=lo, ystop=hi)
    else:
        aperture.update(ystart=int(lit[0]), ystop=int(lit[-1]), xstart=lo, xstop=hi)
    aperture.update(use_source_posn=False)
    ref = Path(workdir) / "extract1d.json"
    ref.write_text(json.dumps({"REFTYPE": "EXTRACT1D", "apertures": [aperture]}))
    return ref


#: Extract1dStep arguments that keep CRDS out (the box needs no other reference)
JWST_BOX_OFFLINE = {
    "apply_apcorr": False,
    "override_apcorr": "N/A",
    "override_psf": "N/A",
    "override_specprofile": "N/A",
    "override_speckernel": "N/A",
    "override_pastasoss": "N/A",
}


def _jwst_box(model, truth, center, half, workdir):
    """jwst Extract1dStep box extraction over static rows, offline."""
    from jwst.extract_1d import Extract1dStep

    from tso_steps.offline import make_offline_crds_cache, offline_environment

    os.environ.update(offline_environment(make_offline_crds_cache(Path(workdir) / "crds")))
    axis = truth.dispersion_axis
    n_disp = model.data.shape[-1 if axis == 1 else -2]
    ref = jwst_box_inputs(model, truth, center, half, workdir)
    lit = np.flatnonzero(np.isfinite(center))
    t0 = time.perf_counter()
    out = Extract1dStep.call(model, override_extract1d=str(ref), **JWST_BOX_OFFLINE)
    elapsed = time.perf_counter() - t0
    flux = np.full((model.data.shape[0], n_disp), np.nan)
    table = out.spec[0].spec_table
    got = np.asarray(table["FLUX"])
    flux[:, lit[0] : lit[0] + got.shape[1]] = got[:, : n_disp - lit[0]]
    return flux, elapsed


def _residual(values, light_curve):
    """Residual of ``values = a + b * light_curve`` (a free offset: an extraction that keeps
    the background is scored on the same footing as one that subtracts it)."""
    x = np.column_stack([np.ones_like(light_curve), light_curve])
    coef, *_ = np.linalg.lstsq(x, values, rcond=None)
    return values - x @ coef


def run_child(case, method, nints, workdir):
    """Run one method on one case; print a JSON line of results."""
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
    from tso_steps.extract import ExtractOptions, OptimalExtractStep, extract_order
    from tso_steps.extract.adapter import extract_arrays
    from tso_steps.scoring import true_profile_cube
    from tso_steps.trace import measure_trace

    sim = _simulate(case, nints)
    model, truth = sim.rateints, sim.truth
    axis = truth.dispersion_axis
    error = None
    if method in ("true_profile", "plain_box", "jwst_extract_1d"):
        ref, positions, _ = measure_trace(model)
        half = max(3.0, np.ceil(1.5 * ref.fwhm[0] + 1))
    t0 = time.perf_counter()
    if method.startswith("tso_extract"):
        options = {"tso_extract_1f": {"one_over_f": True}, "tso_extract_box": {"method": "box"}}
        out = OptimalExtractStep(**options.get(method, {})).run(model)
        flux = np.asarray(out.spec[0].spec_table["FLUX"])
        error = np.asarray(out.spec[0].spec_table["FLUX_ERROR"])
        elapsed = time.perf_counter() - t0
    elif method == "true_profile":
        profile = true_profile_cube(truth)
        t0 = time.perf_counter()
        cube, var_p, var_r, bad = extract_arrays(model, axis)
        res = extract_order(
            cube,
            var_p,
            var_r,
            bad,
            ref.center[0],
            positions.shift,
            ExtractOptions(halfwidth=half),
            true_profile=profile,
        )
        flux, error = res.extraction.flux, res.extraction.error
        elapsed = time.perf_counter() - t0
    elif method == "plain_box":
        t0 = time.perf_counter()
        cube = np.asarray(model.data, float)
        cube = cube if axis == 1 else np.swapaxes(cube, -1, -2)
        mid = round(float(np.nanmedian(ref.center[0])))
        flux = np.nansum(cube[:, int(mid - half) : int(mid + half) + 1, :], axis=1)
        flux[:, ~np.isfinite(ref.center[0])] = np.nan
        elapsed = time.perf_counter() - t0
    else:
        flux, elapsed = _jwst_box(model, truth, ref.center[0], int(half), workdir)
    lc = truth.light_curve
    lit = np.all(np.isfinite(flux), axis=0) & np.isfinite(truth.spectrum[0])
    source = truth.spectrum[0]
    white = _residual(np.nansum(flux[:, lit], axis=1), lc) / np.sum(source[lit])
    lcs = truth.spectral_light_curves()[:, 0, :]
    cols = [_residual(flux[:, x], lcs[:, x]) / source[x] for x in np.flatnonzero(lit)]
    result = {
        "white_ppm": 1e6 * float(np.std(white)),
        "channel_ppm": 1e6 * float(np.median(np.std(cols, axis=1))),
        "limit_ppm": (
            1e6
            * float(np.median(np.sqrt(np.nansum(error[:, lit] ** 2, axis=1))))
            / np.sum(source[lit])
            if method == "true_profile"
            else None
        ),
        "seconds": elapsed,
        "per_int_ms": 1e3 * elapsed / nints,
        "rss_mb": peak_rss_mb(),
        "ncols": int(lit.sum()),
    }
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=100)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"))
    parser.add_argument("--workdir")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    if args.worker:
        run_child(*args.worker, args.nints, args.workdir)
        return
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for case in args.cases.split(","):
            results = {}
            for method in METHODS:
                worker_args = [case, method, "--nints", args.nints, "--workdir", workdir]
                try:
                    results[method] = run_worker(__file__, worker_args, workdir)
                except RuntimeError as err:
                    print(f"{case} {method} FAILED: {err}", file=sys.stderr)
                    continue
                print(case, method, results[method], flush=True)
            ref = results.get("true_profile", {})
            limit = ref.get("limit_ppm") or float("nan")
            for method, r in results.items():
                rows.append(
                    f"| {case} | {method} | {r['white_ppm']:.0f} | {r['white_ppm'] / limit:.3f} | "
                    f"{r['white_ppm'] / ref.get('white_ppm', np.nan):.3f} | "
                    f"{r['channel_ppm']:.0f} | {r['per_int_ms']:.2f} | {r['rss_mb']:.0f} |"
                )
    text = [
        "# tso_extract benchmark",
        "",
        f"Simulated rateints, {args.nints} integrations x 5 groups (seed 7).  White-light "
        "scatter about a + b x (true light curve), over the true source flux; 'limit' is the "
        "formal white-light error of a Horne extraction handed the true profile (photon + "
        "read noise); per-column: the same per dispersion column, median over columns.  "
        "Time is the extraction only (ms per "
        "integration, including our trace measurement); peak RSS of each method's process "
        "(simulation included).",
        "",
    ]
    text += [f"* `{case}`: {DESCRIPTION[case]}" for case in args.cases.split(",")]
    text += [
        "",
        "| case | method | white (ppm) | / limit | / true profile | per-column (ppm) "
        "| ms / int | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    out = HERE / "results" / "extract.md"
    out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
