import os
import subprocess
import sys

import numpy as np
import pytest
from jwst.datamodels.utils.tso_multispec import make_tso_specmodel
from stdatamodels.jwst import datamodels

from tso_steps import PixelTimingStep
from tso_steps.readout import PIXEL_TIME, ReadoutGeometry, ReadoutMetadataError
from tso_steps.simulate import simulate_tso
from tso_steps.timing import pixel_read_offsets

MODES = ["NRC_TSGRISM", "NRC_TSIMAGE", "NIS_SOSS", "NRS_BRIGHTOBJ", "MIR_LRS-SLITLESS"]


@pytest.fixture(scope="module")
def simulations():
    return {
        mode: simulate_tso(mode, nints=3, ngroups=2, seed=3, products=("rateints",))
        for mode in MODES
    }


@pytest.mark.parametrize("mode", MODES)
def test_full_subarrays_are_timed_within_their_frame(simulations, mode):
    model = simulations[mode].rateints
    before = model.data.copy()
    result = PixelTimingStep.call(model)
    offsets = result.pixel_read_offsets
    frame_time = model.meta.exposure.frame_time
    assert offsets.shape == model.data.shape[1:]
    assert offsets.min() >= 0
    assert offsets.max() < frame_time
    # the array is read over most of the frame: only overheads are dead time
    assert np.ptp(offsets) > 0.9 * frame_time if mode != "MIR_LRS-SLITLESS" else True
    assert result.meta.cal_step.tso_pixel_timing == "COMPLETE"
    assert not model.hasattr("pixel_read_offsets")
    np.testing.assert_array_equal(model.data, before)


def test_soss_spectrum_ends_are_read_seconds_apart(simulations):
    model = simulations["NIS_SOSS"].rateints
    offsets = pixel_read_offsets(model)
    # SLOWAXIS=-1: columns are read from high x to low x, 268 ticks apart
    assert offsets[100, 0] - offsets[100, -1] == pytest.approx(2047 * 268 * PIXEL_TIME)
    assert offsets[100, 0] - offsets[100, -1] > 5.4


def test_miri_subarray_rows_follow_the_skipped_rows(simulations):
    model = simulations["MIR_LRS-SLITLESS"].rateints
    offsets = pixel_read_offsets(model)
    # 528 rows above SLITLESSPRISM are reset (7 clocks each) before its first row is read
    assert offsets[0, 0] == pytest.approx((528 * 7 + 10) * PIXEL_TIME)
    np.testing.assert_allclose(np.diff(offsets[:, 40]), 28 * PIXEL_TIME)


def test_results_survive_save_and_load(simulations, tmp_path):
    result = PixelTimingStep.call(simulations["NRS_BRIGHTOBJ"].rateints)
    path = tmp_path / "nrs_timing.fits"
    result.save(path)
    with datamodels.open(path) as reloaded:
        np.testing.assert_array_equal(reloaded.pixel_read_offsets, result.pixel_read_offsets)
        assert reloaded.meta.cal_step.tso_pixel_timing == "COMPLETE"


def test_ramp_input_is_timed():
    sim = simulate_tso("NRC_TSGRISM", nints=2, ngroups=2, crop=(16, 64), seed=1, products=("ramp",))
    result = PixelTimingStep.call(sim.ramp)
    geometry = ReadoutGeometry.from_model(sim.ramp)
    np.testing.assert_array_equal(result.pixel_read_offsets, geometry.read_offsets())


def test_missing_noutputs_is_inferred_from_tframe_or_a_clear_error(simulations):
    model = simulations["NIS_SOSS"].rateints.copy()
    expected = PixelTimingStep.call(model).pixel_read_offsets
    del model.meta.exposure.noutputs
    np.testing.assert_array_equal(PixelTimingStep.call(model).pixel_read_offsets, expected)
    del model.meta.exposure.frame_time
    with pytest.raises(ReadoutMetadataError, match="NOUTPUTS"):
        PixelTimingStep.call(model, check_frame_time=False)


def test_wrong_frame_time_is_an_error_not_a_guess(simulations):
    model = simulations["NRC_TSGRISM"].rateints.copy()
    model.meta.exposure.frame_time = 5.3148  # the 1-output value, but NOUTPUTS=4
    with pytest.raises(ReadoutMetadataError, match="TFRAME"):
        PixelTimingStep.call(model)


def test_wrong_model_type_is_rejected():
    with pytest.raises(TypeError, match="x1dints"):
        PixelTimingStep.call(datamodels.ImageModel((4, 4)))


def make_x1dints(rateints, dispersion_direction, limits):
    nints = rateints.data.shape[0]
    nwave = limits[1] - limits[0] + 1 if dispersion_direction == 1 else limits[3] - limits[2] + 1
    specs = []
    for _ in range(nints):
        spec = datamodels.SpecModel()
        spec.spec_table = np.zeros(nwave, dtype=spec.get_dtype("spec_table"))
        spec.spec_table["WAVELENGTH"] = np.linspace(1, 2, nwave)
        specs.append(spec)
    tso = make_tso_specmodel(specs)
    tso.spec_table["INT_NUM"] = np.arange(1, nints + 1)
    xstart, xstop, ystart, ystop = limits
    tso.extraction_xstart, tso.extraction_xstop = xstart, xstop
    tso.extraction_ystart, tso.extraction_ystop = ystart, ystop
    tso.dispersion_direction = dispersion_direction
    x1d = datamodels.TSOMultiSpecModel()
    x1d.update(rateints)
    x1d.int_times = rateints.int_times
    x1d.spec.append(tso)
    return x1d


def test_x1dints_bins_get_mid_times_in_bjd(simulations):
    rateints = simulations["NIS_SOSS"].rateints
    x1d = make_x1dints(rateints, 1, (1, 2048, 40, 60))
    result = PixelTimingStep.call(x1d)
    times = result.spec[0].bin_mid_BJD_TDB
    assert times.shape == (3, 2048)
    offsets = pixel_read_offsets(rateints)
    frame_time = rateints.meta.exposure.frame_time
    expected = (
        rateints.int_times["int_mid_BJD_TDB"][1]
        + (offsets[39:60, 500].mean() - frame_time / 2) / 86400.0
    )
    assert times[1, 500] == pytest.approx(expected, abs=1e-10)
    # red and blue ends differ by seconds, and every integration has the same pattern
    assert (times[0, 0] - times[0, -1]) * 86400 > 5.4
    cadence = np.diff(rateints.int_times["int_mid_BJD_TDB"])[:, None]
    np.testing.assert_allclose(np.diff(times, axis=0) - cadence, 0.0, atol=1e-9)


def test_x1dints_without_extraction_region_is_an_error(simulations):
    x1d = make_x1dints(simulations["NIS_SOSS"].rateints, 1, (1, 2048, 40, 60))
    x1d.spec[0].extraction_ystart = None
    with pytest.raises(ReadoutMetadataError, match="extraction region"):
        PixelTimingStep.call(x1d)


def test_strun_runs_offline(simulations, tmp_path):
    path = tmp_path / "sim_rateints.fits"
    simulations["NRS_BRIGHTOBJ"].rateints.save(path)
    env = dict(os.environ, STPIPE_DISABLE_CRDS_STEPPARS="true")
    strun = os.path.join(os.path.dirname(sys.executable), "strun")
    done = subprocess.run(
        [strun, "tso_pixel_timing", str(path), f"--output_dir={tmp_path}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with datamodels.open(tmp_path / "sim_timing.fits") as out:
        assert out.pixel_read_offsets.shape == (32, 2048)


def test_asdf_parameter_file_runs(simulations, tmp_path):
    config = os.path.join(os.path.dirname(__file__), "..", "config", "tso_pixel_timing.asdf")
    result = PixelTimingStep.call(simulations["NRC_TSIMAGE"].rateints, config_file=config)
    assert result.meta.cal_step.tso_pixel_timing == "COMPLETE"
