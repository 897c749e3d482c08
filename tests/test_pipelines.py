"""The tso pipelines: configuration, splicing, provenance, and end-to-end runs on simulations.

The end-to-end tests run each mode's simulated ramp through tso_detector1, tso_spec2 or
tso_image2, and tso_tso3 with the mode's ASDF files from config/pipelines/.  Offline, the
jwst steps that need CRDS reference files are skipped (listed in
``tso_steps.pipelines.simulated.OFFLINE_SKIPS``; the simulator injects nothing they would
correct), ramp_fit gets synthetic GAIN/READNOISE files, and calwebb_spec2's assign_wcs is
replaced by a stand-in that only records it as done (calwebb_spec2 aborts without it).
"""

import importlib
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.table import Table
from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Spec2Pipeline, Tso3Pipeline
from stdatamodels.jwst import datamodels
from stpipe._cmdline import _build_step_from_args, _config_and_class_from_cmdline

from tso_steps import TSOJumpStep, TSOOutlierStep
from tso_steps.pipelines import (
    ProvenanceCarrier,
    TSODetector1Pipeline,
    TSOImage2Pipeline,
    TSOSpec2Pipeline,
    TSOTso3Pipeline,
)
from tso_steps.pipelines.simulated import OFFLINE_SKIPS, run_simulated_chain
from tso_steps.scoring import fit_transit_scale
from tso_steps.simulate import Jitter, simulate_tso
from tso_steps.vectors import add_vectors, get_vectors

CONFIG = Path(__file__).resolve().parent.parent / "config"
PIPELINES = {
    "tso_detector1": TSODetector1Pipeline,
    "tso_spec2": TSOSpec2Pipeline,
    "tso_image2": TSOImage2Pipeline,
    "tso_tso3": TSOTso3Pipeline,
}
MODES = {
    # mode: (config folder, simulate_tso keywords)
    "NRC_TSGRISM": ("nircam_grism", {"subarray": "SUBGRISM64"}),
    "NRC_TSIMAGE": ("nircam_image", {"subarray": "SUB64P"}),
    "NIS_SOSS": ("niriss_soss", {"subarray": "SUBSTRIP96", "crop": (96, 512)}),
    "NRS_BRIGHTOBJ": ("nirspec_bots", {"subarray": "SUB2048", "crop": (32, 512)}),
    "MIR_LRS-SLITLESS": ("miri_lrs", {"crop": (416, 72)}),
}


def _command_line(args):
    """Build (not run) a step from strun-style arguments, as strun does."""
    step_class, config, name, config_file, parser, known = _config_and_class_from_cmdline(args)
    step, _ = _build_step_from_args(step_class, config, name, config_file, parser, known, args)
    return step


# --- configuration and splicing -----------------------------------------------------------


def test_replaced_jwst_step_is_skipped_by_default_and_can_be_turned_back_on():
    pipeline = TSODetector1Pipeline()
    assert pipeline.jump.skip and not pipeline.tso_jump.skip and not pipeline.tso_one_over_f.skip
    assert isinstance(pipeline.tso_jump, TSOJumpStep)
    both = TSODetector1Pipeline(steps={"jump": {"skip": False}})
    assert not both.jump.skip
    # jwst's own pipeline is untouched
    assert not Detector1Pipeline().jump.skip


def test_our_steps_are_spliced_as_hooks_of_their_host():
    pipeline = TSODetector1Pipeline()
    assert [h.placement.name for h in pipeline.jump._pre_hooks] == ["tso_one_over_f"]
    assert [h.placement.name for h in pipeline.jump._post_hooks] == ["tso_jump"]
    spec2 = TSOSpec2Pipeline()
    names = [h.placement.name for h in spec2.barshadow._post_hooks]
    assert names == ["tso_background", "tso_trace", "tso_jitter"]
    tso3 = TSOTso3Pipeline()
    assert tso3.extract_1d.skip and tso3.tso_photometry.skip and tso3.outlier_detection.skip
    assert isinstance(tso3.tso_outlier, TSOOutlierStep)


def test_parameters_and_skips_are_set_from_the_command_line():
    step = _command_line(
        [
            "tso_detector1",
            "--steps.tso_jump.rejection_threshold=5",
            "--steps.tso_one_over_f.skip=true",
            "--steps.jump.skip=false",
        ]
    )
    assert isinstance(step, TSODetector1Pipeline)
    assert step.tso_jump.rejection_threshold == 5.0
    assert step.tso_one_over_f.skip
    assert not step.jump.skip
    default = _command_line(["tso_detector1"])
    assert default.jump.skip and default.tso_jump.rejection_threshold == 4.25


def test_enabling_a_replaced_step_and_its_replacement_is_an_error():
    pipeline = TSOTso3Pipeline(steps={"extract_1d": {"skip": False}})
    with pytest.raises(ValueError, match="extract_1d and steps.tso_extract are both enabled"):
        pipeline.check_placements()
    TSOTso3Pipeline(steps={"extract_1d": {"skip": False}, "tso_extract": {"skip": True}})


@pytest.mark.parametrize("path", sorted((CONFIG / "hooks").glob("*.asdf")), ids=lambda p: p.stem)
def test_hook_files_add_our_steps_to_the_plain_calwebb_pipelines(path):
    pipeline_class = {
        "calwebb_detector1_tso": Detector1Pipeline,
        "calwebb_spec2_tso": Spec2Pipeline,
        "calwebb_image2_tso": Image2Pipeline,
        "calwebb_tso3_tso": Tso3Pipeline,
    }[path.stem]
    pipeline = pipeline_class.from_config_file(str(path))
    assert type(pipeline) is pipeline_class
    with asdf.open(path) as af:
        entries = af.tree["steps"]
        expected = [(e["name"], e["parameters"]) for e in entries]
    for host, parameters in expected:
        step = getattr(pipeline, host)
        assert step.skip == parameters.get("skip", False)
        for kind in ("pre_hooks", "post_hooks"):
            hooks = getattr(step, f"_{kind}")
            assert [f"tso_steps.{type(h).__name__}" for h in hooks] == parameters.get(kind, [])


def _mode_config_files(folder):
    files = sorted((CONFIG / "pipelines" / folder).glob("*.asdf"))
    return {path.stem: path for path in files}


@pytest.mark.parametrize("folder", [f for f, _ in MODES.values()])
def test_each_mode_has_loadable_pipeline_files(folder):
    files = _mode_config_files(folder)
    stage2 = "tso_image2" if folder == "nircam_image" else "tso_spec2"
    assert set(files) == {"tso_detector1", stage2, "tso_tso3"}
    for alias, path in files.items():
        with asdf.open(path) as af:
            module, name = af.tree["class"].rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is PIPELINES[alias]
        pipeline = PIPELINES[alias].from_config_file(str(path))
        assert isinstance(pipeline, PIPELINES[alias])


# --- provenance ---------------------------------------------------------------------------


def test_provenance_is_restamped_without_overwriting():
    source = datamodels.CubeModel((4, 3, 3))
    source.meta.exposure.integration_start = 1
    source.meta.cal_step.tso_jump = "COMPLETE"
    add_vectors(source, {"n_jumps": np.arange(4)})

    class Alias:
        class_alias, skip = "tso_jump", False

    carrier = ProvenanceCarrier()
    carrier.capture(source, Alias())
    product = datamodels.CubeModel((2, 3, 3))  # integrations 3 and 4 of the exposure
    product.meta.exposure.integration_start = 3
    product.meta.cal_step.tso_outlier = "SKIPPED"
    add_vectors(product, {"trace_shift": [0.1, 0.2]})
    carrier.restamp(product)
    assert product.meta.cal_step.tso_jump == "COMPLETE"
    assert product.meta.cal_step.tso_outlier == "SKIPPED"
    vectors = get_vectors(product)
    assert list(vectors["integration_number"]) == [3, 4]
    assert list(vectors["n_jumps"]) == [2, 3]
    assert np.allclose(vectors["trace_shift"], [0.1, 0.2])


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_simulated_exposure_runs_end_to_end_and_recovers_the_transit(mode, tmp_path):
    folder, keywords = MODES[mode]
    sim = simulate_tso(
        mode,
        nints=60,
        ngroups=4,
        seed=11,
        jitter=Jitter(rms=0.02),
        products=("ramp",),
        **keywords,
    )
    files = _mode_config_files(folder)
    chain = run_simulated_chain(sim, tmp_path, config_files=files)
    imaging = sim.truth.dispersion_axis is None

    rateints = datamodels.open(chain.rateints)
    assert rateints.meta.cal_step.tso_jump == "COMPLETE"
    assert rateints.meta.cal_step.tso_one_over_f == "COMPLETE"
    assert rateints.meta.cal_step.jump == "SKIPPED"
    assert "n_jumps" in get_vectors(rateints).colnames
    calints = datamodels.open(chain.calints)
    stage2 = "tso_centroid" if imaging else "tso_jitter"
    assert getattr(calints.meta.cal_step, stage2) == "COMPLETE"

    flux = chain.light_curve_flux()
    assert flux.shape == (sim.truth.nints,)
    fit = fit_transit_scale(flux, sim.truth.light_curve)
    # injected depth recovered within 3 sigma, and measured to better than 10 %
    assert abs(fit.pull) < 3, fit
    assert fit.scale_error < 0.1, fit

    vectors = Table.read(chain.vectors, format="ascii.ecsv")
    assert len(vectors) == sim.truth.nints
    assert "int_mid_BJD_TDB" in vectors.colnames
    if not imaging:
        x1dints = datamodels.open(chain.x1dints)
        assert x1dints.meta.cal_step.tso_extract == "COMPLETE"
        assert x1dints.meta.cal_step.tso_jump == "COMPLETE"
        assert "trace_shift" in get_vectors(x1dints).colnames
    assert set(OFFLINE_SKIPS) == {"tso_detector1", "tso_spec2", "tso_image2", "tso_tso3"}
