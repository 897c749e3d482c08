"""1/f and pre-amplifier offset correction of TSO cubes and ramps, on plain arrays.

For every frame (an integration of a rateints cube, or a group difference of a ramp) the
stripes are measured on the frame minus a model of the scene, then subtracted:

1. The scene model is the per-pixel median over integrations, ``M`` (one per frame kind: the
   rate, group 0, or each group difference).  Its own static stripes - per-output and
   even/odd offsets relative to their mean, and line levels relative to a running median
   over lines - are removed first, so what is left of ``M`` is source plus a smooth
   background; the background is therefore kept, not subtracted as a stripe.
2. Each frame's residual is ``r = frame - s * M`` with ``s = 1``, or, with the *source model*
   on, ``s`` the frame's median ratio to ``M`` on the brightest source pixels (a transit
   changes ``s``, not the stripes).
3. Stripes are fitted to ``r`` (:func:`~tso_steps.one_over_f.stripes.fit_stripes`) with
   inverse-variance weights: the variance of each pixel is its robust scatter over frames,
   and only unilluminated pixels are used unless the source model is on, in which case every
   good pixel contributes (source pixels with their photon-noise weight).

A ramp is corrected through group differences: ``D_0 = G_0``, ``D_k = G_k - G_{k-1}``;
the stripes of each ``D_k`` are measured and their running sum is subtracted from every
group, so each group's own 1/f is removed while the bias and kTC pedestal, which are the
same in every group of an integration, never enter a difference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.one_over_f.cleaner import METHODS, _Cleaner
from tso_steps.one_over_f.sample import learn_from_sample
from tso_steps.one_over_f.scene import (
    MAX_MODEL_FRAMES,
    MAX_VARIANCE_FRAMES,
    MEDIAN_BLOCK,
    nanmedian_frames,
)
from tso_steps.parallel import Progress

__all__ = [
    "METHODS",
    "CleanSummary",
    "OneOverFOptions",
    "clean_cube",
    "clean_ramp",
    "dark_shortage",
]

log = logging.getLogger("stpipe.tso_steps.one_over_f")


@dataclass(frozen=True)
class OneOverFOptions:
    """Settings of :func:`clean_cube` and :func:`clean_ramp` (the ``tso_one_over_f`` spec).

    Attributes
    ----------
    source_model : bool
        Subtract a scaled median frame before measuring, and use all good pixels (the step
        resolves its ``'auto'``).
    odd_even : bool
        Separate slow-by-slow offsets for even and odd samples of each output.
    min_pixels : int
        Minimum usable pixels in a line of one output for a direct level.
    clip_sigma : float
        Clipping threshold for pixels in a level, standard deviations.
    background_window : int
        Lines in the running median that separates background from static stripes in the
        median frame (0: remove all static line structure).
    segment : int, optional
        Reads per segment of a line with its own level (default: one level per line);
        levels are interpolated linearly in read time between segment centres.
    method : {'lines', 'wiener', 'gp'}
        How line levels are estimated (see :data:`METHODS`; the step resolves ``'auto'``);
        ``'gp'`` estimates the 1/f at every pixel's read time instead
        (:mod:`tso_steps.one_over_f.gp`).
    dispersion_axis : int or None
        ``method='gp'`` with the source model: array axis of the dispersion (the source's
        spectrum is free along it); None for imaging.
    gp_unit : int
        ``method='gp'``: reads averaged into one observation of the 1/f.
    gp_budget : int
        ``method='gp'``: largest number of observations per frame (distant unilluminated
        reads are merged to meet it; the cost grows as its cube once per run).
    chunk : int
        Frames processed at once (:func:`clean_cube`; the result does not depend on it).
    median_block : int
        Pixel values read at once for the scene model (the result does not depend on it).
    """

    source_model: bool = False
    odd_even: bool = True
    min_pixels: int = 5
    clip_sigma: float = 4.0
    background_window: int = 31
    segment: int | None = None
    method: str = "lines"
    dispersion_axis: int | None = None
    gp_unit: int = 16
    gp_budget: int = 4096
    chunk: int = 16
    median_block: int = MEDIAN_BLOCK


@dataclass
class CleanSummary:
    """What a cleaning run did, per integration.

    Attributes
    ----------
    stripe_rms : ndarray, shape ``(nints,)``
        RMS of the stripes removed (per frame; for ramps the RMS over group differences),
        data units.
    scale : ndarray, shape ``(nints,)``
        Source-model scale (median over the integration's frames); 1 without source model.
    filled_fraction : float
        Fraction of line/output levels interpolated from neighbouring lines.
    source_model : bool
        Whether the scaled source model was used.
    """

    stripe_rms: np.ndarray
    scale: np.ndarray
    filled_fraction: float = 0.0
    source_model: bool = False


def dark_shortage(dark, layout, min_pixels=5):
    """Fraction of (fast line, output) cells with fewer than ``min_pixels`` dark pixels.

    Such cells can only be predicted from the other outputs and neighbouring lines, or
    measured after a source model is subtracted; the step turns the source model on when
    this fraction is large (NIRCam grism with 4 outputs: the trace fills whole lines of
    three outputs).

    Parameters
    ----------
    dark : ndarray of bool, shape ``(ny, nx)``
        True for usable unilluminated pixels.
    layout : `~tso_steps.readout.LineLayout`
    min_pixels : int

    Returns
    -------
    float
    """
    counts = layout.to_lines(dark)[:, layout.by_amp()].sum(axis=-1)
    return float(np.mean(counts < min_pixels))


def clean_cube(
    cube,
    dark,
    layout,
    bad=None,
    source=None,
    options=None,
):
    """Remove 1/f stripes and output offsets from every frame of a cube, in place.

    Parameters
    ----------
    cube : ndarray of float32, shape ``(nframes, ny, nx)``
        E.g. a rateints cube (DN/s). Modified in place.
    dark : ndarray of bool, shape ``(ny, nx)``
        Unilluminated, good pixels.
    layout : `~tso_steps.readout.LineLayout`
    bad : ndarray of bool, shape like ``cube`` or ``(ny, nx)``, optional
        Samples not to use in any measurement (they are still corrected).
    source : ndarray of bool, optional
        Source pixels, for the source-model scale; default ``~dark``.
    options : OneOverFOptions, optional
        Settings; default ``OneOverFOptions()``.

    Returns
    -------
    CleanSummary
    """
    nframes = cube.shape[0]
    if bad is None:
        bad = np.zeros(cube.shape[1:], dtype=bool)
    bad = np.broadcast_to(bad, cube.shape)
    options = OneOverFOptions() if options is None else options
    cleaner = _Cleaner(layout, dark, source, options)
    chunk = options.chunk

    def get_frames(index, rows=slice(None)):
        frames = cube[index, rows].astype(np.float32)
        frames[bad[index, rows]] = np.nan
        return frames

    log.info(
        "tso_one_over_f: scene model (median over up to %d of %d integrations)",
        min(nframes, MAX_MODEL_FRAMES),
        nframes,
    )
    median = nanmedian_frames(get_frames, nframes, cube.shape[1:], block=options.median_block)
    model = cleaner.clean_model(median)
    sample = _variance_sample(nframes)
    good = np.isfinite(model).all(axis=0) & ~bad.all(axis=0)
    coeffs = np.concatenate(
        [
            cleaner.source_coefficients(get_frames(sample[start : start + chunk]), model)
            for start in range(0, sample.size, chunk)
        ]
    )

    def residual_rows(positions, rows):
        frames = get_frames(sample[positions], rows)
        return cleaner.subtract_source(frames, model, coeffs[positions], rows)

    weights = learn_from_sample(
        cleaner,
        residual_rows,
        sample.size,
        cube.shape[1:],
        good,
        model,
        rows=_sample_rows(options, sample.size, cube.shape[-1]),
        chunk=chunk,
    )
    rms = np.zeros(nframes)
    scale = np.ones(nframes)
    starts = range(0, nframes, chunk)
    progress = Progress(log, "tso_one_over_f", len(starts), unit="chunks of integrations")
    for start in starts:
        index = np.arange(start, min(start + chunk, nframes))
        stripes, scale[index] = cleaner.measure(get_frames(index), model, weights, scaled=True)
        cube[index] -= stripes
        rms[index] = np.sqrt(np.mean(np.square(stripes, dtype=np.float64), axis=(1, 2)))
        progress.update()
    return CleanSummary(rms, scale, float(np.mean(cleaner.filled)), bool(options.source_model))


def clean_ramp(
    data,
    dark,
    layout,
    group_dq=None,
    bad_bits=0,
    bad=None,
    source=None,
    options=None,
):
    """Remove 1/f stripes and output offsets from every group of a ramp, in place.

    Works on group differences (see the module docstring), one integration at a time, so
    the largest temporaries are a few ``(ngroups, ny, nx)`` float32 arrays.

    Parameters
    ----------
    data : ndarray of float32, shape ``(nints, ngroups, ny, nx)``
        Ramp in DN; modified in place.
    dark : ndarray of bool, shape ``(ny, nx)``
        Unilluminated, good pixels.
    layout : `~tso_steps.readout.LineLayout`
    group_dq : ndarray of int, shape like ``data``, optional
        Group data-quality flags; samples with any of ``bad_bits`` set are not used
        (a difference is unusable when either of its groups is).
    bad_bits : int
        Bit mask of the flags that make a group sample unusable.
    bad : ndarray of bool, shape ``(ny, nx)``, optional
        Pixels never to use in a measurement (they are still corrected).
    source, options
        As in :func:`clean_cube` (``options.chunk`` is not used: one integration at a time).

    Returns
    -------
    CleanSummary
        ``stripe_rms`` is the RMS over the group differences of each integration (DN).
    """
    nints, ngroups = data.shape[:2]
    options = OneOverFOptions() if options is None else options
    cleaner = _Cleaner(layout, dark, source, options)

    def kind_frames(ints, kind, rows=slice(None)):
        """Frames of one kind (0: group 0, k: difference k) for some integrations."""
        frames = data[ints, kind, rows].astype(np.float32)
        if kind > 0:
            frames -= data[ints, kind - 1, rows]
        if group_dq is not None and bad_bits:
            unusable = (group_dq[ints, kind, rows] & bad_bits) != 0
            if kind > 0:
                unusable |= (group_dq[ints, kind - 1, rows] & bad_bits) != 0
            frames[unusable] = np.nan
        return frames

    shape = data.shape[2:]
    models = np.empty((2, ngroups, *shape), dtype=np.float32)  # (clean, source) per kind
    log.info(
        "tso_one_over_f: scene model (median over up to %d integrations) of group 0 and %d "
        "group differences",
        min(nints, MAX_MODEL_FRAMES),
        ngroups - 1,
    )
    modelling = Progress(log, "tso_one_over_f: scene model", ngroups, unit="group kinds")
    for kind in range(ngroups):
        median = nanmedian_frames(
            lambda i, r, k=kind: kind_frames(i, k, r), nints, shape, block=options.median_block
        )
        models[:, kind] = cleaner.clean_model(median)
        modelling.update()

    # weights: group 0 (kTC, bias residuals) apart from the differences
    sample = _variance_sample(nints)
    # a kind that is unusable everywhere (e.g. MIRI's last group, DO_NOT_USE in every pixel)
    # says nothing about which pixels are good; only the usable kinds decide
    usable_kinds = np.isfinite(models).any(axis=(0, 2, 3))
    good = np.all(np.isfinite(models[:, usable_kinds]), axis=(0, 1))
    if bad is not None:
        good &= ~bad
    pieces = dict(rows=_sample_rows(options, sample.size, shape[-1]), chunk=options.chunk)

    def first_rows(positions, rows):
        return kind_frames(sample[positions], 0, rows) - models[0, 0][rows]

    weights_first = learn_from_sample(
        cleaner, first_rows, sample.size, shape, good, models[:, 0], learn=False, **pieces
    )
    if ngroups > 1:
        pairs = [(i, 1 + (j % (ngroups - 1))) for j, i in enumerate(sample)]

        def difference_rows(positions, rows):
            return np.stack(
                [
                    kind_frames(np.array([i]), k, rows)[0] - models[0, k][rows]
                    for i, k in (pairs[p] for p in positions)
                ]
            )

        weights_diff = learn_from_sample(
            cleaner, difference_rows, len(pairs), shape, good, models[:, 1:], outputs=False,
            **pieces,
        )  # fmt: skip
    rms = np.zeros(nints)
    scale = np.ones(nints)
    log.info("tso_one_over_f: measuring and removing stripes in %d integrations", nints)
    progress = Progress(log, "tso_one_over_f", nints, unit="integrations")
    for integration in range(nints):
        frames = _integration_frames(data, integration, group_dq, bad_bits)
        stripes = np.empty_like(frames)
        stripes[:1], _ = cleaner.measure(frames[:1], models[:, 0], weights_first, scaled=False)
        if ngroups > 1:
            stripes[1:], scales = cleaner.measure(frames[1:], models[:, 1:], weights_diff, True)
            scale[integration] = np.median(scales)
            rms[integration] = np.sqrt(np.mean(np.square(stripes[1:], dtype=np.float64)))
        for k in range(1, ngroups):  # np.cumsum(axis=0) in place, a frame at a time (faster)
            stripes[k] += stripes[k - 1]
        data[integration] -= stripes
        progress.update()
    return CleanSummary(rms, scale, float(np.mean(cleaner.filled)), bool(options.source_model))


def _integration_frames(data, integration, group_dq, bad_bits):
    """Group 0 and the group differences of one integration (``kind_frames`` of every kind)."""
    frames = data[integration].astype(np.float32)
    frames[1:] -= data[integration, :-1]
    if group_dq is not None and bad_bits:
        bad = (group_dq[integration] & bad_bits) != 0
        unusable = bad.copy()
        unusable[1:] |= bad[:-1]
        frames[unusable] = np.nan
    return frames


def _variance_sample(nframes):
    """Frames (spread over the exposure) whose residuals set the weights."""
    return np.unique(np.linspace(0, nframes - 1, min(nframes, MAX_VARIANCE_FRAMES)).astype(int))


def _sample_rows(options, nframes, nx):
    """Image rows of every sample frame held at once: half a median block (more copies)."""
    return max(1, options.median_block // (2 * nframes * nx))
