"""tso_centroid: per-integration centroids of imaging TSOs against the simulator's truth."""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.centroid import (
    FWHM_PER_SIGMA,
    CentroidStep,
    find_window,
    measure_centroids,
)
from tso_steps.scoring import pointing_cramer_rao
from tso_steps.simulate import simulate_tso
from tso_steps.vectors import get_vectors

DO_NOT_USE = dqflags.pixel["DO_NOT_USE"]
NINTS = 40
# a random walk plus a tilt event half-way: the median frame is a blend of two positions
JITTER = {"rms": 0.02, "tilt_integration": NINTS // 2, "tilt": (0.4, -0.3)}


def _simulate(element, **kwargs):
    options = dict(
        nints=NINTS,
        ngroups=5,
        element=element,
        seed=11,
        products=("rateints",),
        jitter=JITTER,
        cosmic_rays=False,
        one_over_f=False,
    )
    options.update(kwargs)
    return simulate_tso("NRC_TSIMAGE", **options)


@pytest.fixture(scope="module")
def defocused():
    return _simulate("WLP8")


@pytest.fixture(scope="module")
def in_focus():
    return _simulate("CLEAR")


def centroid_errors(vectors, truth):
    """Measured minus true position per integration, x and y, px."""
    y0, x0 = truth.psf_center
    ex = np.asarray(vectors["centroid_x"]) - (x0 + truth.shift_x)
    ey = np.asarray(vectors["centroid_y"]) - (y0 + truth.shift_y)
    return ex, ey


@pytest.mark.parametrize("sim_name", ["defocused", "in_focus"])
def test_template_centroid_reaches_cramer_rao_bound(sim_name, request):
    sim = request.getfixturevalue(sim_name)
    result = CentroidStep().run(sim.rateints)
    vectors = get_vectors(result)
    ex, ey = centroid_errors(vectors, sim.truth)
    crb_x, crb_y = pointing_cramer_rao(sim)
    rms_x, rms_y = np.std(ex), np.std(ey)  # mean offset removed
    print(f"{sim_name}: rms ({rms_x:.5f}, {rms_y:.5f}) px, CRB ({crb_x:.5f}, {crb_y:.5f}) px")
    assert rms_x <= 1.3 * crb_x
    assert rms_y <= 1.3 * crb_y
    # the absolute position (median-frame centre of mass + shift) is right too
    assert abs(np.mean(ex)) < 0.02
    assert abs(np.mean(ey)) < 0.02
    # formal errors describe the scatter
    assert np.median(vectors["centroid_x_err"]) == pytest.approx(rms_x, rel=0.3)


def test_template_beats_centre_of_mass_on_defocused_psf(defocused):
    template = measure_centroids(defocused.rateints.data, method="template")
    com = measure_centroids(defocused.rateints.data, method="com")
    rms_template = np.std(centroid_errors(template, defocused.truth)[0])
    rms_com = np.std(centroid_errors(com, defocused.truth)[0])
    assert rms_template < rms_com / 2


def test_gaussian_method_on_in_focus_psf(in_focus):
    result = CentroidStep(method="gaussian").run(in_focus.rateints)
    ex, ey = centroid_errors(get_vectors(result), in_focus.truth)
    crb_x, crb_y = pointing_cramer_rao(in_focus)
    assert np.std(ex) <= 1.5 * crb_x
    assert np.std(ey) <= 1.5 * crb_y
    assert abs(np.mean(ex)) < 0.05 and abs(np.mean(ey)) < 0.05


def test_psf_width_matches_injected_size(defocused):
    vectors = get_vectors(CentroidStep().run(defocused.rateints))
    # second-moment FWHM-equivalent back to an RMS radius, compared with the truth
    sigma_x = np.asarray(vectors["psf_width_x"]) / FWHM_PER_SIGMA
    sigma_y = np.asarray(vectors["psf_width_y"]) / FWHM_PER_SIGMA
    rms_radius = np.hypot(sigma_x, sigma_y)
    assert np.median(rms_radius) == pytest.approx(defocused.truth.psf_width, rel=0.05)
    assert np.std(rms_radius) < 0.01 * defocused.truth.psf_width


def test_in_focus_width_is_core_fwhm(in_focus):
    vectors = get_vectors(CentroidStep().run(in_focus.rateints))
    width = np.median(np.hypot(vectors["psf_width_x"], vectors["psf_width_y"]) / np.sqrt(2))
    # the core is a sigma = 1 px Gaussian (FWHM 2.35 px) with wider, fainter wings
    assert 2.3 < width < 4.0


def test_dq_and_nan_pixels_are_not_used(defocused):
    cube = defocused.rateints.copy()
    window = find_window(np.median(cube.data, axis=0))
    ring_y, ring_x = int(round(window.y)), int(round(window.x + 13))
    rng = np.random.default_rng(3)
    for i in range(NINTS):
        ys, xs = rng.integers(0, 64, 30), rng.integers(0, 64, 30)
        cube.data[i, ys, xs] = 1e6  # garbage flagged DO_NOT_USE
        cube.dq[i, ys, xs] |= DO_NOT_USE
        cube.data[i, ys[:5], (xs[:5] + 1) % 64] = np.nan
    cube.data[:, ring_y - 3 : ring_y + 3, ring_x] = 0.0  # dead bright-ring pixels, flagged
    cube.dq[:, ring_y - 3 : ring_y + 3, ring_x] |= DO_NOT_USE
    result = CentroidStep().run(cube)
    ex, ey = centroid_errors(get_vectors(result), defocused.truth)
    crb_x, crb_y = pointing_cramer_rao(defocused)
    print(
        f"bad pixels: rms/CRB ({np.std(ex) / crb_x:.2f}, {np.std(ey) / crb_y:.2f}), "
        f"mean offset ({np.mean(ex):+.4f}, {np.mean(ey):+.4f}) px"
    )
    assert np.all(np.isfinite(ex)) and np.all(np.isfinite(ey))
    assert np.std(ex) <= 1.3 * crb_x and np.std(ey) <= 1.3 * crb_y
    assert abs(np.mean(ex)) < 0.02 and abs(np.mean(ey)) < 0.02


def test_unflagged_cosmic_rays_are_clipped():
    sim = _simulate("CLEAR", cosmic_rays=5e-3, seed=12)
    assert len(sim.truth.cosmic_rays) > NINTS  # several hits per integration
    result = CentroidStep().run(sim.rateints)
    ex, ey = centroid_errors(get_vectors(result), sim.truth)
    crb_x, crb_y = pointing_cramer_rao(sim)
    assert np.std(ex) <= 1.3 * crb_x and np.std(ey) <= 1.3 * crb_y


def test_input_is_not_modified_and_step_is_recorded(in_focus):
    cube = in_focus.rateints
    data, dq = cube.data.copy(), cube.dq.copy()
    result = CentroidStep().run(cube)
    assert result is not cube
    np.testing.assert_array_equal(cube.data, data)
    np.testing.assert_array_equal(cube.dq, dq)
    assert not cube.hasattr("tso_vectors")
    assert result.meta.cal_step.tso_centroid == "COMPLETE"
    names = get_vectors(result).colnames
    for name in ("centroid_x", "centroid_y", "psf_width_x", "psf_width_y"):
        assert name in names


def test_spectral_exposure_is_refused(in_focus):
    cube = in_focus.rateints.copy()
    cube.meta.exposure.type = "NRC_TSGRISM"
    with pytest.raises(ValueError, match="exposure type 'NRC_TSGRISM'"):
        CentroidStep().run(cube)


def test_single_integration_is_refused(in_focus):
    cube = datamodels.CubeModel(data=in_focus.rateints.data[:1].copy())
    cube.update(in_focus.rateints)
    with pytest.raises(ValueError, match="at least 2 integrations"):
        CentroidStep().run(cube)


def test_all_nan_and_wrong_model_are_refused(in_focus):
    cube = in_focus.rateints.copy()
    cube.data[:] = np.nan
    with pytest.raises(ValueError, match="entirely NaN"):
        CentroidStep().run(cube)
    image = datamodels.ImageModel(data=np.ones((10, 10), dtype=np.float32))
    with pytest.raises(TypeError, match="CubeModel"):
        CentroidStep().run(image)


def test_measure_centroids_on_plain_arrays():
    """Pure-function check on a synthetic Gaussian, no simulator or datamodels."""
    rng = np.random.default_rng(0)
    yy, xx = np.indices((41, 41))
    shifts = rng.normal(0, 0.1, (20, 2))
    amp, sigma, noise = 5000.0, 1.5, 5.0
    data = np.array(
        [
            amp * np.exp(-((xx - 20.3 - sx) ** 2 + (yy - 19.6 - sy) ** 2) / (2 * sigma**2))
            for sx, sy in shifts
        ]
    )
    data += rng.normal(0, noise, data.shape)
    table = measure_centroids(data, variance=np.full((41, 41), noise**2))
    ex = table["centroid_x"] - 20.3 - shifts[:, 0]
    ey = table["centroid_y"] - 19.6 - shifts[:, 1]
    # CRB of a sampled Gaussian in white noise: sigma_x^2 = 8 pi sigma^4 noise^2 / (amp^2 *
    # 2 pi sigma^2) ... evaluated numerically here
    deriv = amp * np.exp(-((xx - 20.3) ** 2 + (yy - 19.6) ** 2) / (2 * sigma**2)) * (xx - 20.3)
    crb = np.sqrt(noise**2 / np.sum((deriv / sigma**2) ** 2))
    assert np.std(ex) <= 1.3 * crb and np.std(ey) <= 1.3 * crb
    assert abs(np.mean(ex)) < 0.01 and abs(np.mean(ey)) < 0.01
    assert np.median(table["psf_width_x"]) == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.05)
    with pytest.raises(ValueError, match="at least 2"):
        measure_centroids(data[:1])
    with pytest.raises(ValueError, match="method"):
        measure_centroids(data, method="psf")


def test_explicit_window_and_center(in_focus):
    y0, x0 = in_focus.truth.psf_center
    step = CentroidStep(window_radius=10.0, center=[x0 + 1.0, y0 - 1.0])
    vectors = get_vectors(step.run(in_focus.rateints))
    ex, ey = centroid_errors(vectors, in_focus.truth)
    crb_x, crb_y = pointing_cramer_rao(in_focus)
    assert np.std(ex) <= 1.3 * crb_x and np.std(ey) <= 1.3 * crb_y
    assert abs(np.mean(ex)) < 0.02 and abs(np.mean(ey)) < 0.02
