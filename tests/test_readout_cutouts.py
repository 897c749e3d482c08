"""Real product shapes: extract_2d cut-outs and missing NOUTPUTS (issue 11, item 4)."""

import logging

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps import PixelTimingStep
from tso_steps.readout import ReadoutGeometry, ReadoutMetadataError
from tso_steps.readout.header import infer_noutputs

# Published NIRCam frame-time formulae (docs/timing.rst, tso-field-notes.md), 10 us per pixel.


def _nircam_frame_time(ny, nx, noutputs):
    if noutputs == 4:
        return ((nx / 4 + 12) * (ny + 1) + 1) * 10e-6
    return (nx + 12) * (ny + 2) * 10e-6


def _full_subgrism(ny=64, noutputs=4, nints=3):
    """A NIRCam SUBGRISM full-subarray rateints with its readout keywords."""
    model = datamodels.CubeModel((nints, ny, 2048))
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCALONG"
    model.meta.exposure.type = "NRC_TSGRISM"
    model.meta.subarray.name = f"SUBGRISM{ny}"
    model.meta.subarray.xsize, model.meta.subarray.ysize = 2048, ny
    model.meta.subarray.xstart, model.meta.subarray.ystart = 1, 2048 - ny + 1
    model.meta.subarray.fastaxis, model.meta.subarray.slowaxis = -1, 2
    model.meta.exposure.noutputs = noutputs
    model.meta.exposure.frame_time = _nircam_frame_time(ny, 2048, noutputs)
    return model


def _cutout(full, row0, col0, ny, nx):
    """The SlitModel calwebb_spec2's extract_2d writes: subarray keywords kept, slit placed."""
    slit = datamodels.SlitModel(
        np.ascontiguousarray(full.data[:, row0 : row0 + ny, col0 : col0 + nx])
    )
    slit.update(full)
    slit.meta.exposure.type = "NRC_TSGRISM"
    slit.xstart, slit.ystart = col0 + 1, row0 + 1
    slit.xsize, slit.ysize = nx, ny
    return slit


@pytest.mark.parametrize("noutputs", [1, 4])
def test_cutout_pixels_keep_the_full_frame_read_times(noutputs):
    full = _full_subgrism(64, noutputs)
    slit = _cutout(full, row0=4, col0=300, ny=56, nx=1600)
    assert slit.meta.exposure.frame_time != pytest.approx(
        _nircam_frame_time(56, 1600, noutputs), rel=1e-3
    )  # the cut-out's own shape would give the wrong frame time
    full_times = PixelTimingStep.call(full).pixel_read_offsets
    cut_times = PixelTimingStep.call(slit).pixel_read_offsets
    assert cut_times.shape == (56, 1600)
    np.testing.assert_array_equal(cut_times, full_times[4:60, 300:1900])
    geometry = ReadoutGeometry.from_model(slit)
    full_geometry = ReadoutGeometry.from_model(full)
    np.testing.assert_array_equal(
        geometry.amplifier_map(), full_geometry.amplifier_map()[4:60, 300:1900]
    )
    np.testing.assert_array_equal(
        geometry.line_position(), full_geometry.line_position()[4:60, 300:1900]
    )
    assert geometry.frame_time == pytest.approx(_nircam_frame_time(64, 2048, noutputs), rel=1e-12)


def test_cutout_read_times_follow_the_formula_at_detector_pixels():
    # Independently of readout.py: with 4 outputs of 512 columns read in alternating
    # directions (FASTAXIS=-1: output 0 starts at the highest column), a pixel's tick is
    # line * (512 + 12) + its position along its output.
    full = _full_subgrism(64, 4)
    slit = _cutout(full, row0=8, col0=100, ny=40, nx=1700)
    times = PixelTimingStep.call(slit).pixel_read_offsets
    rows, cols = np.indices(times.shape)
    col = cols + 100
    row = rows + 8
    fast = 2047 - col  # read order along the fast axis
    amp, pos = np.divmod(fast, 512)
    pos = np.where(amp % 2 == 1, 511 - pos, pos)
    expected = (row * (512 + 12) + pos) * 10e-6
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-12)


def test_cutout_without_placement_is_a_clear_error():
    full = _full_subgrism(64, 4)
    cube = datamodels.CubeModel(np.ascontiguousarray(full.data[:, 4:60, 300:1900]))
    cube.update(full)
    with pytest.raises(ReadoutMetadataError, match="cut-out"):
        ReadoutGeometry.from_model(cube)


@pytest.mark.parametrize("ny", [64, 128, 256])
@pytest.mark.parametrize("noutputs", [1, 4])
def test_noutputs_inferred_from_subarray_and_tframe(ny, noutputs, caplog):
    model = _full_subgrism(ny, noutputs)
    tframe = _nircam_frame_time(ny, 2048, noutputs)
    model.meta.exposure.frame_time = tframe
    del model.meta.exposure.noutputs
    with caplog.at_level(logging.WARNING, logger="stpipe.tso_steps.readout"):
        geometry = ReadoutGeometry.from_model(model)
    assert geometry.noutputs == noutputs
    assert geometry.frame_time == pytest.approx(tframe, rel=1e-12)
    assert any("NOUTPUTS missing" in record.message for record in caplog.records)
    # the inferred geometry also works for the cut-out of the same subarray
    slit = _cutout(model, 2, 10, ny - 4, 1500)
    assert ReadoutGeometry.from_model(slit).noutputs == noutputs


def test_noutputs_undetermined_is_a_clear_error():
    with pytest.raises(ReadoutMetadataError, match="set NOUTPUTS"):
        infer_noutputs("NIRCAM", (64, 2048), -1, 2, 0.5, "SUBGRISM64")
    with pytest.raises(ReadoutMetadataError, match="TFRAME"):
        infer_noutputs("NIRCAM", (64, 2048), -1, 2, None, "SUBGRISM64")
