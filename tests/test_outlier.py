"""Tests of tso_outlier: primitives on synthetic arrays, the step against simulator truth."""

import warnings

import numpy as np
import pytest
from jwst.datamodels.utils.tso_multispec import make_tso_specmodel
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.motion import measure_shifts, motion_design_matrix
from tso_steps.outlier.cube import detect_cube_outliers
from tso_steps.outlier.detect import OutlierOptions, detect_series_outliers
from tso_steps.outlier.step import TSOOutlierStep
from tso_steps.outlier.timeseries import (
    fill_masked,
    fit_regressors,
    masked_median,
    robust_scale,
    sampled_rolling_median,
)
from tso_steps.scoring import cosmic_ray_rate_effect, score_outlier_flags

OUTLIER = dqflags.pixel["OUTLIER"]
DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]


# --- primitives on plain arrays ---------------------------------------------------------


def test_fill_masked_interpolates_between_good_neighbours():
    y = np.array([[0.0, 99.0, 2.0, 3.0, 99.0], [99.0, 1.0, 1.0, 5.0, 99.0], [9.0] * 5])
    bad = y == 99.0
    bad[2] = True
    filled = fill_masked(y, bad)
    np.testing.assert_allclose(filled[0], [0, 1, 2, 3, 3])
    np.testing.assert_allclose(filled[1], [1, 1, 1, 5, 5])
    assert np.isnan(filled[2]).all()


def test_rolling_median_step_one_is_the_exact_running_median():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(7, 60))
    result = sampled_rolling_median(y, window=9, step=1)
    for t in range(60):
        lo = min(max(t - 4, 0), 60 - 9)
        np.testing.assert_allclose(result[:, t], np.median(y[:, lo : lo + 9], axis=1))


def test_masked_median_and_robust_scale_ignore_bad_samples():
    rng = np.random.default_rng(4)
    y = rng.normal(0.0, 2.0, size=(200, 400))
    bad = rng.random(y.shape) < 0.2
    y[bad] = 1e6
    assert np.all(np.abs(masked_median(y, bad)) < 0.5)
    scale = robust_scale(y, bad)
    assert abs(np.mean(scale) - 2.0) < 0.02
    # Scatter of the estimator: close to the Gaussian optimum 1/sqrt(2n).
    assert np.std(scale) / 2.0 < 1.3 / np.sqrt(2 * 320)


def test_fit_regressors_recovers_per_pixel_coefficients_with_masked_samples():
    rng = np.random.default_rng(5)
    design = rng.normal(size=(300, 2))
    coef = rng.normal(size=(50, 2))
    y = coef @ design.T + 0.01 * rng.normal(size=(50, 300))
    good = rng.random(y.shape) > 0.1
    y[~good] = 1e9
    np.testing.assert_allclose(fit_regressors(y, good, design), coef, atol=3e-3)


def _gaussian_frames(shifts, shape=(40, 120), width=1.0, amplitude=1000.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frames = []
    for dy, dx in shifts:
        spot = np.exp(-0.5 * ((yy - 20 - dy) ** 2 + ((xx - 60 - dx) / 3.0) ** 2) / width**2)
        trace = np.exp(-0.5 * ((yy - 12 - dy) / width) ** 2) * (1 + 0.5 * np.sin((xx - dx) / 5))
        frames.append(amplitude * (spot + trace) + 10.0)
    return np.array(frames)


def test_measure_shifts_recovers_subpixel_and_pixel_shifts():
    rng = np.random.default_rng(6)
    truth = np.vstack([[0.0, 0.0], rng.uniform(-1.2, 1.2, size=(19, 2))])
    frames = _gaussian_frames(truth)
    frames += rng.normal(0.0, 1.0, frames.shape)
    result = measure_shifts(frames, reference=frames[0])
    np.testing.assert_allclose(result.shifts, truth, atol=0.01)
    np.testing.assert_allclose(result.scale, 1.0, atol=0.01)


def test_motion_design_matrix_is_orthonormal_and_empty_without_motion():
    rng = np.random.default_rng(7)
    shifts = rng.normal(0.0, 0.1, size=(200, 2))
    design = motion_design_matrix(shifts)
    assert design.shape == (200, 5)
    np.testing.assert_allclose(design.T @ design / 200, np.eye(5), atol=1e-10)
    assert motion_design_matrix(np.zeros((200, 2))).shape == (200, 0)
    # A tilt step without jitter: the square is collinear with the shift and is dropped.
    step = np.where(np.arange(200) >= 100, 0.5, 0.0)
    assert motion_design_matrix(step).shape == (200, 1)


def test_do_not_use_samples_do_not_poison_the_model():
    """A quarter of the samples are DO_NOT_USE garbage: no false flags, real hits found."""
    rng = np.random.default_rng(8)
    nints, npix = 200, 300
    truth = 100.0 + rng.normal(0.0, 1.0, size=(nints, npix))
    bad = rng.random(truth.shape) < 0.25
    series = np.where(bad, 1e5, truth)
    hits = (rng.random(truth.shape) < 0.002) & ~bad
    series[hits] += 12.0
    options = OutlierOptions(rejection_threshold=5.0, err_floor=0.5)  # the former defaults
    flags, model = detect_series_outliers(series, mask=bad, options=options)
    assert not (flags & bad).any()
    assert flags[hits].mean() >= 0.98
    assert (flags & ~hits).sum() / flags.size < 1e-4
    # The 1e5 garbage never leaks into the model: it stays within the median noise.
    assert np.nanmax(np.abs(model[~bad] - 100.0)) < 2.0


def test_transit_in_a_series_is_removed_by_the_relative_flux():
    rng = np.random.default_rng(9)
    nints = 300
    flux = np.where((np.arange(nints) > 120) & (np.arange(nints) < 180), 0.97, 1.0)
    level = rng.uniform(1e3, 1e5, size=500)
    series = flux[:, None] * level + rng.normal(size=(nints, 500)) * np.sqrt(level)
    err = np.broadcast_to(np.sqrt(level), series.shape)
    options = OutlierOptions(rejection_threshold=5.0, err_floor=0.5)
    flags, _ = detect_series_outliers(series, err=err, options=options)
    assert flags.sum() == 0


def test_cube_driver_gives_the_same_flags_block_by_block_and_threaded():
    rng = np.random.default_rng(10)
    data = rng.normal(50.0, 1.0, size=(60, 20, 30)).astype(np.float32)
    data[rng.random(data.shape) < 0.003] += 20.0
    options = OutlierOptions(rejection_threshold=5.0, err_floor=0.5)
    whole = detect_cube_outliers(data, options=options, block_pixels=600)
    blocks = detect_cube_outliers(data, options=options, block_pixels=37, max_workers=2)
    np.testing.assert_array_equal(whole.indices, blocks.indices)
    assert whole.indices.size > 0
    assert whole.counts.sum() == whole.indices.size


# --- the step: input checks and model plumbing ----------------------------------------


def _cube_model(nints=100, shape=(16, 32), exp_type="NRC_TSGRISM", seed=11):
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 1.0, size=(nints, *shape)).astype(np.float32)
    model = datamodels.CubeModel(data=data)
    model.err = np.ones(data.shape, np.float32)
    model.dq = np.zeros(data.shape, np.uint32)
    model.meta.exposure.type = exp_type
    return model


def test_step_flags_hits_keeps_existing_dq_and_leaves_input_unchanged():
    model = _cube_model()
    model.data[7, 3, 4] += 30.0
    model.data[20, 10, 20] += 30.0
    model.dq[7, 3, 4] = dqflags.pixel["SATURATED"]
    model.dq[0, 0, 0] = DO_NOT_USE
    before = model.data.copy()
    result = TSOOutlierStep.call(model)
    assert result.dq[7, 3, 4] == dqflags.pixel["SATURATED"] | OUTLIER | DO_NOT_USE
    assert result.dq[20, 10, 20] == OUTLIER | DO_NOT_USE
    assert np.isnan(result.data[20, 10, 20]) and np.isnan(result.err[20, 10, 20])
    # Pure Gaussian noise elsewhere: at most one chance 5-sigma flag in 51,200 samples.
    assert ((result.dq & OUTLIER) > 0).sum() <= 3
    assert result.meta.cal_step.tso_outlier == "COMPLETE"
    np.testing.assert_array_equal(model.data, before)
    assert not (model.dq & OUTLIER).any()
    fraction = np.asarray(result.tso_vectors["outlier_fraction"])
    np.testing.assert_allclose(fraction[[7, 20]], 1.0 / (16 * 32))


def test_replace_puts_the_model_value_and_flags_outlier_only():
    model = _cube_model()
    model.data[7, 3, 4] += 30.0
    result = TSOOutlierStep.call(model, replace=True)
    assert result.dq[7, 3, 4] == OUTLIER
    assert abs(result.data[7, 3, 4] - 100.0) < 1.0


def test_slitmodel_calints_is_accepted():
    cube = _cube_model()
    model = datamodels.SlitModel(data=cube.data, err=cube.err, dq=cube.dq)
    model.meta.exposure.type = "NRS_BRIGHTOBJ"
    model.data[5, 5, 5] += 40.0
    result = TSOOutlierStep.call(model)
    assert isinstance(result, datamodels.SlitModel)
    assert result.dq[5, 5, 5] & OUTLIER


def test_file_input_is_flagged(tmp_path):
    model = _cube_model()
    model.data[9, 2, 2] += 40.0
    path = tmp_path / "x_calints.fits"
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = TSOOutlierStep.call(str(path))
    assert result.dq[9, 2, 2] & OUTLIER


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda m: setattr(m.meta.exposure, "type", "NRC_IMAGE"), ValueError, "time-series"),
        (lambda m: setattr(m, "data", m.data[:1].copy()), ValueError, "2 integrations"),
        (lambda m: m.data.fill(np.nan), ValueError, "NaN"),
    ],
)
def test_bad_input_raises_a_clear_error(mutate, error, match):
    model = _cube_model()
    mutate(model)
    with pytest.raises(error, match=match):
        TSOOutlierStep.call(model)


def test_wrong_model_type_raises():
    model = datamodels.ImageModel(data=np.zeros((5, 5), np.float32))
    model.meta.exposure.type = "NRC_TSIMAGE"
    with pytest.raises(TypeError, match="CubeModel"):
        TSOOutlierStep.call(model)


def _x1dints(nints=120, nwave=200, seed=12):
    rng = np.random.default_rng(seed)
    wave = np.linspace(2.5, 4.0, nwave)
    level = 1e4 * (1 + 0.3 * np.sin(wave * 20))
    transit = np.where((np.arange(nints) > 40) & (np.arange(nints) < 80), 0.98, 1.0)
    flux = transit[:, None] * level + rng.normal(size=(nints, nwave)) * np.sqrt(level)
    hits = np.zeros(flux.shape, bool)
    hits[rng.integers(0, nints, 30), rng.integers(0, nwave, 30)] = True
    flux[hits] += 10 * np.sqrt(level)[np.nonzero(hits)[1]]
    specs = []
    for i in range(nints):
        spec = datamodels.SpecModel()
        table = np.zeros(nwave, dtype=spec.get_dtype("spec_table"))
        table["WAVELENGTH"] = wave
        table["FLUX"] = flux[i]
        table["FLUX_ERROR"] = np.sqrt(level)
        table["SURF_BRIGHT"] = flux[i]
        spec.spec_table = table
        specs.append(spec)
    model = datamodels.TSOMultiSpecModel()
    model.spec.append(make_tso_specmodel(specs))
    model.meta.exposure.type = "NRC_TSGRISM"
    return model, hits


def test_x1dints_bins_are_flagged_without_flagging_the_transit():
    model, hits = _x1dints()
    result = TSOOutlierStep.call(model)
    flagged = (result.spec[0].spec_table["DQ"] & OUTLIER) > 0
    assert flagged[hits].all()
    assert (flagged & ~hits).sum() == 0
    assert np.isnan(result.spec[0].spec_table["FLUX"][hits]).all()
    fraction = np.asarray(result.tso_vectors["outlier_fraction"])
    np.testing.assert_allclose(fraction, hits.sum(axis=1) / hits.shape[1])


# --- against the simulator's truth --------------------------------------------------------

simulate = pytest.importorskip("tso_steps.simulate")


def _simulate(
    mode="NRC_TSGRISM",
    nints=150,
    crop=(32, 256),
    depth=0.03,
    jitter=True,
    cr_rate=2e-3,
    seed=21,
    **kwargs,
):
    tilt = simulate.Jitter(rms=0.1, tilt_integration=nints // 2, tilt=(0.1, 0.5))
    return simulate.simulate_tso(
        mode,
        nints=nints,
        ngroups=5,
        crop=crop,
        seed=seed,
        transit=simulate.TransitParameters(rp_rs=np.sqrt(depth)) if depth else False,
        jitter=tilt if jitter else False,
        cosmic_rays=simulate.CosmicRays(rate=cr_rate) if cr_rate else False,
        products=("rateints",),
        **kwargs,
    )


def _score(result, sim):
    flags = (result.dq & OUTLIER) > 0
    effect = cosmic_ray_rate_effect(sim.rateints.data.shape, sim.truth.cosmic_rays)
    score = score_outlier_flags(flags, effect, np.nanmedian(sim.rateints.err, axis=0))
    return score["recall"], score["fp_rate"], score["n_hits"]


@pytest.mark.parametrize(
    ("mode", "crop"), [("NRC_TSGRISM", (32, 256)), ("NRS_BRIGHTOBJ", (32, 512))]
)
def test_cosmic_rays_found_under_transit_jitter_and_tilt(mode, crop):
    """3 % transit, 0.1 px jitter, a 0.5 px tilt, 1/f noise: recall >= 0.98, FP <= 1e-4."""
    sim = _simulate(mode, crop=crop, cr_rate=4e-3 if mode == "NRC_TSGRISM" else 5e-4)
    result = TSOOutlierStep.call(sim.rateints)
    recall, false_rate, nhits = _score(result, sim)
    assert nhits > 300  # enough hits for a recall measured to about 1 %
    assert recall >= 0.98
    assert false_rate <= 1e-4


def test_a_one_percent_transit_alone_raises_no_flag():
    """Noise-free data (with the ERR of the noisy twin): any flag would be the transit's."""
    noisy = _simulate(depth=0.01, jitter=False, cr_rate=0)
    clean = _simulate(
        depth=0.01,
        jitter=False,
        cr_rate=0,
        photon_noise=False,
        read_noise=False,
        one_over_f=False,
    )
    clean.rateints.err = noisy.rateints.err
    assert ((TSOOutlierStep.call(clean.rateints).dq & OUTLIER) > 0).sum() == 0
    # With every noise source on, the transit adds nothing above the Gaussian tail.
    flags = (TSOOutlierStep.call(noisy.rateints).dq & OUTLIER) > 0
    assert flags.mean() <= 2e-5


def test_jitter_and_a_tilt_event_raise_few_false_flags():
    """0.1 px jitter plus a 0.5 px tilt on a steep, undersampled trace, no cosmic rays."""
    sim = _simulate(depth=0.0, cr_rate=0)
    flags = (TSOOutlierStep.call(sim.rateints).dq & OUTLIER) > 0
    assert flags.mean() <= 1e-4
    # A pure running median (jwst's approach) without the flux and motion terms would flag
    # the trace flanks at the tilt; here they stay clean.
    noise = np.nanmedian(sim.rateints.err, axis=0)
    trace = np.nanmedian(sim.rateints.data, axis=0) > 10 * noise
    assert trace.sum() > 500
    assert flags[:, trace].mean() <= 1e-4


def test_motion_from_tso_vectors_is_used():
    from tso_steps.vectors import add_vectors

    sim = _simulate(cr_rate=2e-3)
    shifts = sim.truth.shifts
    add_vectors(
        sim.rateints,
        {"shift_dispersion": shifts[:, 0], "shift_cross_dispersion": shifts[:, 1]},
    )
    result = TSOOutlierStep.call(sim.rateints, motion="vectors")
    recall, false_rate, _ = _score(result, sim)
    assert recall >= 0.98
    assert false_rate <= 1e-4
    assert "shift_dispersion" in result.tso_vectors.dtype.names
    assert "outlier_fraction" in result.tso_vectors.dtype.names


def test_flags_grow_into_touching_candidates_only_within_an_integration():
    from tso_steps.outlier.cube import grow_flags

    shape = (3, 5, 6)

    def flat(t, y, x):
        return np.ravel_multi_index((t, y, x), shape)

    flagged = [flat(1, 2, 2)]
    candidates = [
        flat(1, 3, 3),  # touches the flag (diagonal)
        flat(1, 4, 4),  # touches only the candidate above: joins through it
        flat(1, 0, 5),  # alone: stays
        flat(0, 2, 2),  # same pixel, another integration: stays
        flat(2, 2, 3),  # next integration: stays
        flat(1, 2, 5),  # same row, 3 columns away: stays
    ]
    joined = grow_flags(np.array(flagged), np.array(candidates), shape)
    np.testing.assert_array_equal(joined, sorted([flat(1, 3, 3), flat(1, 4, 4)]))
    # a flag on the last column does not wrap onto the next row's first column
    edge = grow_flags(np.array([flat(0, 1, 5)]), np.array([flat(0, 2, 0)]), shape)
    assert edge.size == 0
    assert grow_flags(np.array([], int), np.array(candidates), shape).size == 0
