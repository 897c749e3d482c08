"""Property-based tests (hypothesis) of the array algorithms.

Small arrays and few examples: each property holds for every input, so a modest number of
random cases finds a break quickly.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tso_steps.centroid import measure_centroids
from tso_steps.jitter.align import realign
from tso_steps.jitter.resample import shift_array
from tso_steps.one_over_f.correct import OneOverFOptions, clean_cube
from tso_steps.readout import LineLayout, ReadoutGeometry
from tso_steps.trace.positions import integration_positions

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None)
SLOW = settings(max_examples=8, deadline=None, derandomize=True, database=None)

shifts = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


# --- jitter resampling ------------------------------------------------------------------------
@FAST
@given(seed=seeds, n=st.integers(min_value=8, max_value=40), shift=shifts)
def test_resampling_conserves_flux_and_adds_no_nan(seed, n, shift):
    rng = np.random.default_rng(seed)
    values = np.zeros(n + 12)
    values[6:-6] = rng.uniform(0.0, 100.0, n)  # zero margins: no flux leaves the array
    moved = shift_array(values, shift, 0)
    assert np.isfinite(moved).all()
    assert moved.sum() == pytest.approx(values.sum(), rel=1e-12, abs=1e-9)


@FAST
@given(seed=seeds, dy=shifts, dx=shifts)
def test_realigning_a_frame_conserves_flux_and_undoes_itself(seed, dy, dx):
    rng = np.random.default_rng(seed)
    frame = np.zeros((40, 40))
    y, x = np.mgrid[:40, :40]  # the source is far from the edges: no flux leaves the array
    frame += 1e3 * np.exp(-((y - 19.5 - rng.uniform(-1, 1)) ** 2 + (x - 20.2) ** 2) / 8.0)
    moved = realign(frame, (dy, dx))
    assert np.isfinite(moved).all()
    assert moved.sum() == pytest.approx(frame.sum(), rel=1e-9)
    back = realign(moved, (-dy, -dx))
    # interpolation smooths: a moved-and-back frame stays within a per cent of the peak
    assert np.max(np.abs(back - frame)) < 0.02 * frame.max()


@FAST
@given(seed=seeds, shift=shifts)
def test_a_nan_free_frame_stays_nan_free_and_nan_does_not_spread_beyond_the_kernel(seed, shift):
    rng = np.random.default_rng(seed)
    values = rng.normal(10.0, 1.0, 40)
    assert np.isfinite(shift_array(values, shift, 0)).all()
    values[20] = np.nan
    moved = shift_array(values, shift, 0)
    assert np.isnan(moved).sum() <= 8  # the 5-tap kernel (plus its support) only
    assert np.isfinite(moved[:10]).all() and np.isfinite(moved[-10:]).all()


# --- trace positions -----------------------------------------------------------------------
def _trace_cube(offsets, centre, ny=40, nx=48, sigma=2.0, flux=5e3):
    y = np.arange(ny)[None, :, None]
    centre_x = centre + 0.02 * (np.arange(nx) - nx / 2)  # a slightly tilted trace
    c = centre_x[None, None, :] + np.asarray(offsets)[:, None, None]
    return 10.0 + flux * np.exp(-0.5 * ((y - c) / sigma) ** 2), centre_x


@SLOW
@given(
    offsets=st.lists(st.floats(-0.4, 0.4), min_size=3, max_size=6),
    roll=st.integers(min_value=-6, max_value=6),
)
def test_trace_shifts_are_equivariant_under_a_translation_of_the_array(offsets, roll):
    """Moving the whole exposure by whole rows moves the reference, not the shifts."""
    offsets = np.asarray(offsets) - np.mean(offsets)
    results = []
    for shift_rows in (0, roll):
        cube, centre_x = _trace_cube(offsets, 19.5 + shift_rows)
        reference = np.mean(cube, axis=0)
        variance = np.full(cube.shape[1:], 25.0)
        positions = integration_positions(cube, variance, reference, centre_x[None], [8.0])
        results.append(positions.shift)
    assert np.isfinite(results[0]).all()
    np.testing.assert_allclose(results[1], results[0], atol=2e-3)


def _common_shift_case(offsets, delta):
    offsets = np.asarray(offsets) - np.mean(offsets)
    cube, centre_x = _trace_cube(offsets, 19.5)
    reference = np.mean(cube, axis=0)
    variance = np.full(cube.shape[1:], 25.0)
    base = integration_positions(cube, variance, reference, centre_x[None], [8.0]).shift
    moved, _ = _trace_cube(offsets + delta, 19.5)
    shifted = integration_positions(moved, variance, reference, centre_x[None], [8.0]).shift
    np.testing.assert_allclose(shifted - base, delta, atol=5e-3)


@SLOW
@given(offsets=st.lists(st.floats(-0.2, 0.2), min_size=3, max_size=6), delta=st.floats(-0.2, 0.2))
def test_trace_shifts_follow_a_common_shift_of_every_integration(offsets, delta):
    """Moving every integration by ``delta`` against a fixed reference adds ``delta``."""
    _common_shift_case(offsets, delta)


def test_trace_shift_far_from_a_blurred_reference():
    # Was a bug (found 2026-12-02): outliers were clipped after one step, while a trace 0.63
    # px from the reference still left every trace pixel beyond 5 sigma, and the fit locked
    # at +0.12 to +0.17 px instead of -0.30.
    _common_shift_case([0.0, 0.25, -0.375], -0.296875)


def test_trace_position_of_an_empty_integration_is_nan_and_the_others_are_unchanged():
    offsets = np.array([0.1, -0.2, 0.0, 0.15, -0.05])
    cube, centre_x = _trace_cube(offsets, 19.5)
    reference = np.mean(cube, axis=0)
    variance = np.full(cube.shape[1:], 25.0)
    clean = integration_positions(cube, variance, reference, centre_x[None], [8.0])
    bad = np.zeros(cube.shape, dtype=bool)
    bad[2] = True
    lost = integration_positions(cube, variance, reference, centre_x[None], [8.0], bad=bad)
    assert np.isnan(lost.shift[2]) and np.isnan(lost.shift_error[2])
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(lost.shift[keep], clean.shift[keep])


# --- centroids ----------------------------------------------------------------------------------
def _psf_cube(offsets, x0, y0, n=48, sigma=1.6):
    y, x = np.mgrid[:n, :n]
    frames = [
        2.0 + 4e3 * np.exp(-((x - x0 - dx) ** 2 + (y - y0 - dy) ** 2) / (2 * sigma**2))
        for dx, dy in offsets
    ]
    return np.asarray(frames)


@SLOW
@given(
    offsets=st.lists(st.tuples(st.floats(-0.4, 0.4), st.floats(-0.4, 0.4)), min_size=3, max_size=5),
    move=st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
    method=st.sampled_from(["template", "com"]),
)
def test_centroids_are_equivariant_under_a_translation(offsets, move, method):
    base = _psf_cube(offsets, 23.3, 24.1)
    moved = _psf_cube(offsets, 23.3 + move[0], 24.1 + move[1])
    variance = np.full(base.shape[1:], 4.0)
    a = measure_centroids(base, variance=variance, method=method, window_radius=8.0)
    b = measure_centroids(moved, variance=variance, method=method, window_radius=8.0)
    np.testing.assert_allclose(np.asarray(b["centroid_x"]) - move[0], a["centroid_x"], atol=2e-3)
    np.testing.assert_allclose(np.asarray(b["centroid_y"]) - move[1], a["centroid_y"], atol=2e-3)
    assert np.isfinite(np.asarray(a["centroid_x"])).all()


# --- 1/f correction --------------------------------------------------------------------------
@SLOW
@given(seed=seeds, noutputs=st.sampled_from([1, 4]), window=st.sampled_from([0, 31]))
def test_one_over_f_correction_of_clean_data_is_idempotent_and_adds_no_nan(seed, noutputs, window):
    """On data without stripes a second pass finds (almost) nothing left to remove.

    The levels are measured on noisy pixels, so a pass removes the noise of each line
    level (~ 1 / sqrt(pixels per line) of the pixel noise, here 1); the second pass must
    remove far less than the first.
    """
    rng = np.random.default_rng(seed)
    ny, nx = 32, 64
    layout = LineLayout.from_geometry(ReadoutGeometry("NIRCAM", (ny, nx), -1, 2, noutputs))
    cube = rng.normal(5.0, 1.0, (4, ny, nx)).astype(np.float32)
    dark = np.ones((ny, nx), dtype=bool)
    dark[12:20, 10:50] = False  # a source region
    cube[:, 12:20, 10:50] += 200.0
    once = cube.copy()
    clean_cube(once, dark, layout, options=OneOverFOptions(background_window=window))
    assert np.isfinite(once).all()
    twice = once.copy()
    clean_cube(twice, dark, layout, options=OneOverFOptions(background_window=window))
    assert np.isfinite(twice).all()
    first, second = np.std(once - cube), np.std(twice - once)
    assert second < 0.06  # pixel noise 1
    assert second < 0.7 * first


@SLOW
@given(
    seed=seeds,
    noutputs=st.sampled_from([1, 4]),
    window=st.sampled_from([0, 31]),
    amplitude=st.sampled_from([1.0, 3.0]),
)
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="measured 2026-12-03 (benchmarks/bench_one_over_f_idempotence.py, 32x64 frames, "
    "pixel noise 1): stripes of rms 1 leave 0.16-0.48 after one pass and a second pass "
    "changes the frame by up to 0.02-0.24; rms 3: 0.35-1.32 left, up to 0.17-0.72 changed "
    "(white, random-walk and 1/f-spectrum line stripes); clean data: 0.01-0.04. Cause: "
    "the stripe image is a line through the line levels at the line centres (1/f noise is "
    "continuous in read time), which removes ~79 % of a level that is constant per line "
    "(this test's stripes); a mean-preserving curve removed 99.9 % but changed the white "
    "light by -10 % / +8 % on two 1/f spectra, so it was not adopted (closing note 12-03)",
)
def test_one_over_f_correction_of_striped_data_is_idempotent(seed, noutputs, window, amplitude):
    """A frame already corrected for its stripes must not change much when corrected again.

    The same frames as the clean-data test, plus per-line (and per-output) offsets in every
    frame: after one pass what is left are the line-level measurement errors, so a second
    pass must change the frame by far less than the pixel noise (1), as on clean data.
    """
    rng = np.random.default_rng(seed)
    ny, nx = 32, 64
    layout = LineLayout.from_geometry(ReadoutGeometry("NIRCAM", (ny, nx), -1, 2, noutputs))
    cube = rng.normal(5.0, 1.0, (4, ny, nx)).astype(np.float32)
    dark = np.ones((ny, nx), dtype=bool)
    dark[12:20, 10:50] = False
    cube[:, 12:20, 10:50] += 200.0
    width = nx // noutputs
    for output in range(noutputs):
        lines = rng.normal(0.0, amplitude, (4, ny, 1)) + rng.normal(0.0, amplitude, (4, 1, 1))
        cube[:, :, output * width : (output + 1) * width] += lines.astype(np.float32)
    once = cube.copy()
    clean_cube(once, dark, layout, options=OneOverFOptions(background_window=window))
    twice = once.copy()
    clean_cube(twice, dark, layout, options=OneOverFOptions(background_window=window))
    assert np.isfinite(twice).all()
    assert np.std(twice - once) < 0.06  # the clean-data bound: pixel noise 1
