"""The tso pipelines on one segment, by ``strun``, against jwst's calwebb pipelines (issue 15).

A case of :data:`bench_fullsize.CASES` is simulated as a ramp (the ``_uncal`` product) and
every stage runs twice on the same input file, each run ``strun PIPELINE.asdf FILE`` in its
own process (:func:`measured.run_command`: wall, CPU and peak resident memory of the whole
process, imports and FITS I/O included):

=============  ===================================  =============================================
stage          tso-steps                            jwst
=============  ===================================  =============================================
1  uncal       ``tso_detector1`` (tso_one_over_f,   ``calwebb_detector1`` (its ``jump``, given the
               tso_jump; jwst's jump skipped)       synthetic GAIN and READNOISE references)
2  rateints    ``tso_spec2`` (tso_background,       ``calwebb_spec2``
               tso_trace, tso_jitter)
3  calints     ``tso_tso3`` (tso_outlier,           ``calwebb_tso3`` (outlier_detection, box
               tso_extract, white_light)            extract_1d from a JSON EXTRACT1D reference)
=============  ===================================  =============================================

Both sides skip the same jwst steps offline (:data:`tso_steps.pipelines.simulated.OFFLINE_SKIPS`:
the steps that need CRDS calibration references the simulator has nothing for) and both replace
``assign_wcs`` by :class:`~tso_steps.pipelines.simulated.SimulationWcsStep`, so the comparison is
of the steps that do run.  Stage 2 of both sides reads the ``_rateints`` that tso_detector1
made, stage 3 the ``_calints`` that tso_spec2 made, with the minimal wavelength WCS jwst's box
extraction needs attached (``bench_extract.jwst_box_inputs``).  Stage 1 of jwst runs jwst's
``jump``, which our pipeline replaces; the other two stages of jwst run only the jwst steps our
pipelines also run, so there the difference is the cost of our steps.

Before simulating, the case is cut to the integrations that fit in memory and on disk (the
same arithmetic as ``bench_fullsize.py``, with jwst ``jump``'s measured 5.3x the ramp).

Usage::

    python benchmarks/bench_pipelines.py --cases grism             # a full NIRCam segment
    python benchmarks/bench_pipelines.py --cases grism,miri --scale 0.05
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jwst.pipeline import Detector1Pipeline, Spec2Pipeline, Tso3Pipeline

from bench_fullsize import CASES, available_memory, fitting_nints
from measured import run_command
from tso_steps.offline import offline_environment
from tso_steps.pipelines.simulated import OFFLINE_SKIPS, SimulationWcsStep, write_offline_configs

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ROOT = "jw09999001001_04101_00001-seg001"


# Offline, jwst's pipelines are run as ours are: references are not prefetched (prefetching
# fails with no CRDS server even when every reference a running step needs is an override).


class JwstDetector1(Detector1Pipeline):
    """jwst's calwebb_detector1, references not prefetched."""

    prefetch_references = False


class JwstSimulationSpec2(Spec2Pipeline):
    """jwst's calwebb_spec2 with the simulation's stand-in for ``assign_wcs``."""

    prefetch_references = False
    step_defs = {**Spec2Pipeline.step_defs, "assign_wcs": SimulationWcsStep}


class JwstTso3(Tso3Pipeline):
    """jwst's calwebb_tso3, references not prefetched."""

    prefetch_references = False


def _path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def write_jwst_configs(directory, references, extract1d):
    """ASDF files running jwst's calwebb pipelines with the offline skips of ours."""
    import asdf

    from bench_extract import JWST_BOX_OFFLINE

    module = "bench_pipelines" if __name__ == "__main__" else __name__
    specs = {
        "detector1": (JwstDetector1, f"{module}.JwstDetector1", "tso_detector1",
                      {"ramp_fit": references, "jump": references}),
        "spec2": (JwstSimulationSpec2, f"{module}.JwstSimulationSpec2", "tso_spec2",
                  {"assign_wcs": {}}),
        "tso3": (JwstTso3, f"{module}.JwstTso3", "tso_tso3",
                 {"white_light": {"override_wavelengthrange": "N/A"},
                  "extract_1d": {"override_extract1d": str(extract1d), **JWST_BOX_OFFLINE}}),
    }  # fmt: skip
    written = {}
    for stage, (cls, class_path, alias, extra) in specs.items():
        skips = [s for s in OFFLINE_SKIPS[alias] if not (stage == "tso3" and s == "extract_1d")]
        steps = []
        for name in dict.fromkeys([*skips, *extra]):
            parameters = {"skip": True} if name in skips else {}
            parameters.update(extra.get(name, {}))
            steps.append({"class": _path(cls.step_defs[name]), "name": name,
                          "parameters": parameters})  # fmt: skip
        tree = {"class": class_path, "name": cls.__name__, "parameters": {}, "steps": steps}
        written[stage] = Path(directory) / f"jwst_{stage}_offline.asdf"
        asdf.AsdfFile(tree).write_to(written[stage])
    return written


def stage3_input(calints, truth, case, directory):
    """The calints with jwst's box inputs attached, its association and the EXTRACT1D file."""
    from stdatamodels.jwst import datamodels

    from bench_extract import jwst_box_inputs
    from tso_steps.pipelines.tso3 import write_association

    directory.mkdir(parents=True, exist_ok=True)
    with datamodels.open(calints) as model:
        ref = jwst_box_inputs(model, truth, truth.trace_center[0], case.half, directory)
        model.save(directory / calints.name)
    asn = write_association([calints.name], ROOT, directory / f"{ROOT}_tso3_asn.json")
    return directory / calints.name, asn, ref


def measure(config, infile, outdir, env, log):
    """``strun CONFIG INFILE`` in its own process."""
    outdir.mkdir(parents=True, exist_ok=True)
    return run_command([BIN / "strun", config, infile, f"--output_dir={outdir}"], env, log)


def row(case, nints, stage, kind, infile, ours, theirs):
    """One Markdown row: ours against jwst on the same input."""
    size = infile.stat().st_size
    mb = 2**20
    return (
        f"| {case.label} | {nints} x {case.ngroups} | {stage} | {kind} | {size / mb:.0f} | "
        f"{ours['process_seconds']:.1f} | {ours['cpu_seconds']:.1f} | "
        f"{ours['peak_rss_mb'] * mb / size:.2f} | {theirs['process_seconds']:.1f} | "
        f"{theirs['cpu_seconds']:.1f} | {theirs['peak_rss_mb'] * mb / size:.2f} | "
        f"{ours['process_seconds'] / theirs['process_seconds']:.2f} |"
    )


def run_case(case, nints, root, seed, env, lines):
    """Simulate one case and measure its three stages; append the rows to ``lines``."""
    from tso_steps.simulate import simulate_tso
    from tso_steps.simulate.references import write_noise_references

    start = time.perf_counter()
    sim = simulate_tso(case.mode, nints, case.ngroups, seed=seed, products=("ramp",),
                       **case.options)  # fmt: skip
    uncal = root / f"{ROOT}_{case.mode.lower()}_uncal.fits"
    sim.ramp.meta.filename = uncal.name
    sim.ramp.save(uncal)
    truth = sim.truth
    references = {
        k: str(v) for k, v in write_noise_references(sim.ramp, truth, root / "refs").items()
    }
    del sim
    print(f"<!-- simulated in {time.perf_counter() - start:.0f} s -->", flush=True)
    ours_cfg = write_offline_configs(root / "config", references)
    stem = uncal.name.replace("_uncal.fits", "")

    def stage(label, kind, ours_file, jwst_file, infile, jwst_infile=None):
        ours = measure(ours_file, infile, root / "ours", env, root / f"ours_{label}.log")
        theirs = measure(jwst_file, jwst_infile or infile, root / "jwst", env,
                         root / f"jwst_{label}.log")  # fmt: skip
        line = row(case, nints, label, kind, infile, ours, theirs)
        lines.append(line)
        print(line, flush=True)
        for product in (root / "jwst").glob("*"):
            product.unlink()  # jwst's products are not read again: keep the disk

    # stage 3's EXTRACT1D reference is only known after stage 2; write jwst's files then
    jwst_cfg = write_jwst_configs(root / "config", references, root / "stage3" / "none.json")
    stage("detector1", "uncal", ours_cfg["tso_detector1"], jwst_cfg["detector1"], uncal)
    rateints = root / "ours" / f"{stem}_rateints.fits"
    stage("spec2", "rateints", ours_cfg["tso_spec2"], jwst_cfg["spec2"], rateints)
    calints = root / "ours" / f"{stem}_calints.fits"
    calints, asn, ref = stage3_input(calints, truth, case, root / "stage3")
    jwst_cfg = write_jwst_configs(root / "config", references, ref)
    for product in (root / "ours").glob("*"):
        product.unlink()  # keep the disk for stage 3
    ours = measure(ours_cfg["tso_tso3"], asn, root / "ours", env, root / "ours_tso3.log")
    theirs = measure(jwst_cfg["tso3"], asn, root / "jwst", env, root / "jwst_tso3.log")
    line = row(case, nints, "tso3", "calints", calints, ours, theirs)
    lines.append(line)
    print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="grism", help="comma list of grism, nrs, miri")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the integrations")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR"), help="where files go")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the files and logs")
    args = parser.parse_args(argv)
    lines = [
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start",
        "",
        "| case | ints x groups | stage | input | file MiB | ours wall s | ours CPU s "
        "| ours RSS / file | jwst wall s | jwst CPU s | jwst RSS / file | wall ours / jwst |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for key in args.cases.split(","):
        case = CASES[key]
        if case.mode in ("NRC_TSIMAGE", "NIS_SOSS"):
            raise SystemExit(f"{key}: only grism, nrs and miri (jwst's SOSS and imaging stage 3 "
                             "need CRDS references)")  # fmt: skip
        case.products = ("ramp", "rateints")
        if args.keep:
            where = contextlib.nullcontext(
                tempfile.mkdtemp(prefix="bench_pipelines_", dir=args.workdir)
            )
        else:
            where = tempfile.TemporaryDirectory(prefix="bench_pipelines_", dir=args.workdir)
        with where as tmp:
            root = Path(tmp)
            env = offline_environment(root / "crds")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
            runs = [("jump", "ramp", "jump"), ("pipelines", "rateints", None)]
            wanted = max(3, round(case.nints * args.scale))
            nints, why = fitting_nints(case, wanted, runs, 0.8 * available_memory(),
                                       shutil.disk_usage(root).free)  # fmt: skip
            print(f"<!-- {why} -->", flush=True)
            run_case(case, nints, root, args.seed, env, lines)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
