"""Every step x every kind of bad input: a clear error, or a run that flags what it lost.

The matrix (``STEPS`` x the case families below) is also the source of ``docs/faults.rst``;
``test_faults_page_matches_the_matrix`` keeps the two in step.  In every case where the
step is given a model, the model's arrays and metadata must be exactly as they were
(no node, not even an empty ``meta.wcsinfo``, is added to it).
"""

import copy
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels
from stpipe.exceptions import ValidationError

import tso_steps as T
from tso_steps.inputs import DO_NOT_USE, GROUP_DO_NOT_USE, InputError, WrongProductError
from tso_steps.readout import ReadoutMetadataError
from tso_steps.simulate import simulate_tso
from tso_steps.vectors import get_vectors

NINTS = 12
LOST = 3  # the integration made unusable

#: alias -> (step class, input product, per-integration outputs compared, out-of-range params)
STEPS = {
    "tso_trace": (T.TraceStep, "spec_rate", {"degree": 12}),
    "tso_jitter": (T.JitterCorrectStep, "spec_rate", {"iterations": 0}),
    "tso_extract": (T.OptimalExtractStep, "spec_rate", {"halfwidth": 0.1}),
    "tso_background": (T.Background2DStep, "spec_rate", {"line_degree": 9}),
    "tso_outlier": (T.TSOOutlierStep, "spec_rate", {"rejection_threshold": 0.1}),
    "tso_one_over_f": (T.OneOverFStep, "spec_rate", {"clip_sigma": 0.5}),
    "tso_one_over_f[ramp]": (T.OneOverFStep, "spec_ramp", {"min_pixels": 0}),
    "tso_pixel_timing": (T.PixelTimingStep, "spec_rate", {"cutout_origin": [1]}),
    "tso_jump": (T.TSOJumpStep, "spec_ramp", {"rolling_window_width": 2}),
    "tso_centroid": (T.CentroidStep, "img_rate", {"method": "psf"}),
    "tso_aperture": (T.MovingApertureStep, "img_rate", {"radius": 0.1}),
}

#: Per-integration outputs that must be NaN for a lost integration and unchanged elsewhere.
MEASURED = {
    "tso_trace": ("trace_position", "trace_width", "trace_shift"),
    "tso_jitter": ("shift_cross_dispersion",),
    "tso_extract": ("FLUX",),
    "tso_background": ("background_level", "background_scale"),
    "tso_outlier": ("outlier_fraction",),
    "tso_one_over_f": ("one_over_f_rms", "one_over_f_scale"),
    "tso_one_over_f[ramp]": ("one_over_f_rms", "one_over_f_scale"),
    "tso_pixel_timing": (),
    "tso_jump": ("jump_flux_scale",),
    "tso_centroid": ("centroid_x", "centroid_y", "psf_width_x", "psf_width_y"),
    "tso_aperture": ("net_aperture_sum", "centroid_x"),
}

#: How closely a good integration must agree with the run on the same input without the
#: lost integration (relative to the clean run's scatter of that output).  0: identical up
#: to float rounding.  Steps whose reference uses neighbouring integrations (rolling
#: windows, a profile or PSF template from all integrations) agree to a small fraction.
AGREEMENT = {
    "tso_extract": 0.01,
    "tso_centroid": 1e-3,
    "tso_aperture": 1e-3,
}


def _simulate(mode, products, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=NINTS, ngroups=3, seed=1, products=products, **kwargs)


@pytest.fixture(scope="module")
def products():
    spec = _simulate("NRC_TSGRISM", ("ramp", "rateints"), crop=(32, 128))
    image = _simulate("NRC_TSIMAGE", ("rateints",))
    return {"spec_rate": spec.rateints, "spec_ramp": spec.ramp, "img_rate": image.rateints}


def _input(products, alias):
    return products[STEPS[alias][1]].copy()


def _run(alias, data, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return STEPS[alias][0](**params).run(data)


# --- the input is never changed ----------------------------------------------------------------
def _arrays(model):
    return {
        name: np.array(value, copy=True)
        for name, value in model.instance.items()
        if isinstance(value, np.ndarray)
    }


def _snapshot(model):
    return _arrays(model), copy.deepcopy(model.meta.instance)


def _assert_unchanged(model, snapshot):
    arrays, meta = snapshot
    after = _arrays(model)
    assert after.keys() == arrays.keys()
    for name, before in arrays.items():
        np.testing.assert_array_equal(after[name], before, err_msg=name)
    assert model.meta.instance == meta  # no node added, not even an empty wcsinfo


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
def test_unreadable_file_is_a_clear_error(products, tmp_path, alias, case):
    make, fragment = FILE_CASES[case]
    path = make(tmp_path, _input(products, alias))
    with pytest.raises(InputError, match=re.escape(fragment)) as info:
        _run(alias, str(path))
    assert alias.split("[")[0] in str(info.value)


@pytest.mark.parametrize("alias", STEPS)
def test_missing_file_is_a_clear_error(alias, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(alias, str(tmp_path / "nowhere_rateints.fits"))


@pytest.mark.parametrize("alias", STEPS)
def test_bare_array_is_a_clear_error(products, alias):
    with pytest.raises(WrongProductError, match="bare numpy array") as info:
        _run(alias, np.asarray(_input(products, alias).data))
    assert isinstance(info.value, TypeError)
    assert "datamodels.CubeModel(data=array)" in str(info.value)


def _wrong_product(products, alias):
    """A product of the wrong kind, and what the message must say."""
    cls = STEPS[alias][0]
    if cls is T.TSOJumpStep:
        return products["spec_rate"].copy(), "this is a rateints/calints (3-D CubeModel)"
    if cls in (T.OneOverFStep, T.PixelTimingStep):
        rate = products["spec_rate"]
        image = datamodels.ImageModel(data=np.asarray(rate.data[0]))
        image.update(rate)
        return image, "this is a rate/cal image (2-D ImageModel)"
    return products["spec_ramp"].copy(), "run calwebb_detector1 (ramp_fit) first"


@pytest.mark.parametrize("alias", STEPS)
def test_wrong_product_says_what_to_run(products, alias):
    model, fragment = _wrong_product(products, alias)
    snapshot = _snapshot(model)
    with pytest.raises(WrongProductError, match=re.escape(fragment)):
        _run(alias, model)
    _assert_unchanged(model, snapshot)


def test_wrong_product_from_a_file_names_the_step_order(products, tmp_path):
    path = tmp_path / "x_rateints.fits"
    products["spec_rate"].save(path)
    with pytest.raises(TypeError, match="run tso_jump before ramp_fit"):
        _run("tso_jump", str(path))


@pytest.mark.parametrize("alias", STEPS)
def test_one_row_array(products, alias):
    model = _input(products, alias)
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
def test_empty_or_unusable_input_is_a_clear_error(products, alias, case):
    make, fragment = EMPTY_CASES[case]
    model = _input(products, alias)
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
def test_out_of_range_parameter_is_rejected_by_the_spec(products, alias):
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
def test_lost_integration_is_flagged_and_the_rest_unaffected(products, alias, case, caplog):
    model = _input(products, alias)
    LOST_CASES[case](model)
    snapshot = _snapshot(model)
    with caplog.at_level(logging.INFO, logger="stpipe.tso_steps"):
        result = _run(alias, model)
    _assert_unchanged(model, snapshot)
    if alias == "tso_pixel_timing":  # reads no pixel values: nothing is lost
        return
    assert re.search(rf"\b1 of {NINTS} integrations (have|hold) no usable", caplog.text)
    values = _values(alias, result)
    without = _values(alias, _run(alias, _drop(_input(products, alias), LOST)))
    clean = _values(alias, _run(alias, _input(products, alias)))
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
def test_pixel_defects_add_no_nan_to_the_results(products, alias, case):
    model = _input(products, alias)
    PIXEL_CASES[case](model)
    snapshot = _snapshot(model)
    result = _run(alias, model)
    _assert_unchanged(model, snapshot)
    clean = _values(alias, _run(alias, _input(products, alias)))
    for name, got in _values(alias, result).items():
        if name == "FLUX":  # a dead column is a lost wavelength bin, nothing else
            lost_bins = np.isnan(got).all(axis=0)
            assert lost_bins.sum() <= 1
            got, ref = got[:, ~lost_bins], clean[name][:, ~lost_bins]
        else:
            ref = clean[name]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), name


# --- step-specific faults from the issue ------------------------------------------------------
PARAMETER_FAULTS = {
    "jitter reference=999": ("tso_jitter", {"reference": "999"}, InputError, "out of range"),
    "jitter reference=bogus": ("tso_jitter", {"reference": "bogus"}, InputError, "'median'"),
    "jitter region off the array": (
        "tso_jitter",
        {"region": [0, 500, 0, 10]},
        InputError,
        "inside the",
    ),
    "centroid center far outside": (
        "tso_centroid",
        {"center": [1e9, -1e9]},
        InputError,
        "outside the",
    ),
    "aperture radius 1000": ("tso_aperture", {"radius": 1000.0}, InputError, "whole"),
    "aperture annulus inverted": (
        "tso_aperture",
        {"radius_inner": 9.0, "radius_outer": 5.0},
        InputError,
        "radius_inner=9.0 must be below radius_outer=5.0",
    ),
    "extract aperture wider than the array": (
        "tso_extract",
        {"halfwidth": 1000.0},
        InputError,
        "wider than",
    ),
    "jump minimum_ints > rolling_window": (
        "tso_jump",
        {"minimum_ints": 9, "rolling_window_width": 5},
        InputError,
        "minimum_ints=9 must be at most rolling_window_width=5",
    ),
    "jump maximum_cores=lots": ("tso_jump", {"maximum_cores": "lots"}, ValueError, "maximum"),
    "background template missing": (
        "tso_background",
        {"method": "template", "template_file": "/no/such/template.fits"},
        FileNotFoundError,
        "does not exist",
    ),
    "one_over_f mask missing": (
        "tso_one_over_f",
        {"mask_file": "/no/such/mask.npy"},
        FileNotFoundError,
        "does not exist",
    ),
    "timing negative cutout_origin": (
        "tso_pixel_timing",
        {"cutout_origin": [-3, 0]},
        InputError,
        ">= 0",
    ),
}


@pytest.mark.parametrize("fault", PARAMETER_FAULTS)
def test_parameter_fault_is_a_clear_error(products, fault):
    alias, params, error, fragment = PARAMETER_FAULTS[fault]
    model = _input(products, alias)
    snapshot = _snapshot(model)
    with pytest.raises(error, match=re.escape(fragment)):
        _run(alias, model, **params)
    _assert_unchanged(model, snapshot)


def test_jump_on_all_do_not_use_ramps_is_skipped_with_the_reason(products, caplog):
    model = _input(products, "tso_jump")
    model.groupdq |= GROUP_DO_NOT_USE
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps"):
        result = _run("tso_jump", model)
    assert result.meta.cal_step.tso_jump == "SKIPPED"
    assert "Only 0 of 12 integrations hold a usable group difference" in caplog.text
    np.testing.assert_array_equal(result.groupdq, model.groupdq)


def test_jitter_with_two_integrations_and_no_measurable_shift_says_skipped(products, caplog):
    model = _input(products, "tso_jitter")
    model.data = model.data[:2].copy()
    for name in ("dq", "err", "var_poisson", "var_rnoise", "var_flat"):
        setattr(model, name, getattr(model, name)[:2].copy())
    noise = np.random.default_rng(1).normal(10.0, 1.0, model.data.shape)
    model.data[:] = noise  # no source: nothing to align on
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps"):
        result = _run("tso_jitter", model, cross_dispersion="register")
    shifts = get_vectors(result)
    assert np.isnan(shifts["shift_dispersion"]).all()
    assert np.isnan(shifts["shift_cross_dispersion"]).all()
    assert result.meta.cal_step.tso_jitter == "SKIPPED"
    assert "2 of 2 integrations have no measured shift" in caplog.text


def test_background_exposure_type_that_contradicts_the_instrument(products):
    model = _input(products, "tso_background")
    model.meta.exposure.type = "NIS_SOSS"  # a NIRISS mode on NIRCam data
    with pytest.raises(InputError, match="NIRISS mode but the instrument is 'NIRCAM'"):
        _run("tso_background", model)


def test_list_input(products):
    result = _run("tso_trace", [_input(products, "tso_trace")])
    assert result.meta.cal_step.tso_trace == "COMPLETE"
    with pytest.raises(WrongProductError, match="a list of 2"):
        _run("tso_trace", [_input(products, "tso_trace")] * 2)


def test_non_time_series_is_one_error_everywhere(products):
    for alias in STEPS:
        model = _input(products, alias)
        model.meta.exposure.type = "NRC_IMAGE"
        model.meta.visit.tsovisit = False
        with pytest.raises(InputError, match="is for time-series exposures"):
            _run(alias, model)


# --- the documentation table -----------------------------------------------------------------
def test_faults_page_matches_the_matrix():
    page = (Path(__file__).parents[1] / "docs" / "faults.rst").read_text()
    for alias in STEPS:
        assert f"``{alias.split('[')[0]}``" in page
    for case in (*FILE_CASES, *LOST_CASES, *PIXEL_CASES, *EMPTY_CASES, *PARAMETER_FAULTS):
        assert case in page, case
    for fragment in {f for _, f in FILE_CASES.values()}:
        assert fragment in page


# --- atomic products ---------------------------------------------------------------------------
def _fail_half_way(monkeypatch, cls, name):
    """Make ``cls.name`` write half a file at its path and then fail like a full disk."""
    import errno

    def broken(self, target, *args, **kwargs):
        Path(target).write_bytes(b"SIMPLE  =                    T / half a file" * 40)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cls, name, broken)


def _no_leftovers(folder):
    return not [p for p in Path(folder).iterdir() if p.name.startswith(".")]


def test_a_failed_fits_save_leaves_the_previous_product(products, tmp_path, monkeypatch):
    model = _input(products, "tso_centroid")
    T.CentroidStep.call(model, save_results=True, output_dir=str(tmp_path))
    (path,) = tmp_path.glob("*_centroid.fits")
    before = path.read_bytes()
    _fail_half_way(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="previous file, if any, is unchanged"):
        T.CentroidStep.call(model, save_results=True, output_dir=str(tmp_path))
    assert path.read_bytes() == before
    assert _no_leftovers(tmp_path)
    monkeypatch.undo()
    with datamodels.open(path) as reread:  # and it is still a readable product
        assert reread.meta.cal_step.tso_centroid == "COMPLETE"
        assert reread.meta.filename == path.name


def test_a_failed_first_save_leaves_no_file(products, tmp_path, monkeypatch):
    _fail_half_way(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="No space left on device"):
        T.TraceStep.call(_input(products, "tso_trace"), save_results=True, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_ecsv_write_leaves_the_previous_tables(products, tmp_path, monkeypatch):
    from astropy.table import Table

    from tso_steps.vectors import export_vectors

    result = _run("tso_centroid", _input(products, "tso_centroid"))
    vectors = tmp_path / "x_tsovectors.ecsv"
    export_vectors(result, vectors)
    catalog = _run("tso_aperture", _input(products, "tso_aperture"))
    phot = Path(catalog.save(tmp_path / "x_phot.fits"))
    before = {p: p.read_bytes() for p in (vectors, phot)}
    _fail_half_way(monkeypatch, Table, "write")
    with pytest.raises(OSError, match="Could not write .*x_tsovectors.ecsv"):
        export_vectors(result, vectors)
    with pytest.raises(OSError, match="Could not write .*x_phot.ecsv"):
        catalog.save(phot)
    with pytest.raises(OSError, match="x_phot.ecsv"):  # calwebb_tso3 calls write()
        catalog.write(phot, format="ascii.ecsv", overwrite=True)
    for path, content in before.items():
        assert path.read_bytes() == content
    assert _no_leftovers(tmp_path)


def test_pipelines_save_atomically(products, tmp_path, monkeypatch):
    from tso_steps.atomic import AtomicSaveMixin
    from tso_steps.pipelines import (
        TSODetector1Pipeline,
        TSOImage2Pipeline,
        TSOSpec2Pipeline,
        TSOTso3Pipeline,
    )

    for pipeline in (TSODetector1Pipeline, TSOImage2Pipeline, TSOSpec2Pipeline, TSOTso3Pipeline):
        assert issubclass(pipeline, AtomicSaveMixin)
    pipeline = TSODetector1Pipeline(output_dir=str(tmp_path))
    model = _input(products, "tso_trace")
    path = Path(pipeline.save_model(model, suffix="rateints", force=True))
    before = path.read_bytes()
    _fail_half_way(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="unchanged"):
        pipeline.save_model(model, suffix="rateints", force=True)
    assert path.read_bytes() == before
    assert _no_leftovers(tmp_path)


@pytest.mark.parametrize("value", [-1e30, 1e30])
def test_extract_rejects_a_huge_pixel(products, value):
    clean = _run("tso_extract", _input(products, "tso_extract"))
    model = _input(products, "tso_extract")
    image = np.nanmedian(model.data, axis=0)
    y, x = np.unravel_index(np.nanargmax(image[:, 50:70]), (image.shape[0], 20))
    model.data[LOST, y, x + 50] = value  # a corrupted sample at the trace peak
    result = _run("tso_extract", model)
    flux = np.asarray(result.spec[0].spec_table["FLUX"])
    ref = np.asarray(clean.spec[0].spec_table["FLUX"])
    error = np.asarray(clean.spec[0].spec_table["FLUX_ERROR"])
    deviation = np.abs(flux - ref) / error
    assert deviation[LOST, x + 50] < 3.0  # one pixel fewer, not +-1e30
    others = np.ones(deviation.shape, dtype=bool)
    others[LOST, x + 50] = False
    assert np.nanmax(deviation[others]) < 0.5
