"""tso_jitter: shifts measured against the simulator's truth, flux-conserving realignment."""

import logging
import warnings

import numpy as np
import pytest
from jwst.datamodels.utils.tso_multispec import make_tso_specmodel
from scipy.special import ndtr
from stdatamodels.jwst import datamodels

from tso_steps.jitter import JitterCorrectStep, measure_alignment, shift_array, shift_kernel
from tso_steps.simulate import simulate_tso
from tso_steps.vectors import get_vectors


def _pixelated_gaussian(n, centre, sigma):
    x = np.arange(n)
    return ndtr((x + 0.5 - centre) / sigma) - ndtr((x - 0.5 - centre) / sigma)


@pytest.fixture(scope="module")
def soss():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(
            "NIS_SOSS",
            nints=20,
            ngroups=10,
            crop=(256, 512),
            seed=3,
            jitter=0.1,
            brightness=2.0,
            cosmic_rays=False,
            one_over_f=False,
            products=("rateints",),
        )


@pytest.fixture(scope="module")
def corrected(soss):
    return JitterCorrectStep().run(soss.rateints)


def test_kernel_conserves_flux_and_moves_the_content():
    for shift in (-1.3, -0.25, 0.1, 0.5, 2.7):
        offsets, weights = shift_kernel(shift)
        assert abs(weights.sum() - 1) < 1e-12
        profile = _pixelated_gaussian(200, 100.0 + shift, 1.2)
        moved = shift_array(profile, shift, axis=0)
        assert abs(moved.sum() - profile.sum()) < 1e-12
        x = np.arange(200)
        assert abs(np.sum(x * moved) / moved.sum() - 100.0) < 2e-3
        np.testing.assert_allclose(moved, _pixelated_gaussian(200, 100.0, 1.2), atol=0.01)


def test_measured_shifts_match_truth(soss, corrected):
    truth = soss.truth
    vectors = get_vectors(corrected)
    for name in ("shift_dispersion", "shift_cross_dispersion"):
        measured = np.asarray(vectors[name])
        true = getattr(truth, name)
        error = (measured - measured.mean()) - (true - true.mean())
        rms = np.sqrt(np.mean(error**2))
        print(f"{name}: rms error {rms:.5f} px for {np.std(true):.3f} px jitter")
        assert rms <= 0.005


def test_residual_shift_after_correction_is_small(soss, corrected):
    reference = np.nanmedian(corrected.data, axis=0)
    residual = measure_alignment(
        corrected.data, reference="median", iterations=1, max_error=1.0
    ).shifts
    rms = np.sqrt(np.mean((residual - residual.mean(axis=0)) ** 2, axis=0))
    print(f"residual shifts after correction (y, x): {rms} px")
    assert np.all(rms <= 0.005)
    assert np.isfinite(reference).all()


def test_flux_is_conserved():
    # Noiseless, transit-free frames: after realignment the flux inside a fixed window away
    # from the array ends (across which the jitter really moves flux) is the same in every
    # integration.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso(
            "NIS_SOSS",
            nints=8,
            ngroups=2,
            crop=(256, 256),
            seed=5,
            jitter=0.1,
            transit=False,
            cosmic_rays=False,
            one_over_f=False,
            photon_noise=False,
            read_noise=False,
            products=("rateints",),
        )
    model = sim.rateints.copy()
    model.data = np.stack([sim.truth.rate_image(i) for i in range(8)]).astype(np.float32)
    result = JitterCorrectStep().run(model)
    window = (slice(None), slice(8, -8), slice(8, -8))
    before = model.data[window].sum(axis=(1, 2), dtype=np.float64)
    after = result.data[window].sum(axis=(1, 2), dtype=np.float64)
    spread_before = np.ptp(before) / before.mean()
    spread_after = np.ptp(after) / after.mean()
    print(f"window flux spread {spread_before:.1e} before, {spread_after:.1e} after")
    assert spread_after < 1e-4
    total = result.data.sum(axis=(1, 2), dtype=np.float64)
    assert np.max(np.abs(total / model.data.sum(axis=(1, 2), dtype=np.float64) - 1)) < 1e-3


def test_variances_are_propagated(soss, corrected):
    # A 4-tap interpolation lowers per-pixel variance a little (neighbours become correlated).
    ratio = corrected.var_poisson.sum() / soss.rateints.var_poisson.sum()
    assert 0.8 < ratio <= 1.0 + 1e-6
    total = corrected.var_poisson + corrected.var_rnoise + corrected.var_flat
    np.testing.assert_allclose(corrected.err**2, total, rtol=0.05)
    assert corrected.meta.cal_step.tso_jitter == "COMPLETE"
    assert not np.shares_memory(corrected.data, soss.rateints.data)


def test_dq_is_or_ed_over_contributing_pixels(soss):
    model = soss.rateints.copy()
    model.dq[:, 128, 200] |= 4
    result = JitterCorrectStep().run(model)
    flagged = (result.dq & 4) > 0
    assert flagged[:, 128, 200].all()
    assert flagged.sum() > flagged.shape[0]
    assert (flagged.sum(axis=(1, 2)) <= 25).all()


def test_measure_only_leaves_the_data_alone(soss):
    result = JitterCorrectStep(resample=False).run(soss.rateints)
    np.testing.assert_array_equal(result.data, soss.rateints.data)
    assert np.isfinite(get_vectors(result)["shift_cross_dispersion"]).all()


def _featureless(nints=12, seed=4):
    rng = np.random.default_rng(seed)
    shifts = rng.normal(0, 0.1, nints)
    ny, nx = 32, 200
    cube = np.empty((nints, ny, nx))
    for i, dy in enumerate(shifts):
        cube[i] = 5000 * _pixelated_gaussian(ny, 15.3 + dy, 1.5)[:, None] + 10.0
    var = cube / 2.0 + 25.0
    cube += rng.normal(size=cube.shape) * np.sqrt(var)
    model = datamodels.CubeModel(data=cube.astype(np.float32))
    model.var_poisson = (var - 25.0).astype(np.float32)
    model.var_rnoise = np.full(cube.shape, 25.0, np.float32)
    model.err = np.sqrt(var).astype(np.float32)
    model.meta.exposure.type = "NRC_TSGRISM"
    return model, shifts


def test_featureless_spectrum_warns_instead_of_shifting(caplog):
    model, shifts = _featureless()
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps.jitter"):
        result = JitterCorrectStep().run(model)
    assert "dispersion shift cannot be measured" in caplog.text
    vectors = get_vectors(result)
    assert np.isnan(vectors["shift_dispersion"]).all()
    measured = np.asarray(vectors["shift_cross_dispersion"])
    error = (measured - measured.mean()) - (shifts - shifts.mean())
    assert np.sqrt(np.mean(error**2)) < 0.01


def _x1dints(shifts, nwave=300, seed=7):
    rng = np.random.default_rng(seed)
    x = np.arange(nwave)
    edges = np.arange(nwave + 1) - 0.5
    specs = []
    for shift in shifts:
        # Pixel integrals of a continuum with absorption lines, moved by `shift`.
        fine = edges - shift
        cumulative = 1e6 * fine - sum(
            3e5 * 1.5 * np.sqrt(2 * np.pi) * ndtr((fine - c) / 1.5) for c in (60, 130, 210, 260)
        )
        flux = np.diff(cumulative)
        flux = flux + rng.normal(size=nwave) * np.sqrt(flux)
        spec = datamodels.SpecModel()
        table = np.zeros(nwave, dtype=spec.get_dtype("spec_table"))
        table["WAVELENGTH"] = 3 + x * 1e-3
        table["FLUX"] = flux
        table["FLUX_ERROR"] = np.sqrt(np.abs(flux))
        table["FLUX_VAR_POISSON"] = np.abs(flux)
        spec.spec_table = table
        specs.append(spec)
    model = datamodels.TSOMultiSpecModel()
    model.spec.append(make_tso_specmodel(specs))
    model.meta.exposure.type = "NRC_TSGRISM"
    return model


def test_x1dints_spectra_are_realigned():
    shifts = np.random.default_rng(1).normal(0, 0.1, 16)
    model = _x1dints(shifts)
    result = JitterCorrectStep().run(model)
    measured = np.asarray(get_vectors(result)["shift_dispersion"])
    error = (measured - measured.mean()) - (shifts - shifts.mean())
    assert np.sqrt(np.mean(error**2)) < 0.01
    flux = result.spec[0].spec_table["FLUX"]
    before = model.spec[0].spec_table["FLUX"]
    np.testing.assert_allclose(flux.sum(axis=1), before.sum(axis=1), rtol=1e-4)
    # After correction the lines sit at the same pixels: the flux on a line's flank, which
    # follows the jitter, stops scattering.
    flank = slice(56, 60)
    assert np.std(flux[:, flank].sum(axis=1)) < 0.3 * np.std(before[:, flank].sum(axis=1))


def test_bad_inputs_raise():
    model, _ = _featureless(nints=2)
    one = datamodels.CubeModel(data=model.data[:1].copy())
    one.meta.exposure.type = "NRC_TSGRISM"
    with pytest.raises(ValueError, match="at least 2"):
        JitterCorrectStep().run(one)
    model.data[:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        JitterCorrectStep().run(model)
    with pytest.raises(TypeError):
        JitterCorrectStep().run(datamodels.ImageModel(data=np.zeros((4, 4), np.float32)))


def test_cross_dispersion_shift_of_an_undersampled_trace_is_unbiased():
    # NIRSpec's 1.1-2.2 px FWHM core: a spline registration underestimates these shifts by
    # ~20 %; the default uses tso_trace's pixel-integrated profile fit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso(
            "NRS_BRIGHTOBJ",
            nints=20,
            ngroups=5,
            crop=(32, 256),
            seed=3,
            jitter=0.1,
            cosmic_rays=False,
            one_over_f=False,
            products=("rateints",),
        )
    slit = datamodels.SlitModel(data=sim.rateints.data.copy())
    for name in ("dq", "err", "var_poisson", "var_rnoise"):
        setattr(slit, name, getattr(sim.rateints, name).copy())
    slit.update(sim.rateints)
    result = JitterCorrectStep().run(slit)
    assert isinstance(result, datamodels.SlitModel)
    measured = np.asarray(get_vectors(result)["shift_cross_dispersion"])
    true = sim.truth.shift_cross_dispersion
    error = (measured - measured.mean()) - (true - true.mean())
    print(f"NRS cross-dispersion rms error {np.sqrt(np.mean(error**2)):.5f} px")
    assert np.sqrt(np.mean(error**2)) <= 0.005
    assert abs(np.polyfit(true, measured, 1)[0] - 1) < 0.05


def test_jitter_before_extraction_keeps_an_undersampled_trace_intact():
    # Resampling across NIRSpec's undersampled core blurs it in proportion to the shift; the
    # extraction then loses flux in the shifted integrations (demo: depth 1.05x, 4.7x the
    # scatter). Across such a trace the shift is recorded, not resampled, and tso_extract
    # follows what is left in the data.
    from tso_steps import OptimalExtractStep, TraceStep
    from tso_steps.extract.scoring import white_light_scatter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso(
            "NRS_BRIGHTOBJ",
            nints=30,
            ngroups=5,
            crop=(32, 256),
            seed=4,
            jitter=0.1,
            brightness=4.0,
            cosmic_rays=False,
            one_over_f=False,
            products=("rateints",),
        )
    traced = TraceStep().run(sim.rateints)
    direct = OptimalExtractStep().run(traced)
    jittered = JitterCorrectStep().run(traced)
    after = OptimalExtractStep().run(jittered)

    def white(x1d):
        return np.asarray(x1d.spec[0].spec_table["FLUX"], dtype=float)

    curve = np.asarray(sim.truth.light_curve, dtype=float)
    ref = white_light_scatter(white(direct), curve)
    got = white_light_scatter(white(after), curve)
    print(f"NRS white-light scatter: trace+extract {ref:.3g}, with tso_jitter {got:.3g}")
    assert got <= 1.05 * ref
    # the undersampled core is not interpolated across: each column's peak fraction is kept
    peak = np.nanmax(jittered.data, axis=1) / np.nansum(jittered.data, axis=1)
    raw = np.nanmax(sim.rateints.data, axis=1) / np.nansum(sim.rateints.data, axis=1)
    change = np.nanmedian(np.abs(np.nanmean(peak, axis=1) / np.nanmean(raw, axis=1) - 1))
    print(f"median change of the peak-pixel fraction {change:.2e}")
    assert change < 2e-3
    assert "trace_shift_after_jitter" in get_vectors(jittered).colnames
