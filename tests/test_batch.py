"""Tests of tso_steps.batch: planning, dask execution, identity with serial runs, resume."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from batch_support import arrays, needs_dask
from tso_steps import TSOJumpStep, TSOOutlierStep
from tso_steps.batch import (
    PlanError,
    group_exposures,
    halo_integrations,
    join_segments,
    run_batch,
    split_exposure,
)
from tso_steps.batch import execute as batch_execute
from tso_steps.batch.run import resolve_step
from tso_steps.batch.task import build_step
from tso_steps.cli import main

JUMP = 4
OUTLIER = 16


# --- planning --------------------------------------------------------------------------


def test_segments_are_grouped_into_one_exposure_in_integration_order(segmented_exposure):
    whole, segments = segmented_exposure["uncal"]
    (split,) = group_exposures([segments[2], segments[0], segments[1]])
    assert [s.path for s in split.segments] == segments
    assert [(s.int_start, s.int_end) for s in split.segments] == [(1, 14), (15, 27), (28, 40)]
    assert [s.segment_number for s in split.segments] == [1, 2, 3]
    assert {s.nints for s in split.segments} == {40}
    assert split.contiguous
    # the whole file is the same exposure by name but overlaps the segments
    (mixed,) = group_exposures([whole, *segments])
    assert len(mixed.segments) == 4 and not mixed.contiguous
    with pytest.raises(PlanError, match="given twice"):
        group_exposures([segments[0], segments[0]])


def test_unreadable_file_is_reported_not_raised(tmp_path):
    bad = tmp_path / "broken_uncal.fits"
    bad.write_text("not a FITS file")
    unreadable = []
    assert group_exposures([bad], unreadable) == []
    assert unreadable and "cannot read a FITS header" in unreadable[0][1]


def test_halo_comes_from_the_step_rules():
    assert halo_integrations("tso_jump", {"rolling_window_width": 25}, 40) == 40
    assert halo_integrations("tso_outlier", {"rolling_window_width": 7}, 120) == 120
    assert halo_integrations("tso_trace", {}, 40) is None


def test_join_then_split_restores_every_segment(segmented_exposure):
    _, segments = segmented_exposure["rateints"]
    models = [datamodels.open(p) for p in segments]
    joined = join_segments(models)
    assert joined.data.shape[0] == 40 and len(joined.int_times) == 40
    assert (joined.meta.exposure.integration_start, joined.meta.exposure.integration_end) == (1, 40)
    for piece, model in zip(split_exposure(joined, models), models, strict=True):
        np.testing.assert_array_equal(piece.data, model.data)
        np.testing.assert_array_equal(piece.dq, model.dq)
        np.testing.assert_array_equal(
            piece.int_times["int_mid_MJD_UTC"], model.int_times["int_mid_MJD_UTC"]
        )
        assert piece.meta.exposure.segment_number == model.meta.exposure.segment_number


def test_workers_run_with_one_core():
    step = build_step(resolve_step("tso_jump"), {"maximum_cores": "all"}, None)
    assert step.maximum_cores == "1"
    pipeline = build_step(resolve_step("tso_detector1"), {}, None)
    assert pipeline.tso_jump.maximum_cores == "1"
    assert pipeline.ramp_fit.maximum_cores == "1"
    assert pipeline.jump.maximum_cores == "1"


def test_bad_parameter_is_one_clear_error(segmented_exposure, tmp_path):
    whole, _ = segmented_exposure["uncal"]
    with pytest.raises(Exception, match="rejection_threshold"):
        run_batch("tso_jump", [whole], tmp_path, workers=1, params=["rejection_threshold=-3"])
    with pytest.raises(ValueError, match="not a registered step"):
        resolve_step("tso_no_such_step")
    args = ["batch", "tso_jump", whole, "--output-dir", str(tmp_path), "--workers", "1"]
    assert main([*args, "--param", "rejection_threshold=-3", "--quiet"]) == 2
    assert main([*args, "--param", "no_equals_sign", "--quiet"]) == 2
    assert main(["batch", "tso_no_such_step", whole, "--output-dir", str(tmp_path)]) == 2


# --- runs on the cluster ---------------------------------------------------------------


@needs_dask
def test_products_are_named_and_identical_as_serial_step_runs(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, segments = segmented_exposure["rateints"]
    files = [whole, *segments]
    summary = run_batch("tso_outlier", [whole], tmp_path / "batch", scheduler=dask_scheduler)
    assert list(summary["status"]) == ["done"]
    reference = tmp_path / "serial"
    TSOOutlierStep.call(whole, save_results=True, output_dir=str(reference))
    names = sorted(p.name for p in reference.iterdir())
    assert (
        names == sorted(summary["product"]) == ["jw09999001001_01101_00001_nrcalong_crfints.fits"]
    )
    ours, theirs = arrays(tmp_path / "batch" / names[0]), arrays(reference / names[0])
    assert set(ours) == {"data", "dq", "err"}
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])
    assert (ours["dq"] & OUTLIER).sum() > 0
    assert len(files) == 4


@needs_dask
def test_three_segment_jump_flags_equal_the_one_file_flags(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, segments = segmented_exposure["uncal"]
    summary = run_batch("tso_jump", segments, tmp_path, scheduler=dask_scheduler)
    assert list(summary["status"]) == ["done"] * 3
    assert list(summary["product"]) == [Path(s).name.replace("_uncal", "_jump") for s in segments]
    one_file = TSOJumpStep.call(whole)
    groupdq = np.concatenate([arrays(tmp_path / p)["groupdq"] for p in summary["product"]])
    assert ((one_file.groupdq & JUMP) > 0).sum() > 20
    np.testing.assert_array_equal(groupdq, one_file.groupdq)
    # without the neighbouring segments the flags would differ
    alone = np.concatenate([TSOJumpStep.call(s).groupdq for s in segments])
    assert not np.array_equal(alone, one_file.groupdq)
    with datamodels.open(tmp_path / summary["product"][1]) as model:
        assert (model.meta.exposure.integration_start, model.meta.exposure.integration_end) == (
            15,
            27,
        )
        assert model.meta.exposure.segment_number == 2
        assert len(model.int_times) == 13 and len(model.tso_vectors) == 13
        assert model.meta.cal_step.tso_jump == "COMPLETE"


@needs_dask
def test_three_segment_outlier_flags_equal_the_one_file_flags(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, segments = segmented_exposure["rateints"]
    summary = run_batch("tso_outlier", segments, tmp_path, scheduler=dask_scheduler)
    one_file = TSOOutlierStep.call(whole)
    dq = np.concatenate([arrays(tmp_path / p)["dq"] for p in summary["product"]])
    data = np.concatenate([arrays(tmp_path / p)["data"] for p in summary["product"]])
    assert ((one_file.dq & OUTLIER) > 0).sum() > 10
    np.testing.assert_array_equal(dq, one_file.dq)
    np.testing.assert_array_equal(data, one_file.data)


@needs_dask
def test_rerun_skips_same_provenance_and_force_redoes(
    segmented_exposure, dask_scheduler, tmp_path, caplog
):
    whole, _ = segmented_exposure["uncal"]
    first = run_batch("tso_jump", [whole], tmp_path, scheduler=dask_scheduler)
    product = tmp_path / first["product"][0]
    stamp = product.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="stpipe.tso_steps.batch"):
        again = run_batch("tso_jump", [whole], tmp_path, scheduler=dask_scheduler)
    assert list(again["status"]) == ["skipped"]
    assert "same hash" in caplog.text
    assert "1/1 finished (0 done, 1 skipped, 0 failed)" in caplog.text
    assert product.stat().st_mtime_ns == stamp
    forced = run_batch("tso_jump", [whole], tmp_path, scheduler=dask_scheduler, force=True)
    assert list(forced["status"]) == ["done"] and product.stat().st_mtime_ns != stamp
    changed = run_batch(
        "tso_jump", [whole], tmp_path, scheduler=dask_scheduler, params={"rejection_threshold": 6}
    )
    assert list(changed["status"]) == ["done"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


@needs_dask
def test_provenance_round_trips_through_save_and_load(segmented_exposure, dask_scheduler, tmp_path):
    whole, _ = segmented_exposure["uncal"]
    summary = run_batch(
        "tso_jump", [whole], tmp_path, scheduler=dask_scheduler, params=["rejection_threshold=5"]
    )
    with datamodels.open(tmp_path / summary["product"][0]) as model:
        node = model.meta.instance["tso_steps_batch"]
        model.save(tmp_path / "copy.fits")
    assert len(node["run_hash"]) == 64
    assert node["inputs"] == [Path(whole).name]
    assert node["step"] == "tso_steps.jump.step.TSOJumpStep"
    assert json.loads(node["parameters"]) == {"rejection_threshold": "5"}
    assert "jwst" in json.loads(node["versions"])
    assert node["worker"].startswith("tcp://127.0.0.1")
    with datamodels.open(tmp_path / "copy.fits") as copy:
        assert copy.meta.instance["tso_steps_batch"]["run_hash"] == node["run_hash"]


@needs_dask
def test_bad_file_fails_alone_and_sets_the_exit_code(segmented_exposure, dask_scheduler, tmp_path):
    whole, _ = segmented_exposure["uncal"]
    rateints, _ = segmented_exposure["rateints"]
    broken = tmp_path / "broken_uncal.fits"
    broken.write_text("not a FITS file")
    summary = run_batch(
        "tso_jump", [whole, rateints, broken], tmp_path / "out", scheduler=dask_scheduler
    )
    status = dict(zip([Path(f).name for f in summary["file"]], summary["status"], strict=True))
    assert status[Path(whole).name] == "done"
    assert status[Path(rateints).name] == status["broken_uncal.fits"] == "failed"
    errors = dict(zip([Path(f).name for f in summary["file"]], summary["error"], strict=True))
    assert "4-D" in errors[Path(rateints).name] or "dimensions" in errors[Path(rateints).name]
    assert "cannot read a FITS header" in errors["broken_uncal.fits"]
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if not p.name.endswith("_jump.fits")]
    assert leftovers == [".tso_steps_batch"]  # no staging folder, no partial product
    code = main(["batch", "tso_jump", whole, str(broken), "--output-dir", str(tmp_path / "out"),
                 "--scheduler", dask_scheduler, "--quiet"])  # fmt: skip
    assert code == 1
    code = main(
        [
            "batch",
            "tso_jump",
            whole,
            "--output-dir",
            str(tmp_path / "out"),
            "--scheduler",
            dask_scheduler,
        ]
    )
    assert code == 0


@needs_dask
def test_sweep_writes_one_folder_per_combination(segmented_exposure, dask_scheduler, tmp_path):
    whole, _ = segmented_exposure["rateints"]
    summary = run_batch(
        "tso_outlier",
        [whole],
        tmp_path,
        scheduler=dask_scheduler,
        sweep=["rejection_threshold=4,8"],
    )
    assert sorted(summary["sweep"]) == ["rejection_threshold-4", "rejection_threshold-8"]
    flags = {}
    for folder in ("rejection_threshold-4", "rejection_threshold-8"):
        (path,) = (tmp_path / folder).glob("*_crfints.fits")
        flags[folder] = (arrays(path)["dq"] & OUTLIER > 0).sum()
        reference = TSOOutlierStep.call(whole, rejection_threshold=float(folder.split("-")[1]))
        assert flags[folder] == ((reference.dq & OUTLIER) > 0).sum()
    assert flags["rejection_threshold-4"] > flags["rejection_threshold-8"]


@needs_dask
def test_asdf_config_runs_like_step_call_with_the_config(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, _ = segmented_exposure["rateints"]
    config = tmp_path / "outlier.asdf"
    TSOOutlierStep(rejection_threshold=6.0, rolling_window_width=9).export_config(config)
    summary = run_batch(str(config), [whole], tmp_path / "out", scheduler=dask_scheduler)
    reference = TSOOutlierStep.call(whole, config_file=str(config))
    np.testing.assert_array_equal(
        arrays(tmp_path / "out" / summary["product"][0])["dq"], reference.dq
    )


def test_without_dask_runs_serially_and_says_how_to_get_workers(
    segmented_exposure, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(batch_execute, "dask_available", lambda: False)
    whole, _ = segmented_exposure["uncal"]
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps.batch"):
        summary = run_batch("tso_jump", [whole], tmp_path)
    assert 'pip install "tso-steps[batch]"' in caplog.text
    assert list(summary["status"]) == ["done"]
    assert summary["worker"][0].endswith(f":{os.getpid()}")
    reference = TSOJumpStep.call(whole)
    np.testing.assert_array_equal(
        arrays(tmp_path / summary["product"][0])["groupdq"], reference.groupdq
    )


@needs_dask
def test_three_segment_one_over_f_equals_the_one_file_correction(
    segmented_exposure, dask_scheduler, tmp_path
):
    from tso_steps import OneOverFStep

    whole, segments = segmented_exposure["rateints"]
    summary = run_batch("tso_one_over_f", segments, tmp_path, scheduler=dask_scheduler)
    assert list(summary["status"]) == ["done"] * 3
    one_file = OneOverFStep.call(whole)
    with datamodels.open(whole) as raw:
        assert np.nanstd(raw.data - one_file.data) > 0  # the step changed something
    data = np.concatenate([arrays(tmp_path / p)["data"] for p in summary["product"]])
    np.testing.assert_array_equal(data, one_file.data)


@needs_dask
def test_a_task_whose_worker_dies_is_a_failed_row(
    segmented_exposure, dask_scheduler, tmp_path, monkeypatch
):
    from tso_steps.batch import run as batch_run

    real = batch_run.run_task

    def dies_on_segment_2(task):
        if "seg002" in task["inputs"][0]:
            raise MemoryError("worker exceeded its memory limit")
        return real(task)

    monkeypatch.setattr(batch_run, "run_task", dies_on_segment_2)
    whole, segments = segmented_exposure["rateints"]
    # the whole file overlaps the segments: not contiguous, so every file is its own task
    summary = run_batch("tso_outlier", [whole, *segments], tmp_path, scheduler=dask_scheduler)
    status = {Path(f).name: s for f, s in zip(summary["file"], summary["status"], strict=True)}
    assert status.pop(Path(segments[1]).name) == "failed"
    assert set(status.values()) == {"done"}
    assert "MemoryError: worker exceeded" in "".join(summary["error"])


@needs_dask
def test_memory_budget_reaches_the_steps_and_leaves_the_products_unchanged(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, segments = segmented_exposure["uncal"]
    pipeline = build_step(resolve_step("tso_detector1"), {}, whole, memory_budget=3)
    assert pipeline.tso_jump.memory_budget == 3.0
    assert "memory_budget" not in pipeline.ramp_fit.spec  # jwst's steps are left alone
    code = main(["batch", "tso_jump", *segments, "--output-dir", str(tmp_path),
                 "--scheduler", dask_scheduler, "--memory-budget", "1", "--quiet"])  # fmt: skip
    assert code == 0
    names = [Path(s).name.replace("_uncal", "_jump") for s in segments]
    groupdq = np.concatenate([arrays(tmp_path / n)["groupdq"] for n in names])
    np.testing.assert_array_equal(groupdq, TSOJumpStep.call(whole).groupdq)
