import logging

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps.readout import PIXEL_TIME, LineLayout, ReadoutGeometry, ReadoutMetadataError


def nircam_4out(nrows, ncols):
    return ((ncols / 4 + 12) * (nrows + 1) + 1) * 10e-6


def nircam_1out(nrows, ncols):
    return (ncols + 12) * (nrows + 2) * 10e-6


@pytest.mark.parametrize(
    ("instrument", "shape", "fastaxis", "slowaxis", "noutputs", "published"),
    [
        ("NIRCAM", (2048, 2048), -1, 2, 4, 10.73677),  # FULL
        ("NIRCAM", (256, 2048), -1, 2, 4, nircam_4out(256, 2048)),  # SUBGRISM256
        ("NIRCAM", (64, 2048), -1, 2, 1, nircam_1out(64, 2048)),  # SUBGRISM64, 1 output
        ("NIRCAM", (64, 64), -1, 2, 1, nircam_1out(64, 64)),  # SUB64P
        ("NIRSPEC", (32, 2048), 2, 1, 1, 0.90156),  # SUB2048: fast axis along the 32 pixels
        ("NIRSPEC", (2048, 2048), 2, 1, 4, 10.73677),
        ("NIRISS", (256, 2048), -2, -1, 1, 5.494),  # SUBSTRIP256
        ("NIRISS", (96, 2048), -2, -1, 1, 2.214),  # SUBSTRIP96
        ("MIRI", (1024, 1032), 1, 2, 4, 2.77504),  # FULL
        ("MIRI", (416, 72), 1, 2, 4, 0.15904),  # SLITLESSPRISM
    ],
)
def test_frame_time_matches_published(instrument, shape, fastaxis, slowaxis, noutputs, published):
    geometry = ReadoutGeometry(instrument, shape, fastaxis, slowaxis, noutputs)
    assert geometry.frame_time == pytest.approx(published, abs=5e-7)


def test_nircam_formulas_hold_for_every_grism_subarray():
    for nrows in (64, 128, 256):
        four = ReadoutGeometry("NIRCAM", (nrows, 2048), -1, 2, 4)
        one = ReadoutGeometry("NIRCAM", (nrows, 2048), -1, 2, 1)
        assert four.frame_time == pytest.approx(nircam_4out(nrows, 2048), abs=1e-9)
        assert one.frame_time == pytest.approx(nircam_1out(nrows, 2048), abs=1e-9)


@pytest.mark.parametrize(
    ("instrument", "shape", "fastaxis", "slowaxis", "noutputs"),
    [
        ("NIRCAM", (16, 64), -1, 2, 4),
        ("NIRCAM", (16, 64), 1, -2, 1),
        ("NIRSPEC", (32, 64), 2, 1, 1),
        ("NIRSPEC", (32, 64), -2, -1, 1),
        ("NIRISS", (24, 40), -2, -1, 1),
    ],
)
def test_adjacent_fast_axis_pixels_differ_by_one_pixel_time(
    instrument, shape, fastaxis, slowaxis, noutputs
):
    geometry = ReadoutGeometry(instrument, shape, fastaxis, slowaxis, noutputs)
    offsets = geometry.read_offsets()
    amps = geometry.amplifier_map()
    axis = geometry.fast_array_axis
    step = np.abs(np.diff(offsets, axis=axis))
    same_amp = np.diff(amps, axis=axis) == 0
    np.testing.assert_allclose(step[same_amp], PIXEL_TIME, rtol=1e-9)
    # the fast read runs in the direction of the FASTAXIS sign for the first output
    line = np.take(offsets, 0, axis=1 - axis)
    first_amp = np.take(amps, 0, axis=1 - axis) == 0
    direction = np.sign(np.diff(line[first_amp]))
    assert np.all(direction == np.sign(fastaxis))
    # lines along the slow axis follow each other by one line time
    slow_step = np.diff(offsets, axis=1 - axis)
    np.testing.assert_allclose(np.abs(slow_step), geometry.line_time, rtol=1e-9)
    assert np.all(np.sign(slow_step) == np.sign(slowaxis))


def test_four_outputs_read_in_alternating_directions_and_simultaneously():
    geometry = ReadoutGeometry("NIRCAM", (4, 2048), -1, 2, 4)
    offsets = geometry.read_offsets()
    row = offsets[0]
    bands = [row[s[1]] for s in geometry.amplifier_slices()]
    # every output reads its 512 pixels over the same 512 ticks
    for band in bands:
        assert sorted(np.round(band / PIXEL_TIME).astype(int)) == list(range(512))
    # output 0 is at the high-x end for FASTAXIS=-1 and reads towards decreasing x;
    # output 1 reads the other way
    assert np.all(np.diff(bands[0]) < 0)
    assert np.all(np.diff(bands[1]) > 0)
    assert np.all(np.diff(bands[2]) < 0)
    assert geometry.amplifier_map()[0, -1] == 0


def test_read_offsets_fit_inside_the_frame():
    geometry = ReadoutGeometry("NIRISS", (256, 2048), -2, -1, 1)
    offsets = geometry.read_offsets()
    assert offsets.min() >= 0
    assert offsets.max() < geometry.frame_time
    # red and blue ends of a SOSS spectrum are read seconds apart
    assert offsets[128, 0] - offsets[128, -1] == pytest.approx(2047 * geometry.line_time)
    assert offsets.max() - offsets.min() > 5.4


def make_model(**overrides):
    model = datamodels.CubeModel((2, 32, 64))
    model.meta.instrument.name = "NIRSPEC"
    model.meta.subarray.fastaxis = 2
    model.meta.subarray.slowaxis = 1
    model.meta.exposure.noutputs = 1
    for key, value in overrides.items():
        node, attr = key.split(".")
        setattr(getattr(model.meta, node), attr, value)
    return model


def test_from_model_reads_keywords():
    geometry = ReadoutGeometry.from_model(make_model())
    assert geometry.shape == (32, 64)
    assert geometry.fast_array_axis == 0
    assert geometry.n_fast == 32


@pytest.mark.parametrize(
    ("key", "keyword"),
    [
        ("subarray.fastaxis", "FASTAXIS"),
        ("subarray.slowaxis", "SLOWAXIS"),
        ("exposure.noutputs", "NOUTPUTS"),
        ("instrument.name", "INSTRUME"),
    ],
)
def test_missing_keyword_is_a_clear_error(key, keyword):
    model = make_model()
    node, attr = key.split(".")
    delattr(getattr(model.meta, node), attr)
    with pytest.raises(ReadoutMetadataError, match=keyword):
        ReadoutGeometry.from_model(model)


@pytest.mark.parametrize(
    ("instrument", "shape", "fastaxis", "slowaxis", "noutputs"),
    [
        ("NIRCAM", (16, 256), -1, 2, 4),
        ("NIRSPEC", (32, 256), 2, 1, 1),
        ("MIRI", (416, 72), 1, 2, 4),
    ],
)
def test_line_layout_maps_agree_with_the_geometry(instrument, shape, fastaxis, slowaxis, noutputs):
    extra = {"xstart": 1, "ystart": 529} if instrument == "MIRI" else {}
    geometry = ReadoutGeometry(instrument, shape, fastaxis, slowaxis, noutputs, **extra)
    layout = LineLayout.from_geometry(geometry)
    np.testing.assert_array_equal(layout.amplifier_map(), geometry.amplifier_map())
    np.testing.assert_array_equal(layout.from_lines(layout.ticks), geometry.read_ticks())
    yy, xx = np.indices(shape)
    np.testing.assert_array_equal(layout.line_map(), yy if layout.fast_axis == 1 else xx)
    assert (layout.noutputs, layout.interleaved) == (noutputs, instrument == "MIRI")


def test_line_layout_without_metadata_stops_a_step_that_needs_it():
    model = make_model()
    model.meta.subarray.fastaxis = None
    with pytest.raises(ReadoutMetadataError, match=r"FASTAXIS.*tso_x needs.*or run with z=False"):
        LineLayout.from_model(model, step="tso_x", required=True, fix="or run with z=False")


def test_line_layout_without_metadata_falls_back_to_rows_with_a_warning(caplog):
    model = make_model()
    model.meta.subarray.fastaxis = None
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps.readout"):
        layout = LineLayout.from_model(model, step="tso_x", required=False)
    assert "tso_x: no readout geometry" in caplog.text and "FASTAXIS" in caplog.text
    assert layout.fast_axis == 1 and layout.noutputs == 1 and not layout.interleaved
    np.testing.assert_array_equal(layout.amplifier_map(), np.zeros((32, 64), int))
    np.testing.assert_array_equal(layout.line_map(), np.indices((32, 64))[0])
    assert layout.ticks.shape == (32, 64) and np.unique(layout.ticks).size == 32 * 64


def test_bad_axes_are_rejected():
    with pytest.raises(ReadoutMetadataError, match="FASTAXIS"):
        ReadoutGeometry("NIRCAM", (64, 64), 1, 1, 1)
    with pytest.raises(ReadoutMetadataError, match="NOUTPUTS"):
        ReadoutGeometry("NIRCAM", (64, 64), 1, 2, 2)
    with pytest.raises(ReadoutMetadataError, match="instrument"):
        ReadoutGeometry("FGS", (64, 64), 1, 2, 1)


def test_frame_time_check_catches_cutouts():
    geometry = ReadoutGeometry("NIRISS", (256, 2048), -2, -1, 1)
    geometry.check_frame_time(5.494)
    with pytest.raises(ReadoutMetadataError, match="cut-out"):
        ReadoutGeometry("NIRISS", (200, 2048), -2, -1, 1).check_frame_time(5.494)
    with pytest.raises(ReadoutMetadataError, match="TFRAME"):
        geometry.check_frame_time(None)


def test_miri_slow_mode_and_off_edge_subarrays():
    assert ReadoutGeometry("MIRI", (1024, 1032), 1, 2, 4, slow_mode=True).frame_time == (
        pytest.approx(23.88992, abs=5e-7)
    )
    # SUB256 starts at column 413: the columns to its left are skipped in burst mode
    sub256 = ReadoutGeometry("MIRI", (256, 256), 1, 2, 4, xstart=413, ystart=51)
    assert sub256.frame_time == pytest.approx(0.29952, abs=5e-7)


def test_miri_outputs_are_interleaved_and_sampled_together():
    geometry = ReadoutGeometry("MIRI", (416, 72), 1, 2, 4, xstart=1, ystart=529)
    offsets = geometry.read_offsets()
    amps = geometry.amplifier_map()
    np.testing.assert_array_equal(amps[0, :8], [0, 1, 2, 3, 0, 1, 2, 3])
    # four adjacent columns are read at once; the next group one clock later
    assert np.ptp(offsets[0, 4:8]) == 0
    np.testing.assert_allclose(offsets[0, 8] - offsets[0, 4], PIXEL_TIME)
    np.testing.assert_allclose(np.diff(offsets[:, 10]), geometry.line_time)
    # the 528 rows above the subarray are reset (7 clocks each) before it is read
    assert offsets[0, 0] == pytest.approx((528 * 7 + 10) * PIXEL_TIME)
    assert offsets.max() < geometry.frame_time


def test_miri_needs_its_subarray_position():
    model = datamodels.CubeModel((2, 416, 72))
    model.meta.instrument.name = "MIRI"
    model.meta.subarray.fastaxis = 1
    model.meta.subarray.slowaxis = 2
    model.meta.exposure.readpatt = "FASTR1"
    with pytest.raises(ReadoutMetadataError, match="SUBSTRT1"):
        ReadoutGeometry.from_model(model)
    model.meta.subarray.xstart = 1
    model.meta.subarray.ystart = 529
    geometry = ReadoutGeometry.from_model(model)
    assert geometry.noutputs == 4
    assert geometry.frame_time == pytest.approx(0.15904, abs=5e-7)
