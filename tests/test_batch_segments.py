"""Pipelines over the segments of one exposure: the products do not depend on the split.

``tso_detector1`` holds tso_jump and tso_one_over_f, ``tso_tso3`` holds tso_outlier: their
statistics use every integration, so a batch runs the segments of an exposure as one file
and cuts each product back per segment (``tso_steps.batch.joined``). The one-file runs are
the references; the exposure is the 40-integration one of conftest.py, in 14 + 13 + 13.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels

from batch_support import arrays, needs_dask, offline_tokens
from tso_steps.batch import run_batch
from tso_steps.batch.plan import group_exposures, parse_params
from tso_steps.batch.run import _plan_tasks, resolve_step
from tso_steps.pipelines import TSODetector1Pipeline, TSOTso3Pipeline
from tso_steps.pipelines.simulated import offline_steps
from tso_steps.pipelines.tso3 import write_association

JUMP = 4
ROOT = "jw09999001001_01101_00001_nrcalong"  # the exposure's product root


@pytest.fixture(scope="module")
def detector1_one_file(segmented_exposure, tmp_path_factory):
    """tso_detector1 on the exposure as one file (as strun would run it)."""
    whole, _ = segmented_exposure["uncal"]
    folder = tmp_path_factory.mktemp("detector1_one_file")
    steps = offline_steps("tso_detector1", segmented_exposure["references"])
    TSODetector1Pipeline.call(whole, steps=steps, save_results=True, output_dir=str(folder))
    return folder


def _tasks(step, files, params=(), join=True):
    """Inputs per task of a batch plan (no run)."""
    settings = {"force": False, "memory_budget": None, "join": join}
    exposures = group_exposures(files)
    tasks = _plan_tasks(
        resolve_step(step), exposures, parse_params(params), [{}], Path("."), settings
    )
    return [len(t["inputs"]) for t in tasks]


def test_segments_run_as_one_when_a_step_of_the_pipeline_spans_the_integrations(
    segmented_exposure,
):
    _, segments = segmented_exposure["uncal"]
    assert _tasks("tso_detector1", segments) == [3]
    assert _tasks("tso_detector1", segments, join=False) == [1, 1, 1]
    ours = ["steps.tso_jump.skip=true", "steps.tso_one_over_f.skip=true"]
    assert _tasks("tso_detector1", segments, ours) == [1, 1, 1]
    # jwst's own pipeline given our step as a hook (a class path) needs them too
    hooked = ["steps.jump.post_hooks=tso_steps.TSOJumpStep,"]
    assert _tasks("calwebb_detector1", segments, hooked) == [3]
    assert _tasks("calwebb_detector1", segments) == [1, 1, 1]


@needs_dask
def test_detector1_on_a_file_gives_the_products_of_a_serial_run(
    segmented_exposure, dask_scheduler, detector1_one_file, tmp_path
):
    whole, _ = segmented_exposure["uncal"]
    tokens = offline_tokens("tso_detector1", segmented_exposure["references"])
    summary = run_batch("tso_detector1", [whole], tmp_path, scheduler=dask_scheduler, params=tokens)
    assert list(summary["status"]) == ["done"], summary["error"][0]
    names = sorted(p.name for p in detector1_one_file.glob("*.fits"))
    assert names == [f"{ROOT}_rate.fits", f"{ROOT}_rateints.fits"]
    assert sorted(summary["product"][0].split(", ")) == names
    for name in names:
        ours, theirs = arrays(tmp_path / name), arrays(detector1_one_file / name)
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
        with datamodels.open(tmp_path / name) as model:
            assert len(model.meta.instance["tso_steps_batch"]["run_hash"]) == 64


@needs_dask
def test_detector1_on_three_segments_equals_the_exposure_as_one_file(
    segmented_exposure, dask_scheduler, detector1_one_file, tmp_path
):
    _, segments = segmented_exposure["uncal"]
    tokens = offline_tokens("tso_detector1", segmented_exposure["references"])
    summary = run_batch(
        "tso_detector1", segments, tmp_path, scheduler=dask_scheduler, params=tokens
    )
    assert list(summary["status"]) == ["done"] * 3, summary["error"][0]
    names = [Path(s).name.replace("_uncal", "_rateints") for s in segments]
    # each segment gets its rateints; the rate image (all integrations) is the exposure's
    assert list(summary["product"]) == [f"{n}, {ROOT}_rate.fits" for n in names]
    one_file = arrays(detector1_one_file / f"{ROOT}_rateints.fits", ("data", "dq", "err"))
    assert ((one_file["dq"] & JUMP) > 0).sum() > 20
    for key, value in one_file.items():
        cut = np.concatenate([arrays(tmp_path / n)[key] for n in names])
        np.testing.assert_array_equal(cut, value, err_msg=key)
    ours, theirs = (
        arrays(tmp_path / f"{ROOT}_rate.fits"),
        arrays(detector1_one_file / f"{ROOT}_rate.fits"),
    )
    for key in ("data", "dq"):
        np.testing.assert_array_equal(ours[key], theirs[key])
    with datamodels.open(tmp_path / names[1]) as model:
        exposure = model.meta.exposure
        assert (exposure.integration_start, exposure.integration_end) == (15, 27)
        assert exposure.segment_number == 2 and exposure.nints == 40
        assert len(model.int_times) == 13 and len(model.tso_vectors) == 13
        assert list(model.tso_vectors["integration_number"]) == list(range(15, 28))
        assert model.meta.cal_step.tso_jump == "COMPLETE"
        assert model.meta.cal_step.tso_one_over_f == "COMPLETE"
    again = run_batch("tso_detector1", segments, tmp_path, scheduler=dask_scheduler, params=tokens)
    assert list(again["status"]) == ["skipped"] * 3


@needs_dask
def test_tso3_on_three_segments_equals_the_exposure_as_one_file(
    segmented_exposure, dask_scheduler, tmp_path
):
    whole, segments = segmented_exposure["rateints"]  # as calints: tso3 only reads the cube
    tokens = offline_tokens("tso_tso3")
    summary = run_batch(
        "tso_tso3", segments, tmp_path / "batch", scheduler=dask_scheduler, params=tokens
    )
    assert list(summary["status"]) == ["done"] * 3, summary["error"][0]
    one_file = tmp_path / "one_file"
    one_file.mkdir()
    (one_file / Path(whole).name).symlink_to(whole)
    association = write_association([Path(whole).name], ROOT, one_file / "tso3_asn.json")
    steps = offline_steps("tso_tso3")
    TSOTso3Pipeline.call(str(association), steps=steps, save_results=True, output_dir=str(one_file))
    crfints = sorted(one_file.glob("*_crfints.fits"))  # saved after tso_outlier, as by jwst
    assert len(crfints) == 1
    with datamodels.open(crfints[0]) as model:
        assert model.meta.cal_step.tso_outlier == "COMPLETE"
        assert ((model.dq & 16) > 0).sum() > 0
    roots = [Path(s).name.replace("_rateints.fits", "") for s in segments]
    with datamodels.open(one_file / f"{ROOT}_x1dints.fits") as model:
        spectra = [np.array(s.spec_table) for s in model.spec]
    cut = []
    for root in roots:
        with datamodels.open(tmp_path / "batch" / f"{root}_x1dints.fits") as model:
            cut.append([np.array(s.spec_table) for s in model.spec])
            assert model.int_times["integration_number"][0] == model.meta.exposure.integration_start
    for order, table in enumerate(spectra):
        joined = np.concatenate([c[order] for c in cut])
        for column in table.dtype.names:
            np.testing.assert_array_equal(joined[column], table[column], err_msg=column)
    for suffix in ("whtlt", "tsovectors"):
        reference = Table.read(one_file / f"{ROOT}_{suffix}.ecsv")
        if suffix == "tsovectors":  # tso_outlier flagged samples, so the split could matter
            assert np.nansum(reference["outlier_fraction"]) > 0
        pieces = [Table.read(tmp_path / "batch" / f"{r}_{suffix}.ecsv") for r in roots]
        assert [len(p) for p in pieces] == [14, 13, 13]
        assert "tso_steps_batch" in pieces[0].meta  # provenance, for the resume test
        for column in reference.colnames:
            joined = np.concatenate([np.asarray(p[column]) for p in pieces])
            np.testing.assert_array_equal(joined, np.asarray(reference[column]), err_msg=column)
