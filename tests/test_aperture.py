"""tso_aperture: moving-aperture photometry of imaging TSOs against the simulator's truth."""

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.aperture import (
    FLAG_BITS,
    JWST_COLUMNS,
    MovingApertureStep,
    aperture_series,
    clipped_median,
    scaled_radii,
)
from tso_steps.centroid import CentroidStep
from tso_steps.scoring import fit_transit_scale
from tso_steps.simulate import simulate_tso
from tso_steps.vectors import add_vectors, get_vectors

DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]


def _simulate(element="CLEAR", subarray="SUB64P", nints=60, **kwargs):
    options = dict(
        nints=nints,
        ngroups=3,
        subarray=subarray,
        element=element,
        seed=3,
        products=("rateints",),
        cosmic_rays=False,
        one_over_f=False,
    )
    options.update(kwargs)
    return simulate_tso("NRC_TSIMAGE", **options)


def _net(table):
    return np.asarray(table["net_aperture_sum"].value)


@pytest.fixture(scope="module")
def jittered():
    """Bright in-focus star, 1.5 px RMS pointing random walk, transit."""
    return _simulate("CLEAR", nints=80, ngroups=5, brightness=100.0, jitter={"rms": 1.5})


@pytest.fixture(scope="module")
def jittered_tables(jittered):
    moving = MovingApertureStep().run(jittered.rateints)
    fixed = MovingApertureStep(centering="fixed").run(jittered.rateints)
    return moving, fixed


def test_moving_aperture_has_lower_scatter_than_fixed_under_jitter(jittered, jittered_tables):
    moving, fixed = jittered_tables
    fit_moving = fit_transit_scale(_net(moving), jittered.truth.light_curve)
    fit_fixed = fit_transit_scale(_net(fixed), jittered.truth.light_curve)
    # measured: 1.5 px RMS jitter, r = 10 px: moving 325 ppm, fixed 629 ppm
    assert fit_moving.scatter_ppm < 0.65 * fit_fixed.scatter_ppm
    # and the moving aperture reaches the noise the errors predict
    predicted = 1e6 * np.median(moving["net_aperture_sum_err"].value) / fit_moving.baseline
    assert fit_moving.scatter_ppm < 1.15 * predicted


def test_moving_aperture_follows_the_true_pointing(jittered, jittered_tables):
    moving, _ = jittered_tables
    dx = moving["aperture_x"].value - jittered.truth.shifts[:, 0]
    dy = moving["aperture_y"].value - jittered.truth.shifts[:, 1]
    # measured: 0.003 px RMS in x and y
    assert np.std(dx) < 0.01
    assert np.std(dy) < 0.01


def test_transit_depth_is_unbiased_under_jitter(jittered, jittered_tables):
    moving, fixed = jittered_tables
    fit = fit_transit_scale(_net(moving), jittered.truth.light_curve)
    # measured: depth ratio 0.996 +- 0.007 (fixed aperture: 0.968 +- 0.014)
    assert abs(fit.scale - 1.0) < fit.scale_error
    assert fit.scale_error < 0.01


def test_transit_depth_is_unbiased_with_a_weak_lens():
    sim = _simulate("WLP8", subarray="SUB160P", nints=80, jitter={"rms": 0.5}, seed=5)
    table = MovingApertureStep().run(sim.rateints)
    fit = fit_transit_scale(_net(table), sim.truth.light_curve)
    # measured: 1.0005 +- 0.011
    assert abs(fit.scale - 1.0) < fit.scale_error
    assert fit.scale_error < 0.02


def _quiet(element, subarray="SUB64P", crop=None):
    """Noise only (photon, read, background): 300 integrations, no transit, no jitter."""
    brightness = 20.0 if element == "CLEAR" else 1.0
    return _simulate(
        element, subarray=subarray, crop=crop, nints=300, seed=4, jitter=False,
        transit=False, brightness=brightness,
    )  # fmt: skip


@pytest.fixture(scope="module")
def quiet_wlp8():
    return _quiet("WLP8")


@pytest.mark.parametrize(
    ("element", "subarray", "crop"),
    [("CLEAR", "SUB64P", None), ("WLP8", "SUB64P", None), ("WLP8", "SUB400P", (128, 128))],
)
def test_reported_error_matches_the_light_curve_scatter(element, subarray, crop, quiet_wlp8):
    sim = (
        quiet_wlp8 if (element, subarray) == ("WLP8", "SUB64P") else _quiet(element, subarray, crop)
    )
    table = MovingApertureStep().run(sim.rateints)
    scatter = np.std(_net(table), ddof=1)
    predicted = np.median(table["net_aperture_sum_err"].value)
    # 300 integrations: the sample scatter itself is known to ~4 %; measured 0.95, 1.00, 1.06
    assert scatter / predicted == pytest.approx(1.0, abs=0.1)


def test_clipped_mean_background_is_less_noisy_and_its_error_stays_honest(quiet_wlp8):
    median = MovingApertureStep().run(quiet_wlp8.rateints)
    mean = MovingApertureStep(annulus_statistic="mean").run(quiet_wlp8.rateints)
    # measured: 1822 vs 1973 ppm (the SUB64P annulus is small, so its noise matters)
    assert np.std(_net(mean)) < 0.95 * np.std(_net(median))
    predicted = np.median(mean["net_aperture_sum_err"].value)
    assert np.std(_net(mean), ddof=1) / predicted == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    ("element", "subarray", "crop", "min_radius", "max_radius"),
    [
        ("CLEAR", "SUB64P", None, 4.0, 12.0),
        ("CLEAR", "SUB400P", (96, 96), 4.0, 12.0),
        ("WLP8", "SUB64P", None, 17.0, 27.0),
        ("WLP8", "SUB160P", None, 17.0, 27.0),
    ],
)
def test_default_radii_fit_every_supported_setup(element, subarray, crop, min_radius, max_radius):
    sim = _simulate(element, subarray=subarray, crop=crop, nints=10, transit=False)
    table = MovingApertureStep().run(sim.rateints)
    radius = table.meta["radius"]
    assert min_radius < radius < max_radius
    assert table.meta["radius_inner"] > radius
    assert np.all(table["flags"] == 0)
    assert np.all(table["annulus_area"].value >= 100)
    # measured: 0.957 in focus (the annulus removes part of the 8 px halo), 0.999 weak lens
    source = np.sum(sim.truth.source_image(0))
    assert np.median(_net(table)) / source == pytest.approx(1.0, abs=0.06)


def test_output_has_jwst_columns_units_and_saves_as_ecsv(tmp_path):
    sim = _simulate("WLP8", nints=8, transit=False)
    step = MovingApertureStep(output_dir=str(tmp_path), save_results=True)
    table = step.run(sim.rateints)
    for name in JWST_COLUMNS:
        assert name in table.colnames
    for name in ("aperture_radius", "n_masked", "flags", "integration_number"):
        assert name in table.colnames
    assert str(table["net_aperture_sum"].unit) == "DN / s"
    assert table.meta["centroid_source"].startswith("measured")
    np.testing.assert_allclose(table["BJD_TDB"], sim.rateints.int_times["int_mid_BJD_TDB"])
    written = list(tmp_path.glob("*_phot.ecsv"))
    assert len(written) == 1
    back = Table.read(written[0])
    np.testing.assert_allclose(back["net_aperture_sum"], _net(table))


def test_centroids_are_taken_from_tso_vectors():
    sim = _simulate("WLP8", nints=12, jitter={"rms": 0.5}, transit=False)
    centroided = CentroidStep().run(sim.rateints)
    vectors = get_vectors(centroided)
    table = MovingApertureStep().run(centroided)
    assert table.meta["centroid_source"] == "tso_vectors"
    np.testing.assert_allclose(table["aperture_x"].value, vectors["centroid_x"])
    np.testing.assert_allclose(table["aperture_y"].value, vectors["centroid_y"])
    with pytest.raises(ValueError, match="tso_centroid"):
        MovingApertureStep(centroid_source="tso_vectors").run(sim.rateints)


def test_missing_centroids_fall_back_to_a_local_centre_of_mass():
    sim = _simulate("CLEAR", nints=12, brightness=20.0, jitter={"rms": 2.0}, transit=False)
    model = sim.rateints.copy()
    y0, x0 = sim.truth.psf_center
    cx, cy = x0 + sim.truth.shifts[:, 0], y0 + sim.truth.shifts[:, 1]
    cx[[2, 7]] = np.nan
    add_vectors(model, {"centroid_x": cx, "centroid_y": cy})
    table = MovingApertureStep().run(model)
    fallback = (table["flags"] & FLAG_BITS["CENTROID_FALLBACK"]) != 0
    assert list(np.nonzero(fallback)[0]) == [2, 7]
    true_x = x0 + sim.truth.shifts[[2, 7], 0]
    np.testing.assert_allclose(table["aperture_x"].value[[2, 7]], true_x, atol=0.1)


def test_do_not_use_pixels_are_counted_and_do_not_bias_the_flux():
    sim = _simulate("CLEAR", nints=12, brightness=20.0, jitter=False, transit=False)
    clean = MovingApertureStep().run(sim.rateints)
    model = sim.rateints.copy()
    yc, xc = (int(round(v)) for v in sim.truth.psf_center)
    model.dq[3:6, yc, xc + 2] |= DO_NOT_USE
    model.data[4, yc + 1, xc] = np.nan
    before = model.data.copy(), model.dq.copy()
    table = MovingApertureStep().run(model)
    np.testing.assert_array_equal(model.data, before[0])  # input untouched
    np.testing.assert_array_equal(model.dq, before[1])
    assert list(table["n_masked"][2:7]) == [0, 1, 2, 1, 0]
    assert np.all(table["flags"][3:6] & FLAG_BITS["MASKED_PIXELS"])
    ratio = _net(table)[3:6] / _net(clean)[3:6]
    # the filled pixels hold ~5 % of the flux; the scaled median frame restores it to 0.3 %
    np.testing.assert_allclose(ratio, 1.0, atol=3e-3)
    dropped = MovingApertureStep(fill_masked=False).run(model)
    assert np.all(_net(dropped)[3:6] < 0.99 * _net(clean)[3:6])


def test_radius_follows_the_psf_width_vectors():
    sim = _simulate("WLP8", nints=10, jitter=False, transit=False)
    model = sim.rateints.copy()
    widths = np.linspace(9.0, 11.0, 10)
    add_vectors(
        model,
        {
            "centroid_x": np.full(10, sim.truth.psf_center[1]),
            "centroid_y": np.full(10, sim.truth.psf_center[0]),
            "psf_width_x": widths,
            "psf_width_y": widths,
        },
    )
    table = MovingApertureStep(radius=10.0, radius_scale_with_width=True).run(model)
    np.testing.assert_allclose(table["aperture_radius"].value, widths)
    np.testing.assert_allclose(scaled_radii(10.0, widths, widths), widths)


def test_spectroscopic_exposure_is_rejected():
    sim = simulate_tso(
        "NRC_TSGRISM", nints=3, ngroups=2, crop=(32, 64), seed=1, products=("rateints",)
    )
    with pytest.raises(ValueError, match="spectroscopic"):
        MovingApertureStep().run(sim.rateints)


def test_single_integration_and_all_nan_data_are_rejected():
    sim = _simulate("CLEAR", nints=2, transit=False)
    model = sim.rateints.copy()
    model.data = model.data[:1]
    with pytest.raises(ValueError, match="at least 2"):
        MovingApertureStep().run(model)
    model = sim.rateints.copy()
    model.data[:] = np.nan
    with pytest.raises(ValueError, match="entirely NaN"):
        MovingApertureStep().run(model)


def test_clipped_median_ignores_outliers():
    rng = np.random.default_rng(1)
    values = rng.normal(5.0, 1.0, 2000)
    values[:100] += 50.0  # a star in the annulus
    median, keep = clipped_median(values, clip_sigma=3.0)
    assert median == pytest.approx(5.0, abs=0.05)
    assert not keep[:100].any()


def test_exact_overlap_makes_the_sum_smooth_in_position():
    yy, xx = np.indices((41, 41))
    flat = np.ones((21, 41, 41))
    x = 20.0 + np.linspace(0.0, 1.0, 21)
    out = aperture_series(flat, x, np.full(21, 20.0), 5.0, 8.0, 12.0)
    np.testing.assert_allclose(out["aperture_area"], np.pi * 25.0, rtol=1e-6)
    np.testing.assert_allclose(out["net_aperture_sum"], 0.0, atol=1e-9)


def test_calints_in_mjy_per_sr_are_reported_in_jy():
    sim = _simulate("WLP8", nints=4, transit=False, jitter=False)
    dn = MovingApertureStep().run(sim.rateints)
    model = sim.rateints.copy()
    model.meta.bunit_data = "MJy/sr"
    model.meta.bunit_err = "MJy/sr"
    model.meta.photometry.pixelarea_steradians = 2.0e-14
    jy = MovingApertureStep().run(model)
    assert str(jy["net_aperture_sum"].unit) == "Jy"
    np.testing.assert_allclose(_net(jy), _net(dn) * 2.0e-8, rtol=1e-10)
