"""Step-specific faults from the fault issue, and atomic products of every step."""

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

import tso_steps as T
from fault_matrix import LOST, PARAMETER_FAULTS, STEPS, half_then_full_disk, leftovers
from fault_matrix import assert_unchanged as _assert_unchanged
from fault_matrix import run_step as _run
from fault_matrix import snapshot as _snapshot
from fault_matrix import step_input as _input
from tso_steps.inputs import GROUP_DO_NOT_USE, InputError, WrongProductError
from tso_steps.vectors import get_vectors

# --- step-specific faults from the issue ------------------------------------------------------


@pytest.mark.parametrize("fault", PARAMETER_FAULTS)
def test_parameter_fault_is_a_clear_error(fault_products, fault):
    alias, params, error, fragment = PARAMETER_FAULTS[fault]
    model = _input(fault_products, alias)
    snapshot = _snapshot(model)
    with pytest.raises(error, match=re.escape(fragment)):
        _run(alias, model, **params)
    _assert_unchanged(model, snapshot)


def test_jump_on_all_do_not_use_ramps_is_skipped_with_the_reason(fault_products, caplog):
    model = _input(fault_products, "tso_jump")
    model.groupdq |= GROUP_DO_NOT_USE
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps"):
        result = _run("tso_jump", model)
    assert result.meta.cal_step.tso_jump == "SKIPPED"
    assert "Only 0 of 12 integrations hold a usable group difference" in caplog.text
    np.testing.assert_array_equal(result.groupdq, model.groupdq)


def test_jitter_with_two_integrations_and_no_measurable_shift_says_skipped(fault_products, caplog):
    model = _input(fault_products, "tso_jitter")
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


def test_background_exposure_type_that_contradicts_the_instrument(fault_products):
    model = _input(fault_products, "tso_background")
    model.meta.exposure.type = "NIS_SOSS"  # a NIRISS mode on NIRCam data
    with pytest.raises(InputError, match="NIRISS mode but the instrument is 'NIRCAM'"):
        _run("tso_background", model)


def test_list_input(fault_products):
    result = _run("tso_trace", [_input(fault_products, "tso_trace")])
    assert result.meta.cal_step.tso_trace == "COMPLETE"
    with pytest.raises(WrongProductError, match="a list of 2"):
        _run("tso_trace", [_input(fault_products, "tso_trace")] * 2)


def test_non_time_series_is_one_error_everywhere(fault_products):
    for alias in STEPS:
        model = _input(fault_products, alias)
        model.meta.exposure.type = "NRC_IMAGE"
        model.meta.visit.tsovisit = False
        with pytest.raises(InputError, match="is for time-series exposures"):
            _run(alias, model)


# --- atomic products ---------------------------------------------------------------------------
def test_a_failed_fits_save_leaves_the_previous_product(fault_products, tmp_path, monkeypatch):
    model = _input(fault_products, "tso_centroid")
    T.CentroidStep.call(model, save_results=True, output_dir=str(tmp_path))
    (path,) = tmp_path.glob("*_centroid.fits")
    before = path.read_bytes()
    half_then_full_disk(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="previous file, if any, is unchanged"):
        T.CentroidStep.call(model, save_results=True, output_dir=str(tmp_path))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    with datamodels.open(path) as reread:  # and it is still a readable product
        assert reread.meta.cal_step.tso_centroid == "COMPLETE"
        assert reread.meta.filename == path.name


def test_a_failed_first_save_leaves_no_file(fault_products, tmp_path, monkeypatch):
    half_then_full_disk(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="No space left on device"):
        T.TraceStep.call(
            _input(fault_products, "tso_trace"), save_results=True, output_dir=str(tmp_path)
        )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_ecsv_write_leaves_the_previous_tables(fault_products, tmp_path, monkeypatch):
    from astropy.table import Table

    from tso_steps.vectors import export_vectors

    result = _run("tso_centroid", _input(fault_products, "tso_centroid"))
    vectors = tmp_path / "x_tsovectors.ecsv"
    export_vectors(result, vectors)
    catalog = _run("tso_aperture", _input(fault_products, "tso_aperture"))
    phot = Path(catalog.save(tmp_path / "x_phot.fits"))
    before = {p: p.read_bytes() for p in (vectors, phot)}
    half_then_full_disk(monkeypatch, Table, "write")
    with pytest.raises(OSError, match="Could not write .*x_tsovectors.ecsv"):
        export_vectors(result, vectors)
    with pytest.raises(OSError, match="Could not write .*x_phot.ecsv"):
        catalog.save(phot)
    with pytest.raises(OSError, match="x_phot.ecsv"):  # calwebb_tso3 calls write()
        catalog.write(phot, format="ascii.ecsv", overwrite=True)
    for path, content in before.items():
        assert path.read_bytes() == content
    assert leftovers(tmp_path) == []


def test_pipelines_save_atomically(fault_products, tmp_path, monkeypatch):
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
    model = _input(fault_products, "tso_trace")
    path = Path(pipeline.save_model(model, suffix="rateints", force=True))
    before = path.read_bytes()
    half_then_full_disk(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="unchanged"):
        pipeline.save_model(model, suffix="rateints", force=True)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("value", [-1e30, 1e30])
def test_extract_rejects_a_huge_pixel(fault_products, value):
    clean = _run("tso_extract", _input(fault_products, "tso_extract"))
    model = _input(fault_products, "tso_extract")
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
