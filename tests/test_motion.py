"""motion.measure_shifts: the reported shift errors match the true errors.

The errors are calibrated on the residuals (sandwich covariance), so they must hold where the
white-noise formula is wrong: photon noise larger on the bright flanks than the frame's median
scatter, and noise shared along detector lines (1/f stripes).  Checked on plain arrays with a
known noise model, then on simulated MIRI LRS exposures of every PSF family.
"""

import warnings

import numpy as np
import pytest
from scipy.special import ndtr

from tso_steps.jitter import measure_alignment
from tso_steps.motion import measure_shifts
from tso_steps.simulate import simulate_tso


def _spot(ny, nx, cy, cx, sigma):
    """A pixel-integrated Gaussian spot (unit peak scale), ``(ny, nx)``."""
    y, x = np.arange(ny), np.arange(nx)
    gy = ndtr((y + 0.5 - cy) / sigma) - ndtr((y - 0.5 - cy) / sigma)
    gx = ndtr((x + 0.5 - cx) / sigma) - ndtr((x - 0.5 - cx) / sigma)
    return np.outer(gy, gx)


def _ratios(frames, shifts):
    result = measure_shifts(frames, reference=np.nanmedian(frames, axis=0))
    error = result.shifts - shifts
    error -= error.mean(axis=0)
    true_rms = np.sqrt(np.mean(error**2, axis=0))
    reported = np.sqrt(np.mean(result.errors**2, axis=0))
    return true_rms / reported


@pytest.mark.parametrize("noise", ["photon", "photon+stripes"])
def test_errors_match_the_true_scatter_with_uneven_and_line_correlated_noise(noise):
    rng = np.random.default_rng(11)
    nframes, ny, nx = 200, 48, 48
    shifts = rng.normal(0.0, 0.05, (nframes, 2))
    flux, background = 2.0e5, 2.0
    frames = np.empty((nframes, ny, nx))
    for i, (dy, dx) in enumerate(shifts):
        image = flux * _spot(ny, nx, 24.0 + dy, 24.0 + dx, 1.5) + background
        frames[i] = rng.poisson(image) + rng.normal(0.0, 3.0, (ny, nx))
        if noise == "photon+stripes":
            frames[i] += rng.normal(0.0, 6.0, (ny, 1))  # one offset per row
    ratio = _ratios(frames, shifts)
    print(f"{noise}: true error / reported error (y, x) = {np.round(ratio, 2)}")
    assert np.all((ratio > 0.75) & (ratio < 1.3))


def test_white_noise_errors_are_not_inflated():
    """Uniform white noise: the calibration keeps the white-noise error (ratio about 1)."""
    rng = np.random.default_rng(12)
    nframes, ny, nx = 200, 40, 40
    shifts = rng.normal(0.0, 0.05, (nframes, 2))
    frames = np.stack(
        [1e3 * _spot(ny, nx, 20 + dy, 20 + dx, 2.0) for dy, dx in shifts]
    ) + rng.normal(0.0, 1.0, (nframes, ny, nx))
    ratio = _ratios(frames, shifts)
    print(f"white: true error / reported error (y, x) = {np.round(ratio, 2)}")
    assert np.all((ratio > 0.8) & (ratio < 1.25))


@pytest.mark.parametrize(
    ("family", "seed"),
    [("default", 1), ("default", 5), ("moffat", 2), ("diffraction", 3), ("undersampled", 4)],
)
def test_miri_dispersion_shift_errors_are_calibrated(family, seed):
    """MIRI LRS (featureless prism spectrum, dispersion along y): the error tso_jitter's
    max_error gate reads is the true one within [0.7, 1.4], for every PSF family."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_tso(
            "MIR_LRS-SLITLESS",
            nints=60,
            ngroups=6,
            seed=seed,
            psf_family=family,
            cosmic_rays=False,
            products=("rateints",),
        )
    frames = np.asarray(sim.rateints.data, dtype=float)
    alignment = measure_alignment(frames, max_error=1.0)
    true = np.asarray(sim.truth.shift_dispersion, dtype=float)
    error = alignment.shifts[:, 0] - true
    error -= error.mean()
    ratio = np.sqrt(np.mean(error**2)) / np.sqrt(np.mean(alignment.errors[:, 0] ** 2))
    print(f"{family} seed {seed}: dispersion true / reported error {ratio:.2f}")
    assert 0.7 <= ratio <= 1.4


@pytest.mark.parametrize("shape", [(40, 64), (300,), (12, 9, 7), (5, 4), (3, 50)])
def test_shifted_splines_equal_map_coordinates_inside_and_at_the_edges(shape):
    """The tap-table sampler gives map_coordinates' values: inside, at the edges (mirrored
    coefficients), outside the array (0), for whole and fractional shifts of up to 3 px and
    for a frame whose shift is NaN."""
    from scipy import ndimage

    from tso_steps.motion import ShiftedSplines

    rng = np.random.default_rng(len(shape))
    images = [ndimage.spline_filter(rng.normal(size=shape), order=3) for _ in range(3)]
    coords = np.array([rng.integers(0, n, 400) for n in shape], dtype=float)
    coords[:, :4] = 0.0
    coords[:, 4:8] = (np.array(shape) - 1)[:, None]
    shifts = rng.uniform(-3.0, 3.0, (150, len(shape)))
    shifts[:6] = [[np.nan], [0.0], [1.0], [-2.0], [1e-13], [-1e-13]]
    got = ShiftedSplines(images, coords).sample(shifts)
    where = (coords[:, None, :] - shifts.T[:, :, None]).reshape(len(shape), -1)
    want = np.stack(
        [ndimage.map_coordinates(c, where, order=3, prefilter=False) for c in images]
    ).reshape(got.shape)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got == 0.0, want == 0.0)  # the same samples fall outside
    assert np.nanmax(np.abs(got - want)) < 1e-12 * np.abs(want).max()


def _trace_frames(rng, shifts, ny=32, nx=256):
    """NIRSpec-like trace frames: narrow across (y), a spectrum with lines along (x)."""
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :] - shifts[:, 1, None, None]
    lines = sum(0.4 * np.exp(-0.5 * ((x - c) / 1.5) ** 2) for c in range(9, nx, 23))
    spectrum = 4e4 * (1.0 + 0.5 * np.sin(x / 37.0)) * (1.0 - lines)
    profile = ndtr((y + 0.5 - 15.3 - shifts[:, 0, None, None]) / 1.1) - ndtr(
        (y - 0.5 - 15.3 - shifts[:, 0, None, None]) / 1.1
    )
    image = spectrum * profile + 20.0
    return rng.poisson(image) + rng.normal(0.0, 5.0, image.shape)


@pytest.mark.parametrize("calibrate", [False, True])
def test_a_snowball_on_the_trace_does_not_drag_its_frame_shift(calibrate):
    """A bright cluster on the trace core is clipped, not fitted as a shift along x."""
    rng = np.random.default_rng(5)
    shifts = rng.normal(0.0, 0.02, (60, 2))
    frames = _trace_frames(rng, shifts)
    clean = measure_shifts(frames.copy(), calibrate=calibrate).shifts
    y, x = np.mgrid[: frames.shape[1], : frames.shape[2]]
    core = np.hypot(y - 15.5, x - 71.0)
    # a snowball: a core of ~40x the trace's peak and a fainter halo
    frames[37] += np.where(core < 2.5, 5e5, 0.0) + np.where((core >= 2.5) & (core < 5), 3e3, 0.0)
    hit = measure_shifts(frames, calibrate=calibrate).shifts
    error = hit - shifts
    error -= np.median(error, axis=0)
    others = np.delete(np.arange(60), 37)
    scatter = np.std(error[others], axis=0)
    print(f"frame 37 off by {error[37].round(4)} px; others' scatter {scatter.round(4)}")
    assert np.all(np.abs(error[37]) < 4.0 * scatter)
    # the frames without the hit are measured as well as without it
    before = clean - shifts
    before -= np.median(before, axis=0)
    assert np.all(scatter < 1.1 * np.std(before[others], axis=0))
