"""Every step on full-size TSO segments, by ``strun``, against its jwst counterpart (issue 15).

Each case is simulated once and written to disk; every tso-steps step that applies to it then
runs as ``strun ALIAS FILE`` in its own process, and its jwst counterpart on the same file in
its own process (:func:`measured.run_command`: wall time, CPU time and peak resident memory of
the whole process, imports and FITS I/O included):

=================  ======================================================================
tso_jump           jwst ``jump`` (strun, synthetic GAIN and READNOISE overrides)
tso_one_over_f     jwst ``clean_flicker_noise`` (fit_method='median', no flat, skip=False)
tso_outlier        jwst ``outlier_detection`` (mode tso, its defaults)
tso_extract        jwst ``extract_1d`` box (JSON EXTRACT1D reference, minimal gwcs; SOSS is
                   relabelled NRC_TSGRISM in memory: jwst's SOSS path needs CRDS references)
tso_aperture       jwst ``tso_photometry`` (synthetic GAIN, TAN WCS on the source)
=================  ======================================================================

The other steps (tso_pixel_timing, tso_background, tso_trace, tso_jitter, tso_centroid) have
no counterpart: their throughput (pixels per second) is compared with one pass over the
input at this machine's memory bandwidth (a large ``numpy.copyto``, read + write counted).
``tso_extract`` reads the product of ``tso_trace`` (as in a reduction).

Before simulating a case the script checks memory and disk: a case whose heaviest run (the
simulation or a step of ours, by the memory factors below) does not fit in the available
memory, or whose files do not fit on the disk, is cut to the largest number of integrations
that fits, and the row and the log say so with the arithmetic.  A jwst counterpart that
would not fit is left out (a comment in the table says why); the steps of ours still run on
the full case.

Usage::

    python benchmarks/bench_fullsize.py --cases soss                 # the full SOSS segment
    python benchmarks/bench_fullsize.py --cases all --scale 0.02     # every case, small
    python benchmarks/bench_fullsize.py --cases grism --steps tso_outlier --no-jwst
    python benchmarks/bench_fullsize.py --cases grism --workdir DIR --simulate-only  # then
    python benchmarks/bench_fullsize.py --cases grism --workdir DIR --keep   # time on those files
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from measured import run_command
from tso_steps.offline import offline_environment

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@dataclass
class Case:
    """One observation of the issue's table."""

    label: str
    mode: str
    nints: int
    ngroups: int
    products: tuple
    options: dict = field(default_factory=dict)
    half: int = 5  # rows either side of the trace in jwst's box


CASES = {
    "grism": Case("NIRCam SUBGRISM256 4-out", "NRC_TSGRISM", 1000, 5, ("rateints",),
                  {"subarray": "SUBGRISM256", "noutputs": 4}),
    "soss": Case("NIRISS SOSS SUBSTRIP256", "NIS_SOSS", 537, 9, ("rateints",), half=17),
    "nrs": Case("NIRSpec G395H SUB2048", "NRS_BRIGHTOBJ", 465, 70, ("ramp", "rateints"),
                {"element": "G395H"}),
    "miri": Case("MIRI LRS SLITLESSPRISM", "MIR_LRS-SLITLESS", 1000, 10, ("rateints",)),
    "img": Case("NIRCam SUB64P imaging", "NRC_TSIMAGE", 2000, 5, ("rateints",),
                {"subarray": "SUB64P", "element": "CLEAR"}),
}  # fmt: skip

#: step -> (input product, jwst counterpart or None)
STEPS = {
    "tso_jump": ("ramp", "jump"),
    "tso_pixel_timing": ("rateints", None),
    "tso_one_over_f": ("rateints", "clean_flicker_noise"),
    "tso_outlier": ("rateints", "outlier_detection"),
    "tso_background": ("rateints", None),
    "tso_trace": ("rateints", None),
    "tso_jitter": ("rateints", None),
    "tso_extract": ("trace", "extract_1d"),
    "tso_centroid": ("rateints", None),
    "tso_aperture": ("rateints", "tso_photometry"),
}
TAKES_MAXIMUM_CORES = {"tso_jump", "tso_outlier"}
SPECTRAL_ONLY = {"tso_trace", "tso_jitter", "tso_extract"}
IMAGING_ONLY = {"tso_centroid", "tso_aperture"}
#: Peak RSS / input file measured for the heaviest runs (docs/benchmarks.md; jwst jump 5.24x,
#: outlier_detection 4.25x, clean_flicker_noise 2.37x and the box extract_1d 2.28x on the full
#: SOSS segment; ours at most 1.40x there and 1.72x on 600 MiB files; the simulator holds its
#: products plus about half again).
MEMORY_FACTOR = {"jump": 5.3, "outlier_detection": 4.3, "clean_flicker_noise": 2.4,
                 "extract_1d": 2.7, "tso_photometry": 2.0, "ours": 1.8,
                 "simulate": 1.6}  # fmt: skip


def product_bytes(case, nints, kind):
    """Bytes of a simulated product: ramp (data + groupdq), rateints (6 float32/uint32 arrays)."""
    from tso_steps.simulate import get_mode

    spec = get_mode(case.mode)
    name = case.options.get("subarray", spec.default_subarray)
    ny, nx = next(s.shape for s in spec.subarrays if s.name == name)
    per_pixel = case.ngroups * 5 if kind == "ramp" else 24
    return nints * ny * nx * per_pixel


def plan(case, steps, jwst):
    """(step, product, counterpart) runs of a case."""
    imaging = case.mode == "NRC_TSIMAGE"
    runs = []
    for step in steps:
        product, counterpart = STEPS[step]
        if (imaging and step in SPECTRAL_ONLY) or (not imaging and step in IMAGING_ONLY):
            continue
        kinds = [product] if product != "rateints" else ["rateints"]
        if step in ("tso_one_over_f", "tso_pixel_timing") and "ramp" in case.products:
            kinds = ["ramp", "rateints"]
        for kind in kinds:
            if kind in case.products or (kind == "trace" and "rateints" in case.products):
                runs.append((step, kind, counterpart if jwst else None))
    return runs


def run_bytes(case, n, kind, counterpart=None):
    """Peak memory expected of one run (ours, or ``counterpart``) on ``n`` integrations, bytes."""
    sizes = {k: product_bytes(case, n, k) for k in case.products}
    factor = MEMORY_FACTOR.get(counterpart, MEMORY_FACTOR["ours"])
    return factor * sizes.get(kind, sizes["rateints"])


def fitting_nints(case, nints, runs, memory, disk):
    """Largest integration count whose simulation and tso-steps runs fit, and why.

    jwst's counterparts do not cut the case: one that does not fit is left out of the run
    (:func:`counterpart_fits`), so every step of ours still sees the full segment.
    """

    def needs(n):
        sizes = {k: product_bytes(case, n, k) for k in case.products}
        sim = MEMORY_FACTOR["simulate"] * sum(sizes.values())
        steps = [run_bytes(case, n, k) for _, k, _ in runs]
        files = sum(sizes.values()) + 2 * max(sizes.values())  # inputs, trace product, output
        return max([sim, *steps]), files

    mem, files = needs(nints)
    text = (
        f"{case.label} {nints} ints: needs {mem / 1e9:.1f} GB of memory (available "
        f"{memory / 1e9:.1f}) and {files / 1e9:.1f} GB of disk (free {disk / 1e9:.1f})"
    )
    n = nints
    while n > 2 and (needs(n)[0] > memory or needs(n)[1] > disk):
        n = int(n * 0.9)
    return n, text + ("" if n == nints else f": cut to {n} integrations")


def counterpart_fits(case, nints, kind, counterpart, memory):
    """Whether jwst's ``counterpart`` is expected to fit in ``memory``, and the arithmetic."""
    need = run_bytes(case, nints, kind, counterpart)
    return need <= memory, (
        f"jwst {counterpart} not run: it needs about {MEMORY_FACTOR[counterpart]}x the "
        f"file, {need / 1e9:.1f} GB, and {memory / 1e9:.1f} GB are available"
    )


def memory_bandwidth(nbytes=512 * 2**20, repeat=5):
    """Copy bandwidth of this machine, bytes/s (read + write of ``nbytes``), best of ``repeat``."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def available_memory():
    """MemAvailable of /proc/meminfo, bytes (the total memory elsewhere)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def simulate(case, nints, root, seed):
    """Write the case's products (and the jwst references) to ``root``; return their paths."""
    from bench_aperture import photometry_inputs
    from bench_extract import jwst_box_inputs
    from tso_steps.simulate import simulate_tso
    from tso_steps.simulate.references import write_noise_references

    sim = simulate_tso(
        case.mode, nints, case.ngroups, seed=seed, products=case.products, **case.options
    )
    paths = {}
    if sim.rateints is not None:
        if case.mode == "NRC_TSIMAGE":
            paths["gain"] = photometry_inputs(sim.rateints, sim.truth, root, "img")
        else:
            center = sim.truth.trace_center[0]
            paths["extract1d"] = jwst_box_inputs(sim.rateints, sim.truth, center, case.half, root)
    for kind in case.products:
        model = getattr(sim, kind)
        paths[kind] = root / f"jw09999001001_04101_00001-seg001_{case.mode.lower()}_{kind}.fits"
        model.save(paths[kind])
    if "ramp" in case.products:
        paths.update(write_noise_references(sim.ramp, sim.truth, root / "refs"))
    return paths


def worker(name, infile, outfile, extra):
    """Run one jwst step on one file in this process (the measured subprocess) and save it."""
    from stdatamodels.jwst import datamodels

    extra = json.loads(extra)
    with datamodels.open(infile) as model:
        if name == "clean_flicker_noise":
            from jwst.clean_flicker_noise import CleanFlickerNoiseStep

            overrides = {k: v for k, v in extra.items() if k.startswith("override_")}
            if overrides:
                # on a ramp, clean_flicker_noise makes its draft rate with a RampFitStep of
                # its own, which takes no overrides: hand it the synthetic references
                from jwst.ramp_fitting import RampFitStep

                default = RampFitStep.get_ref_override

                def override(self, reftype):
                    return overrides.get(f"override_{reftype}") or default(self, reftype)

                RampFitStep.get_ref_override = override
            result = CleanFlickerNoiseStep(
                skip=False, fit_method="median", override_flat="N/A", override_pastasoss="N/A"
            ).run(model)
        elif name == "outlier_detection":
            from jwst.outlier_detection import OutlierDetectionStep

            result = OutlierDetectionStep.call(model)
        elif name == "extract_1d":
            from jwst.extract_1d import Extract1dStep

            from bench_extract import JWST_BOX_OFFLINE

            if model.meta.exposure.type == "NIS_SOSS":  # jwst's SOSS path needs CRDS refs
                model.meta.exposure.type = "NRC_TSGRISM"
            result = Extract1dStep.call(
                model, override_extract1d=extra["extract1d"], **JWST_BOX_OFFLINE
            )
        elif name == "tso_photometry":
            from jwst.tso_photometry import TSOPhotometryStep

            table = TSOPhotometryStep.call(model, override_gain=extra["gain"])
            table.write(outfile.replace(".fits", ".ecsv"), overwrite=True)
            result = None
        else:
            raise ValueError(name)
        status = "COMPLETE"
        if result is not None:
            status = str(getattr(result.meta.cal_step, name, None) or "COMPLETE")
            result.save(outfile)
    print(json.dumps({"status": status}))


def run_step(step, counterpart, infile, paths, root, env, cores=None):
    """Measure ``strun step`` and the counterpart (None: not run) on ``infile``; return both.

    ``cores``: ``maximum_cores`` of the steps that take it (default: theirs).
    """
    out = root / "out"
    out.mkdir(exist_ok=True)
    log = root / f"{step}_{infile.stem}.log"
    cmd = [BIN / "strun", step, infile, f"--output_dir={out}"]
    if cores is not None and step in TAKES_MAXIMUM_CORES:
        cmd.append(f"--maximum_cores={cores}")
    ours = run_command(cmd, env, log)
    theirs = None
    if counterpart == "jump":
        cmd = [BIN / "strun", "jump", infile, f"--output_dir={out}"]
        cmd += [f"--{k}={v}" for k, v in paths.items() if k.startswith("override_")]
        theirs = run_command(cmd, env, root / f"jump_{infile.stem}.log")
    elif counterpart is not None:
        wanted = ("extract1d", "gain", "override_gain", "override_readnoise")
        extra = json.dumps({k: str(v) for k, v in paths.items() if k in wanted})
        cmd = [sys.executable, __file__, "--worker", counterpart, infile, out / "jwst.fits", extra]
        theirs = run_command(cmd, env, root / f"{counterpart}_{infile.stem}.log")
        theirs["status"] = json.loads(theirs["stdout"].strip().splitlines()[-1])["status"]
    for made in out.iterdir():
        if not made.name.endswith("_trace.fits"):
            made.unlink()
    return ours, theirs


def row(case, nints, step, kind, infile, ours, theirs, bandwidth, pixels):
    """One Markdown row: ours against the counterpart, or against one pass at memory speed."""
    size = infile.stat().st_size
    mb = 2**20
    head = (
        f"| {case.label} | {nints} x {case.ngroups} | {step} | {kind} | {size / mb:.0f} | "
        f"{ours['process_seconds']:.1f} | {ours['cpu_seconds']:.1f} | "
        f"{ours['peak_rss_mb'] * mb / size:.2f} |"
    )
    if theirs is not None:
        status = theirs.get("status", "COMPLETE")
        return head + (
            f" {theirs['process_seconds']:.1f} | {theirs['peak_rss_mb'] * mb / size:.2f} | "
            f"{ours['process_seconds'] / theirs['process_seconds']:.2f} | - | - |"
            + ("" if status == "COMPLETE" else f" jwst: {status}")
        )
    rate = pixels / ours["process_seconds"]
    limit = pixels / (size / bandwidth)
    return head + f" - | - | - | {rate / 1e6:.3g} | {rate / limit:.3g} |"


@contextlib.contextmanager
def case_directory(args, key, case, nints):
    """Where a case's files live: kept under ``--workdir`` with ``--keep``, else temporary."""
    if args.keep or args.simulate_only:
        root = Path(args.workdir) / f"{key}_{nints}x{case.ngroups}_seed{args.seed}"
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="bench_fullsize_", dir=args.workdir) as tmp:
        yield Path(tmp)


def load_paths(root):
    """The products a kept case directory already holds (None: simulate them)."""
    manifest = root / "paths.json"
    if not manifest.exists():
        return None
    paths = json.loads(manifest.read_text())
    return {k: (v if k == "nints" else Path(v)) for k, v in paths.items()}


def main(argv=None):
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(*sys.argv[2:6])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="all", help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--steps", nargs="*", default=list(STEPS))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the integrations")
    parser.add_argument("--no-jwst", action="store_true", help="only the tso-steps steps")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR"), help="where files go")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument(
        "--keep", action="store_true",
        help="keep each case's files under --workdir and reuse them on the next run",
    )  # fmt: skip
    parser.add_argument(
        "--maximum-cores",
        help="maximum_cores of tso_jump and tso_outlier (default: the steps' own, 1)",
    )
    parser.add_argument(
        "--no-cut",
        action="store_true",
        help="never cut a case to fit the memory estimate (the measured peak decides)",
    )
    parser.add_argument(
        "--simulate-only", action="store_true", help="write the cases' files (kept) and stop"
    )
    args = parser.parse_args(argv)
    if (args.keep or args.simulate_only) and not args.workdir:
        parser.error("--keep and --simulate-only need --workdir")
    keys = list(CASES) if args.cases == "all" else args.cases.split(",")
    bandwidth = memory_bandwidth()
    lines = [
        f"memory bandwidth (copy, read + write): {bandwidth / 1e9:.1f} GB/s; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start",
        "",
        "| case | ints x groups | step | input | file MiB | wall s | CPU s | peak RSS / file "
        "| jwst wall s | jwst RSS / file | wall ours / jwst | Mpix/s | of memory speed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for key in keys:
        case = CASES[key]
        runs = plan(case, args.steps, not args.no_jwst)
        wanted = max(3, round(case.nints * args.scale))
        with case_directory(args, key, case, wanted) as root:
            env = offline_environment(root / "crds")
            memory = 0.8 * available_memory()
            paths = load_paths(root)
            if paths is None:
                disk = shutil.disk_usage(root).free
                nints, why = fitting_nints(case, wanted, runs, memory, disk)
                if args.no_cut and nints != wanted:
                    nints, why = wanted, why + " (--no-cut: run at full size anyway)"
                print(f"<!-- {why} -->", flush=True)
                start = time.perf_counter()
                paths = {"nints": nints, **simulate(case, nints, root, args.seed)}
                (root / "paths.json").write_text(json.dumps({k: str(v) for k, v in paths.items()}))
                print(f"<!-- simulated in {time.perf_counter() - start:.0f} s -->", flush=True)
            else:
                print(f"<!-- {case.label}: reusing the files in {root} -->", flush=True)
            nints = int(paths.pop("nints"))
            if args.simulate_only:
                continue
            for step, kind, counterpart in runs:
                infile = paths[kind] if kind != "trace" else root / "out" / (
                    paths["rateints"].name.replace("_rateints.fits", "_trace.fits"))  # fmt: skip
                if not infile.exists():
                    print(f"<!-- {step}: no {kind} input (run tso_trace first) -->")
                    continue
                if counterpart is not None:
                    fits, why = counterpart_fits(case, nints, kind, counterpart, memory)
                    if not fits:
                        print(f"<!-- {why} -->", flush=True)
                        counterpart = None
                ours, theirs = run_step(
                    step, counterpart, infile, paths, root, env, args.maximum_cores
                )
                pixels = product_bytes(case, nints, kind if kind == "ramp" else "rateints")
                pixels //= case.ngroups * 5 if kind == "ramp" else 24
                pixels *= case.ngroups if kind == "ramp" else 1
                line = row(case, nints, step, kind, infile, ours, theirs, bandwidth, pixels)
                lines.append(line)
                print(line, flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
