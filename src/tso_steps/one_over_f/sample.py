"""Pixel weights and exposure-wide level statistics from a sample of frames, in pieces.

:func:`~tso_steps.one_over_f.correct.clean_cube` and
:func:`~tso_steps.one_over_f.correct.clean_ramp` weigh every pixel by its scatter over a
sample of up to :data:`~tso_steps.one_over_f.scene.MAX_VARIANCE_FRAMES` residual frames, and
fit the level covariance (``wiener``) or the outputs' regression (``lines``) on the dark
levels of the same frames. Both are computed without holding the sample: each pixel's
variance a few rows at a time (it is per pixel), then each frame's dark levels a few frames
at a time (they are per frame). The numbers are those of the whole sample at once, element
for element, so the result does not depend on the block sizes.
"""

from __future__ import annotations

import numpy as np

from tso_steps.one_over_f.scene import MIN_VARIANCE_FRAMES, pixel_variance

__all__ = ["learn_from_sample"]


def learn_from_sample(
    cleaner, residual_rows, nframes, shape, good, scene, *, rows, chunk, learn=True, outputs=True
):
    """Pixel weights over a sample of residual frames, and what ``cleaner`` learns from it.

    Parameters
    ----------
    cleaner : `~tso_steps.one_over_f.cleaner._Cleaner`
        Its :meth:`learn` is called with the sample's dark levels when it needs them.
    residual_rows : callable
        ``residual_rows(positions, rows)``: residual frames of the sample frames at
        ``positions`` (an integer array into the sample), restricted to the image rows
        ``rows`` (a slice), float32 ``(len(positions), n_rows, nx)``.
    nframes : int
        Frames in the sample.
    shape : tuple of int
        ``(ny, nx)``.
    good : ndarray of bool, shape ``shape``
        Pixels that may be used.
    scene : ndarray
        The scene model the residuals are taken from (``cleaner.clean_model``).
    rows : int
        Image rows of every sample frame held at once (for the pixel variance).
    chunk : int
        Whole sample frames held at once (for the dark levels).
    learn : bool
        Let ``cleaner`` learn from the sample's dark levels (else only the weights).
    outputs : bool
        Passed to ``cleaner.learn``: also fit the outputs' regression.

    Returns
    -------
    ndarray of float64, shape ``shape``
        Inverse-variance weights (0: not used).
    """
    every = np.arange(nframes)
    if nframes < MIN_VARIANCE_FRAMES:  # a spatial scatter of all frames: hold them (few)
        residuals = residual_rows(every, slice(None))
        weights = cleaner.weights(residuals, good, scene)
        if learn and cleaner.learns(outputs):
            cleaner.learn(
                *cleaner.dark_levels(residuals, weights),
                outputs=outputs,
                weights=weights,
                scene=scene,
            )
        return weights
    ny = shape[0]
    rows = max(1, int(rows))
    variance = None
    for start in range(0, ny, rows):
        block = slice(start, min(start + rows, ny))
        part = pixel_variance(residual_rows(every, block))
        if variance is None:
            variance = np.empty(shape, dtype=part.dtype)
        variance[block] = part
    weights = cleaner.weights_from_variance(variance, good, scene)
    if learn and cleaner.learns(outputs):
        chunk = max(1, int(chunk))
        parts = [
            cleaner.dark_levels(residual_rows(every[start : start + chunk], slice(None)), weights)
            for start in range(0, nframes, chunk)
        ]
        levels = (np.concatenate(p) for p in zip(*parts, strict=True))
        cleaner.learn(*levels, outputs=outputs, weights=weights, scene=scene)
    return weights
