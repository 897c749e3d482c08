"""Tests of the TSO simulator's products, detector and API against the returned truth."""

import warnings

import numpy as np
import pytest
from jwst.lib.pipe_utils import is_tso
from stdatamodels.exceptions import ValidationWarning
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from sim_settings import QUIET
from tso_steps.readout import ReadoutGeometry
from tso_steps.simulate import (
    BARYCENTRIC_CORRECTION,
    MODES,
    TT_MINUS_UTC,
    CosmicRays,
    DetectorNoise,
    Jitter,
    SimulationTruth,
    get_mode,
    simulate_tso,
)
from tso_steps.simulate.references import write_noise_references

ONLY_OFFSETS = DetectorNoise(common=0.0, per_output=0.0, preamp=30.0, odd_even=5.0)
ONLY_ONE_OVER_F = DetectorNoise(common=4.0, per_output=2.0, preamp=0.0, odd_even=0.0)


# ----------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("mode", list(MODES))
def test_metadata_validates_and_is_tso(mode, tmp_path):
    spec = get_mode(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        sim = simulate_tso(mode, nints=3, ngroups=3, crop=(16, 32), seed=1)
        for model, suffix in ((sim.ramp, "uncal"), (sim.rateints, "rateints")):
            model.validate()
            assert is_tso(model)
            meta = model.meta
            assert meta.exposure.type == spec.exp_type
            assert meta.instrument.name == spec.instrument
            assert meta.instrument.detector == spec.detector
            assert meta.instrument.filter == spec.element().filter
            assert meta.subarray.name == spec.default_subarray
            assert (meta.subarray.fastaxis, meta.subarray.slowaxis) == (
                spec.fastaxis,
                spec.slowaxis,
            )
            assert meta.exposure.noutputs == spec.noutputs[0]
            assert meta.visit.tsovisit is True
            assert meta.exposure.readpatt == spec.readpatt[0]
            assert (meta.exposure.nints, meta.exposure.ngroups) == (3, 3)
            assert (meta.subarray.ysize, meta.subarray.xsize) == model.data.shape[-2:]
            geometry = ReadoutGeometry.from_model(model)
            assert meta.exposure.frame_time == pytest.approx(geometry.frame_time, rel=1e-12)
            geometry.check_frame_time(meta.exposure.frame_time)
            assert meta.exposure.group_time == pytest.approx(
                (meta.exposure.nframes + meta.exposure.groupgap) * meta.exposure.frame_time
            )
            assert meta.target.catalog_name and meta.observation.date and meta.date
            assert len(model.int_times) == 3
            path = tmp_path / f"sim_{suffix}.fits"
            model.save(path)
            with datamodels.open(path) as reread:
                assert reread.meta.exposure.type == spec.exp_type
                assert reread.meta.exposure.noutputs == spec.noutputs[0]
                assert is_tso(reread)
                np.testing.assert_array_equal(reread.data, model.data)
                np.testing.assert_allclose(
                    reread.int_times["int_mid_BJD_TDB"], model.int_times["int_mid_BJD_TDB"]
                )
    assert sim.ramp.data.dtype == np.float32 and sim.ramp.data.ndim == 4
    assert sim.ramp.groupdq.dtype == np.uint8 and sim.ramp.pixeldq.dtype == np.uint32
    assert sim.rateints.meta.bunit_data == "DN/s" and sim.ramp.meta.bunit_data == "DN"


@pytest.mark.parametrize(
    "mode, subarray, noutputs, shape, frame_time",
    [
        ("NRC_TSGRISM", "SUBGRISM256", 4, (256, 2048), 1.34669),
        ("NRC_TSGRISM", "SUBGRISM64", 4, (64, 2048), 0.34061),
        ("NRC_TSIMAGE", "SUB64P", 1, (64, 64), 0.05016),
        ("NIS_SOSS", "SUBSTRIP256", 1, (256, 2048), 5.494),
        ("NIS_SOSS", "SUBSTRIP96", 1, (96, 2048), 2.214),
        ("NRS_BRIGHTOBJ", "SUB2048", 1, (32, 2048), 0.90156),
        ("NRS_BRIGHTOBJ", "SUB512", 1, (32, 512), 0.22572),
        ("MIR_LRS-SLITLESS", "SLITLESSPRISM", 4, (416, 72), 0.15904),
    ],
)
def test_full_subarrays_have_real_sizes_and_frame_times(
    mode, subarray, noutputs, shape, frame_time
):
    sim = simulate_tso(
        mode,
        nints=2,
        ngroups=2,
        subarray=subarray,
        noutputs=noutputs,
        products=("rateints",),
        seed=2,
        **QUIET,
    )
    assert sim.ramp is None
    assert sim.rateints.data.shape == (2, *shape)
    assert sim.rateints.meta.exposure.frame_time == pytest.approx(frame_time, abs=1e-6)


def test_crop_keeps_readout_metadata_self_consistent():
    sim = simulate_tso(
        "NRC_TSGRISM", nints=2, ngroups=2, crop=(32, 128), crop_origin=(10, 500), seed=3, **QUIET
    )
    sub = sim.rateints.meta.subarray
    assert sub.name == "SUBGRISM256"
    assert (sub.xstart, sub.ystart, sub.xsize, sub.ysize) == (501, 11, 128, 32)
    expected = ReadoutGeometry("NIRCAM", (32, 128), -1, 2, 4).frame_time
    assert sim.ramp.meta.exposure.frame_time == pytest.approx(expected)
    assert expected < 1.34669 / 10
    assert sim.truth.window == (10, 500, 32, 128)
    # the cut-out shows the same scene as the full subarray at the same pixels
    full = simulate_tso("NRC_TSGRISM", nints=2, ngroups=2, seed=3, products=("rateints",), **QUIET)
    np.testing.assert_allclose(
        sim.truth.source_image(0), full.truth.source_image(0)[10:42, 500:628], rtol=1e-10
    )
    np.testing.assert_allclose(
        sim.truth.trace_center, full.truth.trace_center[:, 500:628] - 10, rtol=1e-12
    )
    with pytest.raises(ValueError, match="outputs"):
        simulate_tso("NRC_TSGRISM", nints=2, ngroups=2, crop=(32, 30), **QUIET)


def test_int_times_and_exposure_times_are_consistent():
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=5,
        ngroups=4,
        readpatt="SHALLOW2",
        crop=(16, 32),
        seed=4,
        start_time=60123.5,
        **QUIET,
    )
    meta, times = sim.ramp.meta.exposure, sim.ramp.int_times
    nframes, groupgap, tframe = meta.nframes, meta.groupgap, meta.frame_time
    assert (nframes, groupgap) == (2, 3)
    duration = (4 * (nframes + groupgap) - groupgap + 1) * tframe / 86400
    np.testing.assert_array_equal(times["integration_number"], np.arange(1, 6))
    np.testing.assert_allclose(
        times["int_end_MJD_UTC"] - times["int_start_MJD_UTC"], duration, rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(times["int_start_MJD_UTC"][1:], times["int_end_MJD_UTC"][:-1])
    offset = (TT_MINUS_UTC + BARYCENTRIC_CORRECTION) / 86400
    for name in ("start", "mid", "end"):
        np.testing.assert_allclose(
            times[f"int_{name}_BJD_TDB"] - times[f"int_{name}_MJD_UTC"], offset, rtol=0, atol=1e-10
        )
    assert meta.start_time == times["int_start_MJD_UTC"][0] == 60123.5
    assert meta.end_time == pytest.approx(times["int_end_MJD_UTC"][-1], abs=1e-9)
    assert meta.group_time == pytest.approx(5 * tframe)
    assert meta.integration_time == pytest.approx(3 * meta.group_time + 2 * tframe)
    assert meta.duration == pytest.approx(5 * duration * 86400)
    np.testing.assert_array_equal(sim.truth.times, times["int_mid_BJD_TDB"])
    np.testing.assert_array_equal(sim.rateints.int_times, times)


# ----------------------------------------------------------------------------- detector noise
@pytest.mark.parametrize(
    "mode, crop",
    [("NRC_TSGRISM", (64, 256)), ("NIS_SOSS", (64, 256)), ("NRS_BRIGHTOBJ", (32, 256))],
)
def test_one_over_f_is_correlated_along_the_fast_axis(mode, crop):
    sim = simulate_tso(
        mode,
        nints=3,
        ngroups=3,
        crop=crop,
        seed=12,
        source=False,
        keep_group_noise=True,
        **{**QUIET, "one_over_f": ONLY_ONE_OVER_F},
    )
    fast = ReadoutGeometry.from_model(sim.ramp).fast_array_axis
    frames = sim.ramp.data.astype(float).reshape(-1, *crop)
    # neighbours along a fast line were read one tick apart, neighbours across lines one
    # line time apart: 1/f makes the second difference much larger
    along = np.diff(frames, axis=1 + fast).var()
    across = np.diff(frames, axis=2 - fast).var()
    assert across > 3 * along
    # stripes: the mean of each fast line varies far more than the mean across lines
    line_means = frames.mean(axis=1 + fast).var(axis=1).mean()
    cross_means = frames.mean(axis=2 - fast).var(axis=1).mean()
    assert line_means > 10 * cross_means
    # the truth holds exactly this noise, per group and at rate level
    np.testing.assert_allclose(sim.ramp.data, sim.truth.group_noise, atol=1e-3)
    np.testing.assert_allclose(sim.rateints.data, sim.truth.one_over_f, atol=1e-2)


def test_miri_outputs_are_interleaved_along_rows():
    common = DetectorNoise(common=5.0, per_output=0.0, preamp=0.0, odd_even=0.0)
    sim = simulate_tso(
        "MIR_LRS-SLITLESS",
        nints=2,
        ngroups=2,
        crop=(64, 72),
        seed=13,
        source=False,
        **{**QUIET, "one_over_f": common},
    )
    frame = sim.ramp.data[0, 0].reshape(64, 18, 4)
    # the 4 outputs sample columns 4k..4k+3 at the same tick: common noise is identical
    np.testing.assert_allclose(frame, frame[..., :1].repeat(4, axis=2), atol=1e-4)
    per_output = DetectorNoise(common=0.0, per_output=5.0, preamp=0.0, odd_even=0.0)
    sim = simulate_tso(
        "MIR_LRS-SLITLESS",
        nints=2,
        ngroups=2,
        crop=(64, 72),
        seed=13,
        source=False,
        **{**QUIET, "one_over_f": per_output},
    )
    frame = sim.ramp.data[:, 0].astype(float)
    same_output = np.diff(frame[..., ::4], axis=-1).var()
    next_output = (frame[..., 1::4] - frame[..., ::4]).var()
    assert next_output > 3 * same_output


def test_preamp_and_odd_even_offsets_follow_outputs():
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=3,
        ngroups=3,
        crop=(32, 64),
        noutputs=4,
        seed=14,
        source=False,
        **{**QUIET, "one_over_f": ONLY_OFFSETS},
    )
    geometry = ReadoutGeometry.from_model(sim.ramp)
    amp = geometry.amplifier_map()
    parity = geometry.line_position() % 2
    truth = sim.truth
    assert truth.preamp_offsets.shape == (3, 4)
    assert truth.odd_even_offsets.shape == (3, 3, 4, 2)
    for i in range(3):
        for g in range(3):
            expected = truth.preamp_offsets[i][amp] + truth.odd_even_offsets[i, g][amp, parity]
            np.testing.assert_allclose(sim.ramp.data[i, g], expected, atol=1e-3)
        bands = [np.median(sim.ramp.data[i, 0][amp == a]) for a in range(4)]
        assert np.ptp(bands) > 1.0
    # per-integration pre-amp offsets cancel in the slope; the odd/even ones do not
    np.testing.assert_allclose(sim.rateints.data, truth.one_over_f, atol=1e-2)
    even_odd = sim.rateints.data[:, :, 0::2].mean() - sim.rateints.data[:, :, 1::2].mean()
    assert abs(even_odd) > 0


# ----------------------------------------------------------------------------- rateints
def test_noiseless_rateints_equal_truth_rate():
    sim = simulate_tso(
        "NIS_SOSS",
        nints=3,
        ngroups=3,
        crop=(64, 128),
        seed=19,
        **{**QUIET, "background": True, "transit": True, "jitter": True},
    )
    for i in range(3):
        np.testing.assert_allclose(sim.rateints.data[i], sim.truth.rate_image(i), rtol=1e-5)
    assert not sim.rateints.var_poisson.any()


@pytest.mark.parametrize(
    "mode, readpatt", [("NRC_TSGRISM", "RAPID"), ("NRC_TSGRISM", "SHALLOW4"), ("NIS_SOSS", "NIS")]
)
def test_rateints_variances_match_scatter_of_simulated_slopes(mode, readpatt):
    # bright enough that photon noise dominates on the trace even with a cut-out's short frames
    sim = simulate_tso(
        mode,
        nints=300,
        ngroups=4,
        readpatt=readpatt,
        crop=(32, 64),
        seed=20,
        brightness=300.0,
        transit=False,
        jitter=False,
        cosmic_rays=False,
        products=("rateints",),
    )
    cube = sim.rateints
    predicted = (cube.var_poisson + cube.var_rnoise).mean(axis=0)
    np.testing.assert_allclose(cube.err**2, cube.var_poisson + cube.var_rnoise, rtol=1e-5)
    ratio = cube.data.astype(float).var(axis=0, ddof=1) / predicted
    rate = sim.truth.rate_image(0)
    bright, faint = rate > np.percentile(rate, 90), rate < np.percentile(rate, 50)
    assert cube.var_poisson[0][bright].mean() > cube.var_rnoise[0][bright].mean()
    for pixels in (bright, faint):
        assert np.mean(ratio[pixels]) == pytest.approx(1.0, abs=0.1)


def test_saturation_clips_flags_and_fits_unsaturated_groups():
    sim = simulate_tso(
        "NRC_TSIMAGE",
        element="CLEAR",
        nints=2,
        ngroups=8,
        seed=21,
        brightness=20.0,
        saturation=True,
        **QUIET,
    )
    full_well, sat = sim.truth.full_well, dqflags.group["SATURATED"]
    assert full_well == get_mode("NRC_TSIMAGE").full_well
    flagged = (sim.ramp.groupdq & sat) > 0
    assert flagged.any() and not flagged.all()
    np.testing.assert_array_equal(flagged, sim.ramp.data >= full_well)
    nvalid = np.where(flagged.any(axis=1), flagged.argmax(axis=1), 8)
    usable = (nvalid >= 2) & (nvalid < 8)
    assert usable.any()
    expected = np.stack([sim.truth.rate_image(i) for i in range(2)])
    np.testing.assert_allclose(sim.rateints.data[usable], expected[usable], rtol=1e-4)
    assert np.all(sim.rateints.dq[nvalid < 8] & dqflags.pixel["SATURATED"])
    assert np.all(sim.rateints.dq[nvalid < 2] & dqflags.pixel["DO_NOT_USE"])
    assert not sim.rateints.dq[nvalid == 8].any()


# ----------------------------------------------------------------------------- API
def test_seeded_runs_repeat_and_effects_use_independent_streams():
    kwargs = dict(nints=3, ngroups=3, crop=(32, 64), seed=22)
    a = simulate_tso("NRC_TSGRISM", **kwargs)
    b = simulate_tso("NRC_TSGRISM", **{**kwargs, "seed": a.truth.seed})
    np.testing.assert_array_equal(a.ramp.data, b.ramp.data)
    only_cube = simulate_tso("NRC_TSGRISM", products=("rateints",), **kwargs)
    assert only_cube.ramp is None
    np.testing.assert_array_equal(only_cube.rateints.data, a.rateints.data)
    no_crs = simulate_tso("NRC_TSGRISM", cosmic_rays=False, **kwargs)
    hit = np.zeros(a.ramp.data.shape[-2:], bool)
    hit[a.truth.cosmic_rays["y"], a.truth.cosmic_rays["x"]] = True
    assert len(a.truth.cosmic_rays) == 0 or hit.any()
    np.testing.assert_array_equal(a.ramp.data[..., ~hit], no_crs.ramp.data[..., ~hit])
    np.testing.assert_array_equal(a.truth.shifts, no_crs.truth.shifts)


def test_effect_arguments_and_truth_record():
    sim = simulate_tso(
        "NRC_TSIMAGE",
        nints=4,
        ngroups=2,
        seed=23,
        jitter=0.05,
        cosmic_rays={"rate": 0.0},
        one_over_f=False,
        read_noise=7.0,
        products=("rateints",),
    )
    truth = sim.truth
    assert isinstance(truth, SimulationTruth)
    assert truth.effects["jitter"] == Jitter(rms=0.05)
    assert truth.effects["cosmic_rays"].rate == 0.0
    assert truth.effects["one_over_f"] is None and truth.one_over_f is None
    assert truth.read_noise == 7.0 and truth.frame_variance == 49.0
    assert truth.transit.period > 0 and truth.transit.t0 == pytest.approx(truth.times.mean())
    table = truth.table()
    assert len(table) == 4 and table["integration_number"][0] == 1
    np.testing.assert_allclose(table["shift_x"], truth.shift_x)
    with pytest.raises(TypeError):
        simulate_tso("NRC_TSIMAGE", nints=2, ngroups=2, jitter="large")
    with pytest.raises(ValueError, match="Unknown TSO mode"):
        simulate_tso("NRC_IMAGE")
    with pytest.raises(ValueError, match="subarray"):
        simulate_tso("NIS_SOSS", subarray="SUBGRISM64")
    with pytest.raises(ValueError, match="noutputs"):
        simulate_tso("NIS_SOSS", noutputs=4)


# ----------------------------------------------------------------------------- jwst
def test_jwst_jump_and_ramp_fit_run_on_simulated_ramp(tmp_path):
    # the offline CRDS cache comes from conftest's session fixture
    from jwst.jump import JumpStep
    from jwst.ramp_fitting import RampFitStep

    hit = (2, 3, 20, 30, 3000.0)
    sim = simulate_tso(
        "NRC_TSGRISM",
        nints=4,
        ngroups=6,
        crop=(32, 64),
        seed=24,
        cosmic_rays=CosmicRays(rate=0.0, events=[hit]),
    )
    ramp, truth = sim.ramp, sim.truth
    overrides = write_noise_references(ramp, truth, tmp_path)

    jumped = JumpStep.call(ramp, **overrides)
    jump = dqflags.group["JUMP_DET"]
    assert jumped.groupdq[2, 3, 20, 30] & jump
    # the hit (and its 4 neighbours, flagged by default); noise gives only rare false jumps
    assert ((jumped.groupdq & jump) > 0).mean() < 1e-3

    _, rateints = RampFitStep.call(ramp, **overrides)
    assert rateints.data.shape == sim.rateints.data.shape
    clean = np.ones(rateints.data.shape, bool)
    clean[2, 20, 30] = False
    # read-noise-limited pixels: jwst's weighting reduces to the simulator's least squares
    difference = np.abs(rateints.data - sim.rateints.data)[clean] / sim.rateints.err[clean]
    assert np.median(difference) < 0.05
    np.testing.assert_allclose(rateints.var_rnoise, sim.rateints.var_rnoise, rtol=1e-3)


@pytest.mark.slow
def test_full_size_default_grism_simulation():
    sim = simulate_tso("NRC_TSGRISM", nints=6, ngroups=5, seed=25)
    assert sim.ramp.data.shape == (6, 5, 256, 2048)
    assert sim.rateints.data.shape == (6, 256, 2048)
    truth = sim.truth
    assert np.nanmean(truth.trace_center) == pytest.approx(34.3, abs=0.5)
    assert np.all(truth.trace_width[np.isfinite(truth.trace_width)] > 1.4)
    assert np.all(truth.trace_width[np.isfinite(truth.trace_width)] < 2.2)
    assert truth.one_over_f.shape == (6, 256, 2048)
    assert sim.ramp.meta.exposure.frame_time == pytest.approx(1.34669)
