"""tso_background: 2-D background fits against the simulator's injected background.

Residual tests use faint sources (``brightness`` 0.001-0.05) so that the PSF wings beyond the
source mask, which no background fit can tell from background, stay below the noise floor;
1/f noise is off (it is tso_one_over_f's job).  The residual is the RMS over integrations of
the region-mean error of the subtracted background; the floor is the same quantity for the
ideal estimator that knows the true background shape and fits only its level to the same
unilluminated pixels with ``var_poisson + var_rnoise`` weights, run on the same noise
(``tso_steps.scoring``).
"""

import warnings
from functools import cache

import numpy as np
import pytest
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags
from stdatamodels.jwst.datamodels.validate import ValidationWarning

from tso_steps.background.fitting import fit_basis, fit_lines, side_masks, surface_basis
from tso_steps.background.model import find_image_discontinuity, find_template_discontinuity
from tso_steps.background.step import Background2DStep
from tso_steps.scoring import (
    fit_transit_scale,
    ideal_level_residual,
    level_noise_floor,
    region_residual,
    truth_aperture,
)
from tso_steps.simulate import simulate_tso

FLOOR_FACTOR = 1.1


@cache
def _sim(mode, nints=40, ngroups=4, seed=3, rate=20.0, brightness=0.01, crop=None, origin=None):
    return simulate_tso(
        mode,
        nints=nints,
        ngroups=ngroups,
        seed=seed,
        crop=crop,
        crop_origin=origin,
        one_over_f=False,
        background={"rate": rate},
        brightness=brightness,
        products=("rateints",),
    )


SOSS = {"crop": (128, 256), "origin": (0, 572), "brightness": 0.001}  # holds the step


def _soss_band_mask(sim, path, halfwidth=20):
    """Unilluminated pixels outside +-halfwidth of order 1 (the faint SOSS trace at this
    brightness is below the median image's detection threshold: a user mask, as users of
    faint SOSS targets give)."""
    _, band = truth_aperture(sim.truth, sim.rateints.data.shape[1:], halfwidth=halfwidth)
    np.save(path, ~band)
    return str(path)


def _residual_ratios(sim, out, data=None, true=None):
    """Residual / realised ideal floor on the fit pixels and on the +-4 px trace box."""
    rate = sim.rateints
    data = rate.data if data is None else data
    true = sim.truth.background if true is None else true
    fitted = data - out.data
    used = out.tso_background_mask.astype(bool)
    variance = rate.var_poisson + rate.var_rnoise
    _, aperture = truth_aperture(sim.truth, data.shape[1:])
    ratios = {}
    for name, region in (("off", used), ("trace", aperture)):
        ideal = ideal_level_residual(data, true, variance, used, region)
        ratios[name] = region_residual(fitted, true, region) / ideal
    return ratios


# ----------------------------------------------------------------------------- algorithms
def test_line_fit_recovers_a_polynomial_per_column_around_a_masked_band():
    rng = np.random.default_rng(0)
    y = np.linspace(-1, 1, 40)[:, None]
    truth = 3.0 + 0.5 * np.arange(60)[None, :] / 60 + (1.0 + 0.01 * np.arange(60)) * y
    usable = np.ones((1, 40, 60), bool)
    usable[0, 15:25] = False
    image = truth + rng.normal(0, 1e-3, truth.shape)
    image[0, 5] = 1e4  # a cosmic ray is clipped
    model, kept, filled = fit_lines(image[None], usable, order=1)
    assert not kept[0, 0, 5] and filled == 0
    assert np.max(np.abs(model[0] - truth)) < 2e-3


def test_line_fit_interpolates_lines_without_pixels():
    truth = np.tile(np.linspace(1, 2, 30)[None, :], (20, 1))
    usable = np.ones((1, 20, 30), bool)
    usable[0, :, 10:13] = False
    model, _, filled = fit_lines(truth[None], usable, order=1)
    assert filled == 3
    assert np.allclose(model[0], truth, atol=1e-9)


def test_surface_with_sides_fits_a_stepped_gradient_exactly():
    yy, xx = np.indices((50, 80))
    truth = (1 + 0.01 * xx + 0.02 * yy) * np.where(xx >= 37, 1.7, 1.0)
    sides = side_masks(truth.shape, 37)
    basis = surface_basis(truth.shape, 1, sides)
    coeffs, _ = fit_basis(truth[None], np.ones((1, 50, 80), bool), basis)
    assert np.allclose(np.tensordot(coeffs[0], basis, axes=1), truth, atol=1e-9)


def test_template_step_is_located_row_by_row():
    yy, xx = np.indices((60, 200))
    step_at = 120 + (yy[:, 0] > 30)  # the step moves one column in the upper half
    template = (1 + 0.001 * xx) * np.where(xx >= step_at[:, None], 2.0, 1.0)
    assert np.array_equal(find_template_discontinuity(template)[:25], np.full(25, 120.0))
    assert np.array_equal(find_template_discontinuity(template)[-25:], np.full(25, 121.0))
    assert find_template_discontinuity(1 + 0.001 * xx) is None


def test_image_step_is_found_only_when_significant():
    rng = np.random.default_rng(1)
    yy, xx = np.indices((64, 200))
    usable = np.ones(xx.shape, bool)
    flat = 10 + 0.01 * xx + rng.normal(0, 1, xx.shape)
    assert find_image_discontinuity(flat, usable) is None
    stepped = flat + np.where(xx >= 90, 2.0, 0.0)
    assert find_image_discontinuity(stepped, usable) == 90.0


# ----------------------------------------------------------------------------- noise floor
@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("NRS_BRIGHTOBJ", {"rate": 5.0, "brightness": 0.002}),
        ("NRC_TSGRISM", {"crop": (64, 256)}),
        ("MIR_LRS-SLITLESS", {"rate": 15.0}),
        ("NRC_TSIMAGE", {"brightness": 0.05}),
    ],
)
def test_default_background_reaches_the_noise_floor(mode, options):
    sim = _sim(mode, **options)
    out = Background2DStep().run(sim.rateints)
    ratios = _residual_ratios(sim, out)
    assert ratios["off"] <= FLOOR_FACTOR, ratios
    assert ratios["trace"] <= FLOOR_FACTOR, ratios


def test_refitting_every_integration_adds_noise_the_scale_mode_avoids():
    sim = _sim("NRS_BRIGHTOBJ", rate=5.0, brightness=0.002)
    scale = _residual_ratios(sim, Background2DStep(per_integration="scale").run(sim.rateints))
    full = _residual_ratios(sim, Background2DStep(per_integration="full").run(sim.rateints))
    assert scale["trace"] <= FLOOR_FACTOR
    assert full["trace"] > 1.5 * scale["trace"], (scale, full)


def test_scale_follows_a_background_that_varies_in_time():
    # the simulator's background is constant: add a 10 % drift (its extra photon noise is
    # negligible next to the read noise here)
    sim = _sim("NRS_BRIGHTOBJ", rate=5.0, brightness=0.002)
    drift = 1.0 + 0.1 * np.sin(np.linspace(0, 3, sim.truth.nints))
    true = drift[:, None, None] * sim.truth.background
    model = sim.rateints.copy()
    model.data = (model.data + (drift[:, None, None] - 1) * sim.truth.background).astype(np.float32)
    out = Background2DStep().run(model)
    scale = out.tso_vectors["background_scale"]  # relative to the mean image's background
    assert np.allclose(scale / scale.mean(), drift / drift.mean(), atol=0.01)
    ratios = _residual_ratios(sim, out, data=model.data, true=true)
    assert ratios["trace"] <= FLOOR_FACTOR, ratios
    frozen = _residual_ratios(
        sim, Background2DStep(per_integration="none").run(model), data=model.data, true=true
    )
    assert frozen["trace"] > 3.0, frozen


def test_soss_template_is_scaled_on_each_side_of_its_step(tmp_path):
    sim = _sim("NIS_SOSS", **SOSS)
    true = sim.truth.background
    step_at = int(np.flatnonzero(np.diff(true[0]) > 0.1 * true[0, 0])[0]) + 1
    template = np.where(np.arange(true.shape[1]) >= step_at, 1.5, 0.5) * true
    path = tmp_path / "template.npy"
    np.save(path, template)
    mask = _soss_band_mask(sim, tmp_path / "mask.npy")
    out = Background2DStep(template_file=str(path), mask_file=mask).run(sim.rateints)
    shape = out.tso_background_model
    # left side scaled by ~2, right by ~2/3: the model matches the truth to 0.5 %
    assert np.max(np.abs(shape / true - 1)) < 0.005
    ratios = _residual_ratios(sim, out)
    assert ratios["off"] <= FLOOR_FACTOR and ratios["trace"] <= FLOOR_FACTOR, ratios
    # without the split, one scale cannot fit both sides
    single = Background2DStep(template_file=str(path), discontinuity=-1, mask_file=mask).run(
        sim.rateints
    )
    assert np.max(np.abs(single.tso_background_model / true - 1)) > 0.3


def test_jwst_soss_reference_library_picks_the_matching_template(tmp_path):
    sim = _sim("NIS_SOSS", **SOSS)
    true = sim.truth.background
    flat = np.full_like(true, true.mean())  # a wrong template: no step, no gradient
    path = tmp_path / "soss_bkg.fits"
    datamodels.SossBkgModel(data=np.stack([flat, 2.0 * true]).astype(np.float32)).save(path)
    mask = _soss_band_mask(sim, tmp_path / "mask.npy")
    out = Background2DStep(template_file=str(path), mask_file=mask).run(sim.rateints)
    assert np.max(np.abs(out.tso_background_model / true - 1)) < 0.005


def test_soss_without_template_fits_a_surface_each_side_of_the_found_step(tmp_path):
    sim = _sim("NIS_SOSS", **SOSS)
    out = Background2DStep(mask_file=_soss_band_mask(sim, tmp_path / "mask.npy")).run(sim.rateints)
    ratios = _residual_ratios(sim, out)
    assert ratios["off"] <= FLOOR_FACTOR and ratios["trace"] <= FLOOR_FACTOR, ratios


def test_trace_from_tso_trace_masks_the_source():
    from tso_steps import TraceStep

    sim = _sim("NRC_TSGRISM", crop=(64, 256), brightness=0.05)
    traced = TraceStep().run(sim.rateints)
    out = Background2DStep(mask_method="trace").run(traced)
    used = out.tso_background_mask.astype(bool)
    _, aperture = truth_aperture(sim.truth, used.shape)
    assert not (used & aperture).any()
    ratios = _residual_ratios(sim, out)
    assert ratios["off"] <= FLOOR_FACTOR and ratios["trace"] <= FLOOR_FACTOR, ratios


# ----------------------------------------------------------------------------- transit depth
@pytest.mark.slow
def test_transit_depth_is_unbiased_after_subtraction_and_diluted_before():
    sim = _sim("NRS_BRIGHTOBJ", ngroups=8, rate=80.0, brightness=0.3, crop=(32, 512), seed=3)
    truth = sim.truth
    _, aperture = truth_aperture(truth, sim.rateints.data.shape[1:])

    def depth(cube):
        fit = fit_transit_scale(np.where(aperture, cube, 0).sum(axis=(1, 2)), truth.light_curve)
        injected = 1 - truth.light_curve.min()
        return fit.scale * injected, fit.scale_error * injected

    reference, _ = depth(np.array([truth.source_image(i) for i in range(truth.nints)]))
    raw, raw_error = depth(sim.rateints.data)
    corrected, error = depth(Background2DStep().run(sim.rateints).data)
    assert abs(corrected - reference) < 3 * error, (corrected, reference, error)
    assert reference - raw > 4 * raw_error, (raw, reference, raw_error)


# ----------------------------------------------------------------------------- products
def test_outputs_round_trip_and_input_is_untouched(tmp_path):
    sim = _sim("NRC_TSGRISM", crop=(64, 256))
    model = sim.rateints.copy()
    model.dq[:, 10, 20] |= dqflags.pixel["DO_NOT_USE"]
    model.data[:, 10, 20] = 1e6  # must not pull the fit
    model.data[3, 40, 100] = np.nan
    before = model.data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        out = Background2DStep().run(model)
    assert np.array_equal(model.data, before, equal_nan=True)
    assert np.array_equal(out.dq, model.dq)
    assert np.isnan(out.data[3, 40, 100])
    assert out.tso_background_mask[10, 20] == 0
    assert out.meta.cal_step.tso_background == "COMPLETE"
    rebuilt = out.tso_vectors["background_scale"][:, None, None] * out.tso_background_model
    check = np.isfinite(model.data) & (model.data < 1e5)
    assert np.allclose((model.data - out.data)[check], rebuilt[check], atol=1e-3)
    path = tmp_path / "x_bsub.fits"
    out.save(path)
    with datamodels.open(path) as back:
        assert np.array_equal(back.tso_background_model, out.tso_background_model)
        assert np.array_equal(back.tso_background_mask, out.tso_background_mask)
        assert np.array_equal(
            back.tso_vectors["background_level"], out.tso_vectors["background_level"]
        )
        assert back.meta.cal_step.tso_background == "COMPLETE"


def test_full_mode_saves_the_per_integration_models():
    sim = _sim("NRC_TSGRISM", crop=(64, 256))
    out = Background2DStep(per_integration="full").run(sim.rateints)
    assert out.tso_background_model.shape == sim.rateints.data.shape
    assert np.allclose(sim.rateints.data - out.data, out.tso_background_model, atol=1e-3)


def test_parameter_file_matches_the_defaults():
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "config" / "tso_background.asdf"
    loaded = Background2DStep.from_config_file(str(config)).get_pars()
    defaults = Background2DStep().get_pars()
    for key in ("input_dir", "output_dir", "output_file"):
        loaded.pop(key, None)
        defaults.pop(key, None)
    assert loaded == defaults


# ----------------------------------------------------------------------------- bad input
def _small(mode="NRC_TSGRISM"):
    return _sim(mode, nints=3, crop=(32, 64) if mode == "NRC_TSGRISM" else None).rateints


def test_wrong_exposure_type_is_refused():
    model = _small().copy()
    model.meta.exposure.type = "NRC_IMAGE"
    with pytest.raises(ValueError, match="supports"):
        Background2DStep().run(model)


def test_wrong_model_type_is_refused():
    with pytest.raises(TypeError, match="CubeModel or SlitModel"):
        Background2DStep().run(datamodels.ImageModel(np.ones((10, 10), np.float32)))


def test_single_integration_is_refused():
    model = _small().copy()
    model.data = model.data[:1]
    with pytest.raises(ValueError, match="at least 2 integrations"):
        Background2DStep().run(model)


def test_all_nan_data_are_refused():
    model = _small().copy()
    model.data[:] = np.nan
    with pytest.raises(ValueError, match="NaN everywhere"):
        Background2DStep().run(model)


def test_line_method_on_imaging_is_refused():
    from tso_steps.exposure import ImagingExposureError

    with pytest.raises(ImagingExposureError):
        Background2DStep(method="line").run(_small("NRC_TSIMAGE"))


def test_template_method_needs_a_matching_template(tmp_path):
    with pytest.raises(ValueError, match="template_file"):
        Background2DStep(method="template").run(_small())
    path = tmp_path / "t.npy"
    np.save(path, np.ones((5, 5)))
    with pytest.raises(ValueError, match="shape"):
        Background2DStep(template_file=str(path), method="template").run(_small())


def test_level_floor_matches_its_definition():
    true = np.full((10, 10), 2.0)
    fit = np.zeros((10, 10), bool)
    fit[:5] = True
    # 50 pixels of variance 4: level error 2 / sqrt(50), times the region mean shape 2 / 2
    assert np.isclose(level_noise_floor(true, np.full((10, 10), 4.0), fit, ~fit), 2 / np.sqrt(50))
