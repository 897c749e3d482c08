"""Tests of the TSO simulator's scene: transit, cosmic rays, jitter, traces vs the truth."""

import numpy as np
import pytest
from astropy.table import Table
from scipy.integrate import quad
from stdatamodels.jwst.datamodels import dqflags

from sim_settings import QUIET
from tso_steps.simulate import (
    Background,
    CosmicRays,
    Jitter,
    TransitParameters,
    occulted_fraction,
    simulate_tso,
    transit_light_curve,
    transmission_spectrum,
)
from tso_steps.simulate.noise import jitter_offsets


def centroid(image, axis):
    """First moment of an image (or a stack of images) along an array axis (0 = y, 1 = x)."""
    coords = np.indices(image.shape[-2:])[axis]
    return (image * coords).sum(axis=(-2, -1)) / image.sum(axis=(-2, -1))


# ----------------------------------------------------------------------------- transit
def test_uniform_disk_depth_is_radius_ratio_squared():
    k = 0.1
    np.testing.assert_allclose(occulted_fraction([0.0, 0.3, 0.5, 0.85], k), k**2, rtol=1e-10)
    params = TransitParameters(rp_rs=k, a_rs=8.0, impact=0.3, u1=0.0, u2=0.0, t0=0.0, period=2.0)
    times = np.linspace(-0.1, 0.1, 201)
    flux = transit_light_curve(times, params)
    assert flux.min() == pytest.approx(1 - k**2, abs=1e-12)
    assert flux[100] == pytest.approx(1 - k**2, abs=1e-12)  # mid-transit, t = t0
    assert flux[0] == 1.0 and flux[-1] == 1.0
    assert np.all(occulted_fraction([1.1, 1.5, np.inf], k) == 0)


def test_limb_darkened_occultation_matches_analytic_centre_and_pixel_grid():
    k, u1, u2 = 0.1, 0.4, 0.25

    # planet at the disk centre: integral of I(r) 2r dr over r < k, over the whole disk
    def integrand(r):
        mu = np.sqrt(1 - r**2)
        return (1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2) * 2 * r

    inside = quad(integrand, 0, k, epsabs=1e-14)[0]
    assert occulted_fraction(0.0, k, u1, u2) == pytest.approx(
        inside / (1 - u1 / 3 - u2 / 6), rel=1e-10
    )
    # brute force on a fine grid, including partial overlap with the limb
    x = np.linspace(-1, 1, 3001)
    xx, yy = np.meshgrid(x, x)
    r2 = xx**2 + yy**2
    mu = np.sqrt(np.clip(1 - r2, 0, None))
    intensity = (1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2) * (r2 < 1)
    for z in (0.5, 0.95, 1.05):
        covered = (xx - z) ** 2 + yy**2 < k**2
        brute = (intensity * covered).sum() / intensity.sum()
        assert occulted_fraction(z, k, u1, u2) == pytest.approx(brute, rel=3e-3)


def test_transit_depth_recovered_from_noiseless_white_light():
    sim = simulate_tso(
        "NRC_TSIMAGE",
        nints=40,
        ngroups=2,
        seed=5,
        products=("rateints",),
        **{**QUIET, "transit": True},
    )
    white = sim.rateints.data.astype(float).sum(axis=(1, 2))
    truth = sim.truth
    relative = white / white[0]
    assert truth.light_curve[0] == 1.0
    np.testing.assert_allclose(relative, truth.light_curve, atol=2e-6)
    depth = 1 - relative.min()
    assert depth == pytest.approx(1 - truth.light_curve.min(), abs=2e-6)
    # limb darkening deepens the centre of the transit beyond (Rp/Rs)^2
    assert truth.depth == pytest.approx(0.01)
    assert 0.01 < depth < 0.013
    assert 10 < np.argmin(relative) < 30  # the transit is centred in the exposure


def test_wavelength_dependent_depth_recovered_per_dispersion_pixel():
    params = TransitParameters(spectrum_amplitude=0.3)
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=30,
        ngroups=2,
        crop=(64, 512),
        seed=6,
        products=("rateints",),
        **{**QUIET, "transit": params},
    )
    truth = sim.truth
    columns = sim.rateints.data.astype(float).sum(axis=1)
    measured = columns / columns[0]
    expected = truth.spectral_light_curves()[:, 0, :]
    np.testing.assert_allclose(measured, expected, atol=2e-5)
    lit = np.isfinite(truth.wavelength[0])
    np.testing.assert_allclose(
        truth.rp_rs[0, lit], transmission_spectrum(truth.wavelength[0, lit], 0.1, 0.3)
    )
    np.testing.assert_allclose(truth.depth, truth.rp_rs**2)
    # a real spectrum: the deepest and shallowest pixels differ, and so do their light curves
    deep, shallow = np.nanargmax(truth.depth[0]), np.nanargmin(truth.depth[0])
    assert truth.depth[0, deep] - truth.depth[0, shallow] > 1e-3
    assert measured[:, deep].min() < measured[:, shallow].min() - 5e-4


# ----------------------------------------------------------------------------- cosmic rays
def test_cosmic_rays_appear_at_truth_group_pixel_and_amplitude():
    events = [(1, 3, 5, 7, 1234.5), (2, 1, 20, 40, 250.0)]
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=4,
        ngroups=6,
        crop=(32, 64),
        seed=7,
        **{**QUIET, "cosmic_rays": CosmicRays(rate=0.05, events=events)},
    )
    crs, truth = sim.truth.cosmic_rays, sim.truth
    assert len(crs) > len(events)
    assert set(crs.colnames) >= {"integration", "group", "y", "x", "amplitude", "rate_effect"}
    assert crs["amplitude"].unit == "DN"
    explicit = crs[(crs["integration"] == 1) & (crs["y"] == 5) & (crs["x"] == 7)]
    assert 1234.5 in explicit["amplitude"] and 3 in explicit["group"]
    group_times = truth.read_plan.group_times
    expected_rate = np.zeros(sim.rateints.data.shape)
    for i in range(4):
        rate = truth.rate_image(i)
        clean = rate[None] * group_times[:, None, None]
        excess = sim.ramp.data[i].astype(float) - clean
        expected = np.zeros_like(excess)
        for hit in crs[crs["integration"] == i]:
            expected[hit["group"] :, hit["y"], hit["x"]] += hit["amplitude"]
            expected_rate[i, hit["y"], hit["x"]] += hit["rate_effect"]
        np.testing.assert_allclose(excess, expected, atol=0.05)
    # on the rateints the hits are what the least-squares fit makes of them
    rate_truth = np.stack([truth.rate_image(i) for i in range(4)])
    np.testing.assert_allclose(sim.rateints.data - rate_truth, expected_rate, atol=1.0, rtol=1e-5)
    assert not sim.rateints.dq.any() and not sim.ramp.groupdq.any()


def test_flag_jumps_marks_hits_and_removes_them_from_slopes():
    events = Table(rows=[(0, 2, 10, 11, 800.0)], names=("integration", "group", "y", "x", "amp"))
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=2,
        ngroups=5,
        crop=(16, 32),
        seed=8,
        flag_jumps=True,
        **{**QUIET, "cosmic_rays": CosmicRays(rate=0.0, events=events)},
    )
    jump = dqflags.group["JUMP_DET"]
    assert sim.ramp.groupdq[0, 2, 10, 11] & jump
    assert (sim.ramp.groupdq & jump).sum() == jump
    assert sim.rateints.dq[0, 10, 11] & dqflags.pixel["JUMP_DET"]
    np.testing.assert_allclose(sim.rateints.data[0], sim.truth.rate_image(0), rtol=1e-5)
    assert sim.ramp.data[0, 4, 10, 11] - sim.ramp.data[0, 1, 10, 11] > 800


# ----------------------------------------------------------------------------- jitter
def test_jitter_walk_has_requested_rms_and_tilt_step():
    walk = jitter_offsets(Jitter(rms=0.02), 200, np.random.default_rng(1))
    np.testing.assert_allclose(walk.std(axis=0), 0.02)
    np.testing.assert_allclose(walk.mean(axis=0), 0.0, atol=1e-12)
    tilted = jitter_offsets(
        Jitter(rms=0.02, tilt_integration=50, tilt=(0.3, -0.1)), 200, np.random.default_rng(1)
    )
    np.testing.assert_allclose(tilted[:50], walk[:50])
    np.testing.assert_allclose(tilted[50:] - walk[50:], np.broadcast_to([0.3, -0.1], (150, 2)))


def test_jitter_moves_psf_centroid_by_truth_shift():
    jitter = Jitter(rms=0.3, tilt_integration=5, tilt=(0.5, -0.4))
    sim = simulate_tso(
        "NRC_TSIMAGE",
        nints=8,
        ngroups=2,
        seed=9,
        products=("rateints",),
        **{**QUIET, "jitter": jitter},
    )
    truth, data = sim.truth, sim.rateints.data.astype(float)
    np.testing.assert_allclose(centroid(data, 1) - truth.psf_center[1], truth.shift_x, atol=1e-3)
    np.testing.assert_allclose(centroid(data, 0) - truth.psf_center[0], truth.shift_y, atol=1e-3)
    assert np.ptp(truth.shift_x) > 0.5


def test_jitter_moves_trace_across_and_along_dispersion():
    jitter = Jitter(rms=0.3)
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=6,
        ngroups=2,
        crop=(64, 256),
        seed=10,
        products=("rateints",),
        **{**QUIET, "jitter": jitter},
    )
    data, truth = sim.rateints.data.astype(float), sim.truth
    per_column = (data * np.arange(64)[:, None]).sum(axis=1) / data.sum(axis=1)
    moved = (per_column - per_column[0]).mean(axis=1)
    np.testing.assert_allclose(
        moved, truth.shift_cross_dispersion - truth.shift_cross_dispersion[0], atol=0.01
    )
    # NIRSpec PRISM in SUB512: the whole spectrum is on the array, its centroid follows the shift
    sim = simulate_tso(
        "NRS_BRIGHTOBJ",
        subarray="SUB512",
        nints=6,
        ngroups=2,
        seed=11,
        products=("rateints",),
        **{**QUIET, "jitter": jitter},
    )
    data, truth = sim.rateints.data.astype(float), sim.truth
    along = centroid(data, 1)
    np.testing.assert_allclose(
        along - along[0], truth.shift_dispersion - truth.shift_dispersion[0], atol=0.01
    )


# ----------------------------------------------------------------------------- scenes
def test_soss_background_has_step_near_column_700():
    sim = simulate_tso(
        "NIS_SOSS",
        nints=2,
        ngroups=2,
        crop=(16, 2048),
        seed=15,
        source=False,
        products=("rateints",),
        **{**QUIET, "background": True},
    )
    profile = np.median(sim.rateints.data[0], axis=0)
    np.testing.assert_allclose(sim.rateints.data[0], sim.truth.background, rtol=1e-5)
    ratio = profile[1:] / profile[:-1]
    step = np.argmax(ratio) + 1
    assert step == 700 and ratio[step - 1] == pytest.approx(1.7, rel=1e-3)
    assert np.all(np.abs(np.delete(ratio, step - 1) - 1) < 0.01)
    flat = simulate_tso(
        "NIS_SOSS",
        nints=2,
        ngroups=2,
        crop=(16, 2048),
        seed=15,
        source=False,
        products=("rateints",),
        **{**QUIET, "background": Background(step=False)},
    )
    assert np.all(np.abs(np.diff(flat.truth.background[0]) / flat.truth.background[0, 1:]) < 0.01)


def test_soss_orders_curved_wide_and_order_two_partial():
    sim = simulate_tso("NIS_SOSS", nints=2, ngroups=2, seed=16, products=("rateints",), **QUIET)
    truth = sim.truth
    assert list(truth.orders) == [1, 2]
    first, second = truth.trace_center
    assert np.all(np.isfinite(first))
    assert np.ptp(first) > 30  # a curved trace spanning tens of pixels
    assert 0.5 < np.mean(np.isfinite(second)) < 0.9  # order 2 leaves the array
    assert np.all((truth.trace_width[0] > 18) & (truth.trace_width[0] < 26))
    assert np.nanmax(truth.spectrum[1]) < np.nanmax(truth.spectrum[0])
    strip96 = simulate_tso(
        "NIS_SOSS",
        subarray="SUBSTRIP96",
        nints=2,
        ngroups=2,
        seed=16,
        products=("rateints",),
        **QUIET,
    )
    assert list(strip96.truth.orders) == [1]
    np.testing.assert_allclose(strip96.truth.trace_center[0], first - 10)


def test_miri_lrs_disperses_along_y_near_column_36():
    sim = simulate_tso(
        "MIR_LRS-SLITLESS", nints=2, ngroups=2, seed=17, products=("rateints",), **QUIET
    )
    truth, image = sim.truth, sim.rateints.data[0].astype(float)
    assert truth.dispersion_axis == 0 and truth.trace_center.shape == (1, 416)
    lit = np.isfinite(truth.wavelength[0])
    assert np.all(np.abs(truth.trace_center[0, lit] - 36) < 1)
    assert np.all(np.diff(truth.wavelength[0, lit]) < 0)  # blue at the bottom... red at low y
    rows = np.flatnonzero(lit & (truth.spectrum[0] > 0.05 * np.nanmax(truth.spectrum[0])))
    x_centroid = (image[rows] * np.arange(72)).sum(axis=1) / image[rows].sum(axis=1)
    np.testing.assert_allclose(x_centroid, truth.trace_center[0, rows], atol=0.05)
    row_flux = image.sum(axis=1)
    assert row_flux[rows].max() > 3 * row_flux[rows].min()  # the spectrum runs along y


def test_nirspec_prism_covers_part_of_x_and_g395h_all_of_it():
    prism = simulate_tso(
        "NRS_BRIGHTOBJ", nints=2, ngroups=2, seed=18, products=("rateints",), **QUIET
    )
    lit = np.isfinite(prism.truth.wavelength[0])
    assert 300 < lit.sum() < 600
    spectrum = prism.truth.spectrum[0, lit]
    assert spectrum.max() > 20 * spectrum.min()
    assert prism.rateints.meta.instrument.grating == "PRISM"
    g395h = simulate_tso(
        "NRS_BRIGHTOBJ",
        element="G395H",
        nints=2,
        ngroups=2,
        seed=18,
        products=("rateints",),
        **QUIET,
    )
    assert np.all(np.isfinite(g395h.truth.wavelength[0]))
    assert g395h.rateints.meta.instrument.filter == "F290LP"
    assert g395h.rateints.meta.instrument.fixed_slit == "S1600A1"
    assert np.nanmean(prism.truth.trace_center) == pytest.approx(16, abs=1)
