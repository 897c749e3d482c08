"""tso_extract: per-integration optimal and box extraction against the simulator's truth."""

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps.exposure import ImagingExposureError
from tso_steps.extract import (
    ExtractOptions,
    OptimalExtractStep,
    box_extract,
    extract_order,
    horne_extract,
)
from tso_steps.extract.adapter import extract_arrays
from tso_steps.readout import ReadoutMetadataError
from tso_steps.scoring import (
    channel_error_ratio,
    fit_transit_scale,
    true_profile_cube,
    white_light_scatter,
)
from tso_steps.simulate import Jitter, simulate_tso
from tso_steps.trace import TraceStep, measure_trace
from tso_steps.vectors import add_vectors, get_vectors

CROPS = {
    "NRC_TSGRISM": (32, 256),
    "NIS_SOSS": (256, 256),
    "NRS_BRIGHTOBJ": (32, 256),
    "MIR_LRS-SLITLESS": (200, 48),
}


def _simulate(mode, nints=40, **kwargs):
    options = dict(ngroups=5, seed=3, products=("rateints",), crop=CROPS[mode])
    options.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=nints, **options)


def _extract(sim, **kwargs):
    """Our optimal extraction (array level) and the same extraction with the TRUE profile."""
    model = sim.rateints
    ref, positions, _ = measure_trace(model)
    cube, var_p, var_r, bad = extract_arrays(model, sim.truth.dispersion_axis)
    halfwidth = kwargs.pop("halfwidth", max(3.0, np.ceil(1.5 * ref.fwhm[0] + 1)))
    options = ExtractOptions(halfwidth=halfwidth, **kwargs)
    args = (cube, var_p, var_r, bad, ref.center[0], positions.shift)
    ours = extract_order(*args, options)
    truth = extract_order(*args, options, true_profile=true_profile_cube(sim.truth))
    return ours, truth, (*args, options)


@pytest.fixture(scope="module")
def jittered_grism():
    """Undersampled NIRCam grism trace (FWHM ~1.9 px) with 0.02 px jitter, white noise only."""
    return _simulate("NRC_TSGRISM", nints=150, jitter=0.02, one_over_f=False, cosmic_rays=False)


@pytest.mark.parametrize("jitter", [0.0, 0.02])
def test_white_light_scatter_matches_horne_with_true_profile(jitter):
    sim = _simulate(
        "NRC_TSGRISM", nints=150, jitter=jitter, one_over_f=False, cosmic_rays=False, seed=11
    )
    ours, truth, _ = _extract(sim)
    lc = sim.truth.light_curve
    ratio = white_light_scatter(ours.extraction.flux, lc) / white_light_scatter(
        truth.extraction.flux, lc
    )
    # measured 1.000 (still) and 1.003 (0.02 px jitter) with seed 11
    assert ratio <= 1.02


def test_profile_follows_a_tilt_event():
    tilt = Jitter(rms=0.02, tilt_integration=50, tilt=(0.0, 0.6))
    sim = _simulate(
        "NRC_TSGRISM", nints=100, jitter=tilt, one_over_f=False, cosmic_rays=False, seed=5
    )
    ours, truth, _ = _extract(sim)
    lc = sim.truth.light_curve
    ratio = white_light_scatter(ours.extraction.flux, lc) / white_light_scatter(
        truth.extraction.flux, lc
    )
    assert ratio <= 1.06  # measured 1.034 (1.42 with one straight line in the shift)


def test_flux_error_matches_channel_scatter(jittered_grism):
    ours, _, _ = _extract(jittered_grism)
    lcs = jittered_grism.truth.spectral_light_curves()[:, 0, :]
    ratio = channel_error_ratio(ours.extraction.flux, ours.extraction.error, lcs)
    assert abs(ratio - 1.0) < 0.10  # measured 1.025


def test_injected_transit_depth_is_recovered_within_one_sigma(jittered_grism):
    ours, _, _ = _extract(jittered_grism)
    white = np.nansum(ours.extraction.flux, axis=1)
    fit = fit_transit_scale(white, jittered_grism.truth.light_curve)
    assert abs(fit.scale - 1.0) < fit.scale_error  # measured 0.986 +- 0.050


def test_optimal_beats_box_when_background_limited():
    sim = _simulate(
        "NRC_TSGRISM",
        nints=60,
        brightness=0.05,
        background=2000.0,
        one_over_f=False,
        cosmic_rays=False,
        read_noise=2.0,
    )
    ours, _, (*args, options) = _extract(sim)
    box = extract_order(*args, dataclasses.replace(options, method="box"))
    lc = sim.truth.light_curve
    optimal, boxed = (white_light_scatter(r.extraction.flux, lc) for r in (ours, box))
    assert optimal < 0.85 * boxed  # measured 0.66


def test_cosmic_ray_inside_the_aperture_is_rejected():
    rng = np.random.default_rng(1)
    nints, nrow, ndisp = 20, 9, 30
    y = np.arange(nrow)[:, None] - 4.0
    profile = np.exp(-0.5 * (y / 1.2) ** 2) * np.ones((1, ndisp))
    profile /= profile.sum(axis=0)
    profile = np.broadcast_to(profile, (nints, nrow, ndisp))
    flux = 1000.0
    var_r = np.full(profile.shape, 25.0)
    data = flux * profile + rng.normal(0, 5.0, profile.shape) + 0 * var_r
    data[3, 4, 10] += 5000.0
    good = np.ones(profile.shape, bool)
    result = horne_extract(data, profile, var_r, 0.0, good, clip=5.0)
    assert result.rejected[3, 10] == 1
    assert result.rejected.sum() == 1
    assert abs(result.flux[3, 10] - flux) < 5 * result.error[3, 10]
    assert np.allclose(np.std(result.flux - flux), np.median(result.error), rtol=0.2)


def test_box_follows_the_trace_with_fractional_edges():
    nints, nrow, ndisp = 5, 12, 4
    offset = np.arange(nrow)[:, None] - 5.3 + np.zeros((1, ndisp))
    shifts = np.array([0.0, 0.25, 0.5, -0.4, 0.1])
    data = np.ones((nints, nrow, ndisp))  # a flat source: the box sum is its width
    var = np.ones_like(data)
    good = np.ones(data.shape, bool)
    result = box_extract(data, var, var, good, offset, shifts, 2.3)
    assert np.allclose(result.flux, 4.6)
    assert np.allclose(result.npixels, 4.6)


@pytest.mark.parametrize(
    "mode, norders", [("NIS_SOSS", 2), ("NRS_BRIGHTOBJ", 1), ("MIR_LRS-SLITLESS", 1)]
)
def test_every_spectral_mode_gives_the_true_spectrum(mode, norders):
    sim = _simulate(mode, nints=12, transit=False)
    out = OptimalExtractStep().run(sim.rateints)
    assert len(out.spec) == norders
    for k, spec in enumerate(out.spec):
        assert spec.spectral_order == k + 1
        flux = np.asarray(spec.spec_table["FLUX"])
        truth = sim.truth.spectrum[k]
        lit = np.isfinite(truth) & np.all(np.isfinite(flux), axis=0) & (truth > 0)
        ratio = np.median(np.median(flux[:, lit], axis=0) / truth[lit])
        # the flux inside the aperture: SOSS's and MIRI's wide wings fall partly outside
        low = {"NIS_SOSS": 0.9, "MIR_LRS-SLITLESS": 0.93}.get(mode, 0.97)
        assert low < ratio < 1.02


@pytest.fixture(scope="module")
def grism_x1dints():
    sim = _simulate("NRC_TSGRISM", nints=10)
    return sim, OptimalExtractStep().run(sim.rateints)


def test_output_is_an_x1dints_product(grism_x1dints, tmp_path):
    sim, out = grism_x1dints
    assert isinstance(out, datamodels.TSOMultiSpecModel)
    assert out.meta.cal_step.tso_extract == "COMPLETE"
    table = out.spec[0].spec_table
    assert table["FLUX"].shape == (10, 256)
    assert table.columns["FLUX"].unit == "DN/s"
    assert np.array_equal(table["INT_NUM"], np.arange(1, 11))
    assert np.allclose(table["TDB-MID"], sim.rateints.int_times["int_mid_BJD_TDB"])
    assert np.allclose(table["MJD-BEG"], sim.rateints.int_times["int_start_MJD_UTC"])
    err2 = table["FLUX_VAR_POISSON"] + table["FLUX_VAR_RNOISE"]
    assert np.allclose(table["FLUX_ERROR"] ** 2, err2)
    assert np.all(table["NPIXELS"] > 0)
    vectors = get_vectors(out)
    assert {"n_extract_rejected", "extract_background"} <= set(vectors.colnames)
    path = tmp_path / "sim_x1dints.fits"
    out.save(path)
    with datamodels.open(path) as back:
        assert back.meta.cal_step.tso_extract == "COMPLETE"
        assert np.allclose(back.spec[0].spec_table["FLUX"], table["FLUX"], equal_nan=True)


def test_jwst_white_light_runs_on_the_output(grism_x1dints):
    from jwst.white_light import WhiteLightStep

    assert os.environ.get("STPIPE_DISABLE_CRDS_STEPPARS") == "true"
    sim, out = grism_x1dints
    curve = WhiteLightStep.call(out)
    flux = np.asarray(curve["whitelight_flux"])
    assert len(flux) == 10
    assert np.allclose(flux, np.nansum(out.spec[0].spec_table["FLUX"], axis=1))


def test_trace_step_results_and_vectors_travel(grism_x1dints):
    sim, _ = grism_x1dints
    traced = TraceStep().run(sim.rateints)
    add_vectors(traced, {"centroid_x": np.arange(10.0)})
    before = traced.data.copy()
    out = OptimalExtractStep().run(traced)
    assert np.array_equal(traced.data, before)  # input not modified
    vectors = get_vectors(out)
    assert np.allclose(vectors["centroid_x"], np.arange(10.0))
    assert np.allclose(vectors["trace_shift"], get_vectors(traced)["trace_shift"])


def test_wavelength_comes_from_the_model_array(grism_x1dints):
    sim, _ = grism_x1dints
    model = sim.rateints.copy()
    wave = np.broadcast_to(np.linspace(2.4, 4.0, 256), model.data.shape[1:])
    model.wavelength = np.array(wave, dtype=np.float32)
    out = OptimalExtractStep(method="box").run(model)
    got = np.asarray(out.spec[0].spec_table["WAVELENGTH"][0])
    assert np.allclose(got, wave[0], atol=1e-5)


@pytest.mark.parametrize("mode, most", [("NRS_BRIGHTOBJ", 0.85), ("NRC_TSGRISM", 0.97)])
def test_one_over_f_fit_lowers_white_light_scatter(mode, most):
    sim = _simulate(mode, nints=60, jitter=0.02, cosmic_rays=False, one_over_f=True)
    plain = OptimalExtractStep().run(sim.rateints)
    joint = OptimalExtractStep(one_over_f=True).run(sim.rateints)
    lc = sim.truth.light_curve
    scatter = [
        white_light_scatter(np.asarray(m.spec[0].spec_table["FLUX"]), lc) for m in (plain, joint)
    ]
    # measured 0.74 (NIRSpec: pixels outside the trace in every column pin its offset) and
    # 0.95 (NIRCam grism: the rows under the trace have no such pixels)
    assert scatter[1] < most * scatter[0]
    # per-column errors include the stripes (the residual stripes still correlate
    # neighbouring columns, which a per-column error cannot express)
    lcs = sim.truth.spectral_light_curves()[:, 0, :]
    table = joint.spec[0].spec_table
    flux, error = np.asarray(table["FLUX"]), np.asarray(table["FLUX_ERROR"])
    ratio = channel_error_ratio(flux, error, lcs, width=1)
    assert abs(ratio - 1.0) < 0.10  # measured 0.99 and 1.01


def test_bad_inputs_raise_clear_errors(grism_x1dints):
    sim, _ = grism_x1dints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = simulate_tso("NRC_TSIMAGE", nints=3, ngroups=2, seed=1, products=("rateints",))
    with pytest.raises(ImagingExposureError):
        OptimalExtractStep().run(image.rateints)
    one = datamodels.CubeModel(sim.rateints.data[:1].copy())
    one.update(sim.rateints)
    with pytest.raises(ValueError, match="at least 2 integrations"):
        OptimalExtractStep().run(one)
    with pytest.raises(TypeError, match="CubeModel"):
        OptimalExtractStep().run(datamodels.ImageModel(np.zeros((4, 4), np.float32)))
    no_readout = sim.rateints.copy()
    no_readout.meta.subarray.fastaxis = None
    with pytest.raises(ReadoutMetadataError):
        OptimalExtractStep(one_over_f=True).run(no_readout)
    blank = sim.rateints.copy()
    blank.data[:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        OptimalExtractStep().run(blank)


def test_calints_slit_model_keeps_its_flux_unit(grism_x1dints):
    sim, rate_x1d = grism_x1dints
    rate = sim.rateints
    calints = datamodels.SlitModel(
        data=rate.data * 2.0,
        dq=rate.dq,
        err=rate.err * 2.0,
        var_poisson=rate.var_poisson * 4.0,
        var_rnoise=rate.var_rnoise * 4.0,
    )
    calints.update(rate)
    calints.int_times = rate.int_times.copy()
    calints.meta.bunit_data = "MJy"
    out = OptimalExtractStep().run(calints)
    table = out.spec[0].spec_table
    assert table.columns["FLUX"].unit == "MJy"
    ratio = np.nanmedian(table["FLUX"] / rate_x1d.spec[0].spec_table["FLUX"])
    assert ratio == pytest.approx(2.0, rel=1e-3)


def test_config_file_runs_and_output_is_named_x1dints(grism_x1dints, tmp_path):
    sim, _ = grism_x1dints
    config = Path(__file__).resolve().parents[1] / "config" / "tso_extract.asdf"
    OptimalExtractStep.call(
        sim.rateints, config_file=str(config), save_results=True, output_dir=str(tmp_path)
    )
    names = [p.name for p in tmp_path.glob("*.fits")]
    assert names == [sim.rateints.meta.filename.replace("rateints", "x1dints")]
