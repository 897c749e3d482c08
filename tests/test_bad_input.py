"""Every step x every kind of bad input: a clear error, or a run that flags what it lost.

The matrix (``STEPS`` x the case families below) is also the source of ``docs/faults.rst``;
``test_faults_page_matches_the_matrix`` keeps the two in step.  In every case where the
step is given a model, the model's arrays and metadata must be exactly as they were
(no node, not even an empty ``meta.wcsinfo``, is added to it).
"""

import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels
from stpipe.exceptions import ValidationError

import tso_steps as T
from fault_matrix import AGREEMENT, LOST, MEASURED, NINTS, PARAMETER_FAULTS, STEPS
from fault_matrix import assert_unchanged as _assert_unchanged
from fault_matrix import run_step as _run
from fault_matrix import snapshot as _snapshot
from fault_matrix import step_input as _input
from tso_steps.inputs import (
    DO_NOT_USE,
    GROUP_DO_NOT_USE,
    InputError,
    WrongProductError,
    prepare_output,
)
from tso_steps.readout import ReadoutMetadataError
from tso_steps.vectors import get_vectors


# --- the input is never changed ----------------------------------------------------------------
# --- file and object cases ------------------------------------------------------------------
def _truncated(tmp_path, model):
    path = tmp_path / "cut_rateints.fits"
    model.save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _not_jwst(tmp_path, model):
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((3, 8, 8), np.float32)).writeto(path)
    return path


def _junk(tmp_path, model):
    path = tmp_path / "junk_rateints.fits"
    path.write_bytes(b"this is not FITS")
    return path


FILE_CASES = {
    "truncated file": (_truncated, "is truncated"),
    "non-JWST FITS": (_not_jwst, "is not a JWST data product"),
    "not FITS at all": (_junk, "cannot read"),
}


@pytest.mark.parametrize("case", FILE_CASES)
@pytest.mark.parametrize("alias", STEPS)
def test_unreadable_file_is_a_clear_error(fault_products, tmp_path, alias, case):
    make, fragment = FILE_CASES[case]
    path = make(tmp_path, _input(fault_products, alias))
    with pytest.raises(InputError, match=re.escape(fragment)) as info:
        _run(alias, str(path))
    assert alias.split("[")[0] in str(info.value)


@pytest.mark.parametrize("alias", STEPS)
def test_missing_file_is_a_clear_error(alias, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(alias, str(tmp_path / "nowhere_rateints.fits"))


@pytest.mark.parametrize("alias", STEPS)
def test_bare_array_is_a_clear_error(fault_products, alias):
    with pytest.raises(WrongProductError, match="bare numpy array") as info:
        _run(alias, np.asarray(_input(fault_products, alias).data))
    assert isinstance(info.value, TypeError)
    assert "datamodels.CubeModel(data=array)" in str(info.value)


def _wrong_product(fault_products, alias):
    """A product of the wrong kind, and what the message must say."""
    cls = STEPS[alias][0]
    if cls is T.TSOJumpStep:
        return fault_products["spec_rate"].copy(), "this is a rateints/calints (3-D CubeModel)"
    if cls in (T.OneOverFStep, T.PixelTimingStep):
        rate = fault_products["spec_rate"]
        image = datamodels.ImageModel(data=np.asarray(rate.data[0]))
        image.update(rate)
        return image, "this is a rate/cal image (2-D ImageModel)"
    return fault_products["spec_ramp"].copy(), "run calwebb_detector1 (ramp_fit) first"


@pytest.mark.parametrize("alias", STEPS)
def test_wrong_product_says_what_to_run(fault_products, alias):
    model, fragment = _wrong_product(fault_products, alias)
    snapshot = _snapshot(model)
    with pytest.raises(WrongProductError, match=re.escape(fragment)):
        _run(alias, model)
    _assert_unchanged(model, snapshot)


def test_wrong_product_from_a_file_names_the_step_order(fault_products, tmp_path):
    path = tmp_path / "x_rateints.fits"
    fault_products["spec_rate"].copy().save(path)
    with pytest.raises(TypeError, match="run tso_jump before ramp_fit"):
        _run("tso_jump", str(path))


@pytest.mark.parametrize("alias", STEPS)
def test_one_row_array(fault_products, alias):
    model = _input(fault_products, alias)
    _crop_rows(model, 1)
    snapshot = _snapshot(model)
    if alias == "tso_outlier":  # works on any image size
        result = _run(alias, model)
        assert result.meta.cal_step.tso_outlier == "COMPLETE"
    elif alias == "tso_pixel_timing":  # a 1-row cut of a subarray cannot be placed in its subarray
        with pytest.raises(ReadoutMetadataError, match="cut-out of its 32x128 subarray"):
            _run(alias, model)
    else:
        with pytest.raises(InputError, match="1 x .* pixels are too small"):
            _run(alias, model)
    _assert_unchanged(model, snapshot)


def _crop_rows(model, rows):
    ndim = model.data.ndim
    for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat", "groupdq"):
        if model.hasattr(name) and getattr(model, name).ndim == ndim:
            setattr(model, name, getattr(model, name)[..., :rows, :].copy())
    if model.hasattr("pixeldq"):
        model.pixeldq = model.pixeldq[:rows].copy()


def _select(model, index):
    ndim = model.data.ndim
    for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat", "groupdq"):
        if model.hasattr(name) and getattr(model, name).ndim == ndim:
            setattr(model, name, getattr(model, name)[index].copy())


def _every_sample_flagged(model):
    if model.data.ndim == 4:
        model.groupdq |= GROUP_DO_NOT_USE
    else:
        model.dq |= DO_NOT_USE


def _one_usable_integration(model):
    model.data[1:] = np.nan


EMPTY_CASES = {
    "zero columns": (lambda m: _select(m, (Ellipsis, slice(0, 0))), r"0 pixels are too small"),
    "zero integrations": (lambda m: _select(m, slice(0, 0)), "at least 2 integrations, got 0"),
    "every sample DO_NOT_USE": (_every_sample_flagged, "only 0 of 12 integrations hold"),
    "one usable integration": (_one_usable_integration, "only 1 of 12 integrations hold"),
}


@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("alias", STEPS)
def test_empty_or_unusable_input_is_a_clear_error(fault_products, alias, case):
    make, fragment = EMPTY_CASES[case]
    model = _input(fault_products, alias)
    make(model)
    snapshot = _snapshot(model)
    pixel_case = case in ("every sample DO_NOT_USE", "one usable integration")
    if alias == "tso_pixel_timing" and pixel_case:  # reads no pixel values
        assert _run(alias, model).meta.cal_step.tso_pixel_timing == "COMPLETE"
    elif alias == "tso_jump" and pixel_case:  # no time-series reference: skipped
        assert _run(alias, model).meta.cal_step.tso_jump == "SKIPPED"
    else:
        with pytest.raises(InputError, match=fragment):
            _run(alias, model)
    _assert_unchanged(model, snapshot)


@pytest.mark.parametrize("alias", STEPS)
def test_out_of_range_parameter_is_rejected_by_the_spec(fault_products, alias):
    with pytest.raises(ValidationError):
        STEPS[alias][0](**STEPS[alias][2])


# --- lost integrations ----------------------------------------------------------------------
def _values(alias, result):
    """Per-integration outputs (name -> (nints, ...) float array)."""
    if alias == "tso_extract":
        return {"FLUX": np.asarray(result.spec[0].spec_table["FLUX"], dtype=float)}
    if alias == "tso_aperture":
        return {n: np.asarray(result[n].value, dtype=float) for n in MEASURED[alias]}
    if alias == "tso_pixel_timing":
        return {"pixel_read_offsets": np.asarray(result.pixel_read_offsets)[None]}
    vectors = get_vectors(result)
    return {n: np.asarray(vectors[n], dtype=float) for n in MEASURED[alias]}


def _drop(model, k):
    """The same product without integration ``k``."""
    out = model.copy()
    keep = np.arange(model.data.shape[0]) != k
    for name in ("data", "dq", "err", "var_poisson", "var_rnoise", "var_flat", "groupdq"):
        if out.hasattr(name) and getattr(out, name).ndim == out.data.ndim:
            setattr(out, name, getattr(out, name)[keep].copy())
    if out.hasattr("int_times") and len(out.int_times):
        out.int_times = out.int_times[keep]
    return out


def _lose_nan(model):
    model.data[LOST] = np.nan


def _lose_dnu(model):
    if model.data.ndim == 4:
        model.groupdq[LOST] |= GROUP_DO_NOT_USE
    else:
        model.dq[LOST] |= DO_NOT_USE


LOST_CASES = {"all-NaN integration": _lose_nan, "all-DO_NOT_USE integration": _lose_dnu}


@pytest.mark.parametrize("case", LOST_CASES)
@pytest.mark.parametrize("alias", STEPS)
def test_lost_integration_is_flagged_and_the_rest_unaffected(fault_products, alias, case, caplog):
    model = _input(fault_products, alias)
    LOST_CASES[case](model)
    snapshot = _snapshot(model)
    with caplog.at_level(logging.INFO, logger="stpipe.tso_steps"):
        result = _run(alias, model)
    _assert_unchanged(model, snapshot)
    if alias == "tso_pixel_timing":  # reads no pixel values: nothing is lost
        return
    assert re.search(rf"\b1 of {NINTS} integrations (have|hold) no usable", caplog.text)
    values = _values(alias, result)
    without = _values(alias, _run(alias, _drop(_input(fault_products, alias), LOST)))
    clean = _values(alias, _run(alias, _input(fault_products, alias)))
    for name, got in values.items():
        assert np.isnan(got[LOST]).all(), f"{name} of the lost integration is not NaN"
        good = np.delete(got, LOST, axis=0)
        assert np.array_equal(np.isnan(good), np.isnan(np.delete(clean[name], LOST, 0)))
        scatter = np.nanstd(clean[name]) + 1e-12
        if alias == "tso_outlier":  # rolling window: a flag or two may move
            tolerance = 3.0 / model.data[0].size
        else:
            tolerance = AGREEMENT.get(alias, 1e-9) * scatter
        np.testing.assert_allclose(good, without[name], rtol=0, atol=tolerance, err_msg=name)
    _assert_flagged(alias, result)


def _assert_flagged(alias, result):
    if alias == "tso_extract":
        assert (np.asarray(result.spec[0].spec_table["DQ"])[LOST] & DO_NOT_USE).all()
    elif alias == "tso_aperture":
        assert result["flags"][LOST] != 0
    elif result.data.ndim == 4:
        if alias.startswith("tso_one_over_f"):
            assert (result.groupdq[LOST] & GROUP_DO_NOT_USE).all()
    else:
        assert (result.dq[LOST] & DO_NOT_USE).all()
        others = np.delete(np.arange(NINTS), LOST)
        assert not (result.dq[others] & DO_NOT_USE).all(axis=(1, 2)).any()


# --- defects inside the images -----------------------------------------------------------------
def _dead_column(model):
    model.data[..., 40] = np.nan


def _bad_pixels(model):
    flat = model.data.reshape(-1)
    flat[::97] = np.inf
    flat[5::89] = np.nan


PIXEL_CASES = {"dead column": _dead_column, "NaN/inf pixels": _bad_pixels}


@pytest.mark.parametrize("case", PIXEL_CASES)
@pytest.mark.parametrize("alias", STEPS)
def test_pixel_defects_add_no_nan_to_the_results(fault_products, alias, case):
    model = _input(fault_products, alias)
    PIXEL_CASES[case](model)
    snapshot = _snapshot(model)
    result = _run(alias, model)
    _assert_unchanged(model, snapshot)
    clean = _values(alias, _run(alias, _input(fault_products, alias)))
    for name, got in _values(alias, result).items():
        if name == "FLUX":  # a dead column is a lost wavelength bin, nothing else
            lost_bins = np.isnan(got).all(axis=0)
            assert lost_bins.sum() <= 1
            got, ref = got[:, ~lost_bins], clean[name][:, ~lost_bins]
        else:
            ref = clean[name]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), name


# --- the documentation table -----------------------------------------------------------------
def test_faults_page_matches_the_matrix():
    page = (Path(__file__).parents[1] / "docs" / "faults.rst").read_text()
    for alias in STEPS:
        assert f"``{alias.split('[')[0]}``" in page
    for case in (*FILE_CASES, *LOST_CASES, *PIXEL_CASES, *EMPTY_CASES, *PARAMETER_FAULTS):
        assert case in page, case
    for fragment in {f for _, f in FILE_CASES.values()}:
        assert fragment in page


@pytest.mark.parametrize("alias", sorted(STEPS))
def test_a_step_copies_a_model_only_outside_a_pipeline(fault_products, alias):
    """jwst's rule: a pipeline copies its input once; its steps then work on that model."""
    accepts = sys.modules[STEPS[alias][0].__module__].ACCEPTS
    assert accepts.copy in ("standalone", "never")
    model = _input(fault_products, alias)
    inside = prepare_output(SimpleNamespace(parent=object()), model, accepts)
    assert inside is model
    alone = prepare_output(SimpleNamespace(parent=None), model, accepts)
    assert (alone is model) == (accepts.copy == "never")
    assert np.array_equal(alone.data, model.data, equal_nan=True)
