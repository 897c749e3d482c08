"""How much a second 1/f pass changes frames that were already corrected once.

The property test ``test_one_over_f_correction_of_striped_data_is_idempotent`` asks that it
be far below the pixel noise; this measures it for white, random-walk and 1/f-spectrum line
stripes on the test's 32 x 64 frames (pixel noise 1, a 200 DN source block)::

    python benchmarks/bench_one_over_f_idempotence.py
"""

import numpy as np

from tso_steps.one_over_f.correct import OneOverFOptions, clean_cube
from tso_steps.readout import LineLayout, ReadoutGeometry

NY, NX = 32, 64


def stripes(kind, rng, nframes):
    """Per-line offsets of rms 1, shape (nframes, NY, 1)."""
    if kind == "white":
        lines = rng.normal(size=(nframes, NY, 1))
    elif kind == "walk":
        lines = np.cumsum(rng.normal(size=(nframes, NY, 1)), axis=1)
        lines -= lines.mean(axis=1, keepdims=True)
    else:  # power ~ 1/f along the slow axis
        f = np.fft.rfftfreq(NY)
        amplitude = np.zeros_like(f)
        amplitude[1:] = f[1:] ** -0.5
        noise = rng.normal(size=(nframes, f.size)) + 1j * rng.normal(size=(nframes, f.size))
        lines = np.fft.irfft(amplitude * noise, n=NY, axis=-1)[:, :, None]
    return lines / lines.std()


def measure(kind, rms, noutputs, nframes=4, seeds=6):
    """Median stripe residual after one pass and largest second-pass change."""
    left, change = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        layout = LineLayout.from_geometry(ReadoutGeometry("NIRCAM", (NY, NX), -1, 2, noutputs))
        cube = rng.normal(5.0, 1.0, (nframes, NY, NX)).astype(np.float32)
        dark = np.ones((NY, NX), dtype=bool)
        dark[12:20, 10:50] = False
        cube[:, 12:20, 10:50] += 200.0
        truth = cube.copy()
        width = NX // noutputs
        for output in range(noutputs):
            lines = rms * stripes(kind, rng, nframes)
            cube[:, :, output * width : (output + 1) * width] += lines.astype(np.float32)
        once = cube.copy()
        clean_cube(once, dark, layout, options=OneOverFOptions(background_window=0))
        twice = once.copy()
        clean_cube(twice, dark, layout, options=OneOverFOptions(background_window=0))
        error = once - truth
        left.append(np.std(error - error.mean(axis=0)))
        change.append(np.std(twice - once))
    return float(np.median(left)), float(np.max(change))


if __name__ == "__main__":
    print("stripes  rms  outputs  left after one pass  second-pass change (max)")
    for kind in ("white", "walk", "pink"):
        for rms in (0.0, 1.0, 3.0):
            for noutputs in (1, 4):
                left, change = measure(kind, rms, noutputs)
                print(f"{kind:7s} {rms:4.1f} {noutputs:6d} {left:14.3f} {change:18.3f}")
