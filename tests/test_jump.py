"""Tests of tso_jump: primitives on plain arrays, the step against simulator truth."""

import numpy as np
import pytest
from astropy.table import Table
from scipy.stats import norm
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.jump.detect import JumpOptions, detect_jumps
from tso_steps.jump.events import disk_offsets, expand_events
from tso_steps.jump.step import TSOJumpStep
from tso_steps.parallel import resolve_workers
from tso_steps.readout import ReadoutMetadataError
from tso_steps.scoring import group_difference_noise, score_jump_flags
from tso_steps.simulate import CosmicRays, Jitter, simulate_tso
from tso_steps.simulate.references import write_noise_references
from tso_steps.stats import clipped_rms_last, strided_rolling_median

JUMP = dqflags.group["JUMP_DET"]
SATURATED = dqflags.group["SATURATED"]
DO_NOT_USE = dqflags.group["DO_NOT_USE"]

GRISM = dict(subarray="SUBGRISM64", crop=(64, 512))
CROPS = {
    "NRC_TSGRISM": GRISM,
    "NRC_TSIMAGE": dict(crop=(64, 64)),
    "NIS_SOSS": dict(crop=(96, 256)),
    "NRS_BRIGHTOBJ": dict(crop=(32, 512)),
    "MIR_LRS-SLITLESS": dict(crop=(256, 72)),
}


def noise_sigma(sim):
    """Group-difference noise of every pixel from the simulator's truth, DN."""
    return group_difference_noise(sim, nsample=8)


def score(sim, groupdq, min_sigma=6.0):
    """Recall of >= min_sigma hits, false-alarm rates (all flags, away from hits)."""
    result = score_jump_flags(groupdq, sim.truth.cosmic_rays, noise_sigma(sim), min_sigma)
    return dict(
        recall=result["recall"],
        n_big=result["n_hits"],
        fp=result["fp_rate"],
        fp_isolated=result["fp_isolated"],
    )


def run(model, **kwargs):
    return TSOJumpStep.call(model, **kwargs)


# --- primitives on plain arrays ---------------------------------------------------------


def test_rolling_median_leaves_each_sample_out_of_its_own_reference():
    rng = np.random.default_rng(0)
    for ntime, window in [(9, 25), (60, 11)]:
        values = rng.normal(size=(40, ntime))
        values[rng.random(values.shape) < 0.1] = np.nan
        result = strided_rolling_median(values, window, min_count=3)
        w = min(window | 1, ntime)
        stride = min(max(1, w // 3), max(1, w // 2))
        for t0 in range(0, ntime, stride):
            t1 = min(t0 + stride, ntime)
            lo = int(np.clip((t0 + t1 - 1) // 2 - w // 2, 0, ntime - w))
            for t in range(t0, t1):
                others = np.delete(values[:, lo : lo + w], t - lo, axis=1)
                expected = np.nanmedian(others, axis=1)
                np.testing.assert_allclose(result[:, t], expected)


def test_clipped_rms_recovers_the_scatter_despite_outliers():
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 3.0, size=(500, 400))
    values[:, :8] = 1e4  # 2 % outliers
    rms, count = clipped_rms_last(values, np.full(500, 4.0))
    rms, count = clipped_rms_last(values, rms)
    assert abs(np.mean(rms) - 3.0) < 0.02
    assert np.all(count <= 392)
    # close to the Gaussian optimum 1/sqrt(2n), far better than a MAD (1.65x worse)
    assert np.std(rms) / 3.0 < 1.15 / np.sqrt(2 * 392)


def test_pure_noise_gives_the_gaussian_false_alarm_rate():
    rng = np.random.default_rng(2)
    ramp = np.cumsum(rng.normal(0.0, 10.0, (60, 5, 32, 256)), axis=1).astype(np.float32)
    gdq = np.zeros(ramp.shape, np.uint8)
    options = JumpOptions(
        rejection_threshold=3.5, negative_threshold=3.5, flag_neighbors=False, n_amps=4
    )
    detect_jumps(ramp, gdq, options=options)
    rate = ((gdq[:, 1:] & JUMP) != 0).mean()
    assert 0.8 < rate / (2 * norm.sf(3.5)) < 1.25


def test_disk_radius_of_neighbour_flags_grows_one_pixel_per_decade():
    gdq = np.zeros((1, 3, 41, 41), np.uint8)
    seeds = np.array([[0, 1, 20, 20, 250.0], [0, 2, 20, 20, 2500.0], [0, 2, 5, 5, 50.0]])
    expand_events(gdq, seeds, np.zeros((0, 4)), neighbor_threshold=200.0, min_event_area=99)
    assert ((gdq[0, 1] & JUMP) != 0).sum() == len(disk_offsets(1)) == 4
    assert ((gdq[0, 2] & JUMP) != 0).sum() == len(disk_offsets(2)) == 12
    assert gdq[0, 2, 5, 5] == 0  # below the neighbour threshold: nothing added


def test_saturated_core_grows_an_event_sized_neighbourhood():
    gdq = np.zeros((1, 4, 60, 60), np.uint8)
    yy, xx = np.mgrid[:60, :60]
    core = np.argwhere((yy - 30) ** 2 + (xx - 30) ** 2 <= 9)  # radius-3 core, 29 px
    cores = np.column_stack([np.zeros(len(core)), np.full(len(core), 2), core])
    n_new, n_events = expand_events(gdq, np.zeros((0, 5)), cores, expand_factor=2.0)
    flagged = (gdq[0, 2] & JUMP) != 0
    assert n_events == 1
    radius = np.sqrt(flagged.sum() / np.pi)
    assert 5.0 < radius < 7.5  # about expand_factor x the core's radius
    assert not (gdq[0, [0, 1, 3]] & JUMP).any()


def test_maximum_cores_values():
    assert resolve_workers("none") == 1
    assert resolve_workers(1) == 1
    assert 1 <= resolve_workers("all")
    with pytest.raises(ValueError, match="maximum_cores"):
        resolve_workers("lots")


# --- against the simulator's truth ------------------------------------------------------


@pytest.fixture(scope="module")
def grism():
    return simulate_tso(
        "NRC_TSGRISM", nints=40, ngroups=5, seed=11, cosmic_rays=1e-3, products=("ramp",),
        **GRISM,
    )  # fmt: skip


def test_finds_injected_hits_with_few_false_alarms(grism):
    result = run(grism.ramp)
    s = score(grism, result.groupdq)
    assert s["n_big"] > 300
    assert s["recall"] >= 0.99
    assert s["fp_isolated"] <= 1e-4
    assert result.meta.cal_step.tso_jump == "COMPLETE"


def test_all_flags_stay_below_1e4_at_the_usual_cosmic_ray_rate():
    """Neighbour flags included, at the simulator's default rate (5e-5 hits/pixel/s)."""
    sim = simulate_tso("NRC_TSGRISM", nints=40, ngroups=5, seed=16, products=("ramp",), **GRISM)
    s = score(sim, run(sim.ramp).groupdq)
    assert s["fp"] <= 1e-4  # (recall is tested with more hits above)


def test_keeps_existing_dq_bits_and_does_not_modify_the_input(grism):
    model = grism.ramp.copy()
    model.groupdq[:, :, 5, 7] |= DO_NOT_USE
    model.groupdq[3, 2, 10, 11] |= 2**6
    before = model.groupdq.copy()
    result = run(model)
    np.testing.assert_array_equal(model.groupdq, before)
    assert np.all(result.groupdq & before == before)
    assert not (result.groupdq[:, :, 5, 7] & JUMP).any()  # DO_NOT_USE: never tested
    table = Table(result.tso_vectors)
    for column in ("n_jumps", "jump_flux_scale", "jump_shift_x", "jump_shift_y"):
        assert len(table[column]) == 40


def test_threads_give_the_same_flags(grism):
    one = run(grism.ramp, maximum_cores="none", memory_budget=5)
    two = run(grism.ramp, maximum_cores="2", memory_budget=5)
    np.testing.assert_array_equal(one.groupdq, two.groupdq)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(CROPS))
def test_defaults_work_on_every_mode(mode):
    sim = simulate_tso(
        mode, nints=30, ngroups=4, seed=5, cosmic_rays=3e-3, products=("ramp",), **CROPS[mode]
    )
    s = score(sim, run(sim.ramp).groupdq)
    assert s["n_big"] > 50
    assert s["recall"] >= 0.99, s
    assert s["fp_isolated"] <= 1e-4, s


def test_two_group_ramps_are_searched():
    sim = simulate_tso(
        "NRC_TSGRISM", nints=60, ngroups=2, seed=12, cosmic_rays=2e-3, products=("ramp",), **GRISM
    )
    s = score(sim, run(sim.ramp).groupdq)
    assert s["n_big"] > 100
    assert s["recall"] >= 0.99
    assert s["fp_isolated"] <= 1e-4


@pytest.fixture(scope="module")
def jittery():
    """Bright grism trace, 1 % transit, 0.1 px jitter; no cosmic rays."""
    return simulate_tso(
        "NRC_TSGRISM", nints=60, ngroups=4, seed=13, cosmic_rays=False, jitter=0.1,
        brightness=10.0, products=("ramp",), **GRISM,
    )  # fmt: skip


def test_transit_and_jitter_cause_no_flags(jittery):
    sim = jittery
    assert sim.truth.light_curve.min() < 0.995  # the transit is in the data
    assert np.std(sim.truth.shifts[:, 1]) > 0.05  # and 0.1 px jitter across the trace
    flags = (run(sim.ramp).groupdq[:, 1:] & JUMP) != 0
    source = sim.truth.source_image(0) * sim.ramp.meta.exposure.group_time  # DN per group
    bright = source > 1000.0
    assert bright.sum() > 1000  # trace pixels, including its steep flanks
    assert flags.mean() <= 1e-4
    assert flags[..., bright].mean() <= 1e-4


def test_hits_on_steep_trace_flanks_are_found(jittery):
    """Where 0.1 px of jitter moves the flux by more than 2 sigma, 7-sigma hits still show."""
    sim = jittery
    source = sim.truth.source_image(0) * sim.ramp.meta.exposure.group_time
    sigma = noise_sigma(sim)
    grad = np.hypot(*np.gradient(source))
    flank = np.argwhere((grad * 0.1 > 2.0 * sigma) & (source > 1000.0))
    assert len(flank) > 200
    rng = np.random.default_rng(0)
    pick = flank[rng.choice(len(flank), 200, replace=False)]
    ints, groups = rng.choice(60, 200), rng.integers(1, 4, 200)
    model = sim.ramp.copy()
    for i, g, (y, x) in zip(ints, groups, pick, strict=True):
        model.data[i, g:, y, x] += 7.0 * sigma[y, x]
    flags = (run(model).groupdq & JUMP) != 0
    assert flags[ints, groups, pick[:, 0], pick[:, 1]].mean() >= 0.95


def test_motion_term_stops_a_tilt_event_from_being_flagged():
    """A sudden 0.15 px pointing step: the running median lags, the motion term does not."""
    sim = simulate_tso(
        "NRC_TSGRISM", nints=60, ngroups=4, seed=13, cosmic_rays=False, brightness=10.0,
        jitter=Jitter(rms=0.02, tilt_integration=30, tilt=(0.0, 0.15)), products=("ramp",),
        **GRISM,
    )  # fmt: skip
    source = sim.truth.source_image(0) * sim.ramp.meta.exposure.group_time
    bright = source > 1000.0
    rates = {}
    for motion in ("measure", "none"):
        flags = (run(sim.ramp, motion=motion).groupdq[:, 1:] & JUMP) != 0
        rates[motion] = flags[..., bright].mean()
    assert rates["measure"] <= 1e-4
    assert rates["none"] > 30 * max(rates["measure"], 1e-5)


def test_saturated_groups_are_not_tested():
    sim = simulate_tso(
        "NRC_TSGRISM", nints=30, ngroups=6, seed=14, cosmic_rays=1e-3, saturation=3000.0,
        products=("ramp",), **GRISM,
    )  # fmt: skip
    saturated = (sim.ramp.groupdq & SATURATED) != 0
    assert saturated.any()
    result = run(sim.ramp, flag_neighbors=False)
    assert not (result.groupdq[saturated] & JUMP).any()
    assert score(sim, result.groupdq)["fp_isolated"] <= 1e-4


def test_large_event_flags_a_neighbourhood_sized_by_the_event():
    yy, xx = np.mgrid[-4:5, -4:5]
    disk = (yy**2 + xx**2) <= 12
    events = [(7, 2, 30 + dy, 200 + dx, 3000.0) for dy, dx in zip(yy[disk], xx[disk], strict=True)]
    sim = simulate_tso(
        "NRC_TSGRISM", nints=30, ngroups=4, seed=15, products=("ramp",), jitter=False,
        cosmic_rays=CosmicRays(rate=0.0, events=events), **GRISM,
    )  # fmt: skip
    result = run(sim.ramp)
    flagged = (result.groupdq[7, 2] & JUMP) != 0
    assert flagged[disk.nonzero()[0] + 26, disk.nonzero()[1] + 196].all()
    area = flagged[10:50, 180:220].sum()
    assert area > 2.5 * disk.sum()  # the halo around the event is flagged too
    assert area < 6 * disk.sum()
    assert not (result.groupdq[6, 2] & JUMP)[20:40, 190:210].any()


def test_noise_references_are_used_when_given(grism, tmp_path):
    result = run(grism.ramp, **write_noise_references(grism.ramp, grism.truth, tmp_path))
    s = score(grism, result.groupdq)
    assert s["recall"] >= 0.99
    assert s["fp_isolated"] <= 1e-4


# --- bad input --------------------------------------------------------------------------


def test_bad_input_raises_clear_errors(grism):
    with pytest.raises(TypeError, match="RampModel"):
        run(datamodels.CubeModel(data=np.zeros((3, 4, 4), np.float32)))
    one = grism.ramp.copy()
    one.data = one.data[:1]
    one.groupdq = one.groupdq[:1]
    with pytest.raises(ValueError, match="at least 2 integrations"):
        run(one)
    other = grism.ramp.copy()
    other.meta.exposure.type = "NRC_IMAGE"
    other.meta.visit.tsovisit = False
    with pytest.raises(ValueError, match="time-series"):
        run(other)
    blind = grism.ramp.copy()
    blind.meta.subarray.fastaxis = None
    with pytest.raises(ReadoutMetadataError, match="line_offsets"):
        run(blind)
    empty = grism.ramp.copy()
    empty.data[:] = np.nan
    with pytest.raises(ValueError, match="no finite"):
        run(empty)


def test_too_few_integrations_skip_the_step(grism):
    few = grism.ramp.copy()
    few.data = few.data[:3]
    few.groupdq = few.groupdq[:3]
    result = run(few)
    assert result.meta.cal_step.tso_jump == "SKIPPED"
