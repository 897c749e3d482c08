"""The four tso pipelines given bad input, and killed or out of disk while they write.

The same case families as ``tests/test_bad_input.py`` (the steps), on small simulated
products: unreadable or wrong input stops each pipeline at its entrance with the steps'
clear errors; defects real data have (a lost integration, all NaN or all DO_NOT_USE; a dead
column; NaN and inf pixels) come out as NaN + DO_NOT_USE in the products, with a log line
of the count.  The caller's model is never modified.  Every file a pipeline writes (FITS
products, calwebb_tso3's own ``_whtlt.ecsv``, ``_tsovectors.ecsv``) is left as it was when
the writer fails half-way or the process is killed.  ``docs/faults.rst`` lists these rows;
``test_faults_page_lists_the_pipeline_cases`` keeps the two in step.
"""

import copy
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.ascii import ui as ascii_ui
from astropy.table import Table
from stdatamodels.jwst import datamodels

from fault_matrix import NINTS, half_then_full_disk, leftovers
from tso_steps.inputs import DO_NOT_USE, GROUP_DO_NOT_USE, InputError, WrongProductError
from tso_steps.pipelines import (
    TSODetector1Pipeline,
    TSOImage2Pipeline,
    TSOTso3Pipeline,
)
from tso_steps.pipelines.simulated import SimulationSpec2Pipeline, offline_steps
from tso_steps.simulate.references import write_noise_references
from tso_steps.vectors import get_vectors

LOST_NAN, LOST_DNU = 3, 7  # an all-NaN and an all-DO_NOT_USE integration
DEAD = 40  # a dead column

PIPELINES = {
    "tso_detector1": TSODetector1Pipeline,
    "tso_spec2": SimulationSpec2Pipeline,
    "tso_image2": TSOImage2Pipeline,
    "tso_tso3": TSOTso3Pipeline,
}


@pytest.fixture(scope="module")
def sims(fault_products, tmp_path_factory):
    spec_ramp, truth = fault_products["spec_ramp"], fault_products["spec_truth"]
    refs = write_noise_references(spec_ramp, truth, tmp_path_factory.mktemp("refs"))
    # the input of each pipeline (copies: the session's products stay as made):
    # ramps, spectroscopic rateints, imaging rateints, calints
    return {
        "tso_detector1": spec_ramp.copy(),
        "tso_spec2": fault_products["spec_rate"].copy(),
        "tso_image2": fault_products["img_rate"].copy(),
        "tso_tso3": fault_products["spec_rate"].copy(),
        "references": refs,
    }


def _pipeline(alias, sims, folder, **extra):
    steps = offline_steps(alias, sims["references"], extra)
    pipeline = PIPELINES[alias](steps=steps, output_dir=str(folder))
    pipeline.save_results = True
    return pipeline


def _write_input(alias, model, folder, name="x"):
    """Save ``model`` as the pipeline's input file; tso_tso3 gets an association."""
    suffix = {"tso_detector1": "uncal", "tso_tso3": "calints"}.get(alias, "rateints")
    path = Path(folder) / f"{name}_{suffix}.fits"
    model.meta.filename = path.name
    model.save(path)
    return _association(path) if alias == "tso_tso3" else path


def _association(member, product="x"):
    from jwst.associations.asn_from_list import asn_from_list
    from jwst.associations.lib.rules_level3_base import DMS_Level3_Base

    asn = asn_from_list([Path(member).name], rule=DMS_Level3_Base, product_name=product)
    asn.data["asn_type"] = "tso3"
    _, serialized = asn.dump(format="json")
    path = Path(member).parent / f"{product}_tso3_asn.json"
    path.write_text(serialized)
    return path


def _run(pipeline, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline.run(data)


# --- input a pipeline cannot use: a clear error at the entrance ------------------------------
def _truncated(alias, sims, folder):
    path = Path(folder) / "cut_rateints.fits"
    sims[alias].save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _not_jwst(alias, sims, folder):
    path = Path(folder) / "plain.fits"
    fits.PrimaryHDU(np.zeros((3, 8, 8), np.float32)).writeto(path)
    return path


def _wrong_stage(alias, sims, folder):
    """Ramps for the stage-2/3 pipelines, rateints for tso_detector1."""
    model = sims["tso_spec2"] if alias == "tso_detector1" else sims["tso_detector1"]
    path = Path(folder) / "other.fits"
    model.save(path)
    return path


def _not_a_time_series(alias, sims, folder):
    model = sims[alias].copy()
    model.meta.exposure.type = "NRC_IMAGE"
    model.meta.visit.tsovisit = False
    path = Path(folder) / "image_rateints.fits"
    model.save(path)
    return path


def _wrong_mode(alias, sims, folder):
    """An imaging exposure for tso_spec2, a spectroscopic one for tso_image2."""
    model = sims["tso_image2"] if alias == "tso_spec2" else sims["tso_spec2"]
    path = Path(folder) / "mode_rateints.fits"
    model.save(path)
    return path


ENTRANCE_CASES = {
    "truncated file": (_truncated, InputError, "is truncated|cannot read"),
    "non-JWST FITS": (_not_jwst, InputError, "is not a JWST data product"),
    "wrong dimensionality": (_wrong_stage, WrongProductError, "run tso_detector1|already ramp"),
    "wrong exposure type": (_not_a_time_series, InputError, "is for time-series exposures"),
    "missing file": (None, FileNotFoundError, "does not exist"),
}


@pytest.mark.parametrize("case", ENTRANCE_CASES)
@pytest.mark.parametrize("alias", PIPELINES)
def test_unusable_input_stops_the_pipeline_with_a_clear_error(sims, tmp_path, alias, case):
    make, error, fragment = ENTRANCE_CASES[case]
    path = tmp_path / "nowhere_rateints.fits" if make is None else make(alias, sims, tmp_path)
    if alias == "tso_tso3" and make is not None:
        path = _association(path)
    before = set(tmp_path.iterdir())
    with pytest.raises(error, match=fragment) as info:
        _run(_pipeline(alias, sims, tmp_path), str(path))
    assert str(info.value).startswith(alias), str(info.value)
    assert set(tmp_path.iterdir()) == before  # stopped before any work: nothing written
    assert info.traceback[-1].path.parts[-2] == "inputs"  # raised by the input layer


def test_wrong_mode_names_the_other_stage_2_pipeline(sims, tmp_path):
    with pytest.raises(InputError, match="imaging\\): run tso_image2"):
        _run(_pipeline("tso_spec2", sims, tmp_path), str(_wrong_mode("tso_spec2", sims, tmp_path)))
    with pytest.raises(InputError, match="For spectra, run tso_spec2"):
        _run(
            _pipeline("tso_image2", sims, tmp_path), str(_wrong_mode("tso_image2", sims, tmp_path))
        )


def test_unreadable_association_is_a_clear_error(sims, tmp_path):
    path = tmp_path / "bad_asn.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="is not a readable association"):
        _run(_pipeline("tso_tso3", sims, tmp_path), str(path))


# --- defects real data have: flagged in the products ------------------------------------------
def _with_defects(model):
    """One all-NaN and one all-DO_NOT_USE integration, a dead column, NaN and inf pixels."""
    model = model.copy()
    model.data[LOST_NAN] = np.nan
    if model.data.ndim == 4:
        model.groupdq[LOST_DNU] |= GROUP_DO_NOT_USE
    else:
        model.dq[LOST_DNU] |= DO_NOT_USE
    model.data[..., DEAD] = np.nan
    flat = model.data.reshape(-1)
    flat[11::997] = np.inf
    flat[5::1009] = np.nan
    return model


def _arrays(model):
    return {
        name: np.array(value, copy=True)
        for name, value in model.instance.items()
        if isinstance(value, np.ndarray)
    }


def _assert_images_flagged(model, lost=(LOST_NAN, LOST_DNU)):
    """NaN and only NaN where DO_NOT_USE... at least: every NaN flagged, no inf, lost ints."""
    data, dq = np.asarray(model.data), np.asarray(model.dq)
    flagged = (dq & DO_NOT_USE) != 0
    assert not np.isinf(data).any()
    assert not (np.isnan(data) & ~flagged).any(), "NaN pixels without DO_NOT_USE"
    for k in lost:
        assert flagged[k].all(), f"integration {k} is not flagged DO_NOT_USE"
    good = np.delete(np.arange(NINTS), lost)
    assert np.isnan(data[good, :, DEAD]).all() and flagged[good, :, DEAD].all()
    assert np.isfinite(data[good]).mean() > 0.95  # the rest is measured


def _pipeline_on_defects(alias, sims, tmp_path, caplog):
    given = _with_defects(sims[alias])
    if alias == "tso_tso3":  # takes an association: its member file must be left as it was
        data = str(_write_input(alias, given, tmp_path))
        member = tmp_path / "x_calints.fits"
        snapshot = member.read_bytes()
    else:
        data = given
        snapshot = (_arrays(given), copy.deepcopy(given.meta.instance))
    with caplog.at_level(logging.INFO, logger="stpipe.tso_steps"):
        _run(_pipeline(alias, sims, tmp_path), data)
    if alias == "tso_tso3":
        assert member.read_bytes() == snapshot
    else:  # the caller's model is exactly as it was
        arrays, meta = snapshot
        after = _arrays(given)
        assert after.keys() == arrays.keys()
        for name, before in arrays.items():
            np.testing.assert_array_equal(after[name], before, err_msg=name)
        assert given.meta.instance == meta
    return caplog.text


@pytest.mark.parametrize("alias", ["tso_detector1", "tso_spec2", "tso_image2"])
def test_defects_come_out_flagged_in_the_stage_1_and_2_products(sims, tmp_path, alias, caplog):
    text = _pipeline_on_defects(alias, sims, tmp_path, caplog)
    assert re.search(rf"{alias}: \d+ samples .* are NaN or inf \(\d+ newly flagged", text)
    product = "rateints" if alias == "tso_detector1" else "calints"
    (path,) = tmp_path.glob(f"*_{product}.fits")
    with datamodels.open(path) as model:
        _assert_images_flagged(model)
        if alias == "tso_detector1":
            # a pixel NaN in every group is NaN and DO_NOT_USE, not a rate of 0
            assert not (model.data[:, :, DEAD] == 0).any()
            assert model.meta.cal_step.tso_jump == "COMPLETE"
            return
        name = "trace_position" if alias == "tso_spec2" else "centroid_x"
        measured = np.asarray(get_vectors(model)[name], dtype=float)
    assert np.isnan(measured[[LOST_NAN, LOST_DNU]]).all()
    assert np.isfinite(np.delete(measured, [LOST_NAN, LOST_DNU])).all()
    assert re.search(rf"\b2 of {NINTS} integrations have no usable", text)


def test_defects_come_out_flagged_in_the_light_curve(sims, tmp_path, caplog):
    text = _pipeline_on_defects("tso_tso3", sims, tmp_path, caplog)
    lost = [LOST_NAN, LOST_DNU]
    with datamodels.open(tmp_path / "x_x1dints.fits") as x1d:
        table = x1d.spec[0].spec_table
        flux, dq = np.asarray(table["FLUX"]), np.asarray(table["DQ"])
    assert np.isnan(flux[lost]).all() and ((dq[lost] & DO_NOT_USE) != 0).all()
    good = np.delete(np.arange(NINTS), lost)
    assert np.isnan(flux[good]).all(axis=0).sum() <= 1  # the dead column: one lost bin
    assert not np.isinf(flux).any()
    white = np.asarray(Table.read(tmp_path / "x_whtlt.ecsv")["whitelight_flux"], dtype=float)
    assert np.isnan(white[lost]).all()  # jwst's white_light alone gives 0
    assert np.isfinite(white[good]).all() and (white[good] > 0).all()
    assert f"tso_tso3: 2 of {NINTS} integrations have no finite FLUX" in text
    assert re.search(rf"\b2 of {NINTS} integrations have no usable", text)


# --- atomic products ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tso3_products(sims, tmp_path_factory):
    """A tso_tso3 run's folder and its association."""
    folder = tmp_path_factory.mktemp("tso3")
    asn = _write_input("tso_tso3", sims["tso_tso3"].copy(), folder)
    _run(_pipeline("tso_tso3", sims, folder), str(asn))
    return folder, asn


def _current(folder):
    """The bytes of the tso_tso3 products now (each test may rewrite some of them)."""
    names = ("x_x1dints.fits", "x_whtlt.ecsv", "x_tsovectors.ecsv")
    return {n: (folder / n).read_bytes() for n in names}


def _assert_products_unchanged(folder, before):
    for name, content in before.items():
        assert (folder / name).read_bytes() == content, name
    assert leftovers(folder) == []


def test_a_full_disk_while_tso3_writes_its_whtlt_ecsv_leaves_the_previous_one(
    sims, tso3_products, monkeypatch
):
    """calwebb_tso3's own process() writes the white light with astropy's Table.write."""
    folder, asn = tso3_products
    before = _current(folder)
    # the ASCII writer itself breaks half-way (below Table.write and the I/O registry)
    half_then_full_disk(monkeypatch, ascii_ui, "write")
    with pytest.raises(OSError, match=r"x_whtlt.ecsv .*previous file, if any, is unchanged"):
        _run(_pipeline("tso_tso3", sims, folder), str(asn))
    monkeypatch.undo()
    _assert_products_unchanged(folder, {"x_whtlt.ecsv": before["x_whtlt.ecsv"]})
    assert len(Table.read(folder / "x_whtlt.ecsv")) == NINTS  # whole and readable


def test_a_full_disk_while_tso3_writes_fits_leaves_every_previous_product(
    sims, tso3_products, monkeypatch
):
    folder, asn = tso3_products
    before = _current(folder)
    half_then_full_disk(monkeypatch, fits.HDUList, "writeto")
    # the first FITS product tso3 writes is the _crfints cube after tso_outlier
    with pytest.raises(OSError, match=r"x_a3001_crfints\.fits .*unchanged"):
        _run(_pipeline("tso_tso3", sims, folder), str(asn))
    monkeypatch.undo()
    _assert_products_unchanged(folder, before)


def test_jwst_sub_step_files_are_atomic_inside_a_pipeline(sims, tmp_path, monkeypatch):
    """ramp_fit's own save (save_results) and calwebb_detector1's rateints, full disk."""
    uncal = _write_input("tso_detector1", sims["tso_detector1"].copy(), tmp_path)
    _run(_pipeline("tso_detector1", sims, tmp_path, ramp_fit={"save_results": True}), uncal)
    products = sorted(p.name for p in tmp_path.glob("*.fits") if p != uncal)
    assert {"x_0_ramp_fit.fits", "x_1_ramp_fit.fits", "x_rateints.fits"} <= set(products)
    before = {n: (tmp_path / n).read_bytes() for n in products}
    half_then_full_disk(monkeypatch, fits.HDUList, "writeto")
    with pytest.raises(OSError, match="unchanged"):
        _run(_pipeline("tso_detector1", sims, tmp_path, ramp_fit={"save_results": True}), uncal)
    monkeypatch.undo()
    _assert_products_unchanged(tmp_path, before)


# --- the documentation table -----------------------------------------------------------------
def test_faults_page_lists_the_pipeline_cases():
    page = (Path(__file__).parents[1] / "docs" / "faults.rst").read_text()
    for alias in PIPELINES:
        assert f"``{alias}``" in page
    for case in ENTRANCE_CASES:
        assert case in page, case
    for fragment in ("no finite FLUX", "newly flagged", "_whtlt.ecsv", "atomic_saves"):
        assert fragment in page, fragment
