"""Run the per-pixel outlier model over a ``(nints, ny, nx)`` cube, a few lines at a time.

The cube is cut into blocks of whole detector lines (rows when the fast read axis is x,
columns when it is y) so that the common-mode offset of each line and output can be fitted
inside a block.  Only one block of float32 temporaries per worker process exists at a time
(about 2 MB each, some fifteen of them), so the memory used beyond the input is small and
does not grow with the cube.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tso_steps.inputs.budget import chunk_spans
from tso_steps.outlier.detect import flag_series
from tso_steps.outlier.timeseries import masked_median
from tso_steps.parallel import Progress
from tso_steps.stats import MAD_TO_SIGMA

__all__ = [
    "CubeOutliers",
    "cube_relative_flux",
    "detect_cube_outliers",
    "grow_flags",
    "reference_frames",
]

log = logging.getLogger("stpipe.tso_steps.outlier")

# Bytes of one (npix, nints) float32 temporary per worker (without a memory budget).
_BLOCK_BYTES = 2e6
# Temporaries of that size a block needs at once (float32 units; a count of flag_block's
# arrays, not a measurement).
_BLOCK_TEMPORARIES = 16
# Pixels read to measure the relative flux (aperture, and far from the source).
_FLUX_PIXELS = 20000
# A line segment needs this many pixels for its median offset to be worth fitting.
_MIN_SEGMENT = 8


@dataclass
class CubeOutliers:
    """Outliers found in a cube.

    Attributes
    ----------
    indices : ndarray of int64
        Flat indices (into ``data.ravel()``) of the flagged samples, sorted.
    model_values : ndarray of float32
        Model value (data units) at each flagged sample, for replacement.
    relative_flux : ndarray, shape ``(nints,)``
        Flux of each integration relative to the median frame.
    counts : ndarray of int, shape ``(nints,)``
        Number of flagged samples per integration.
    iterations : int
        Largest number of passes any block needed.
    """

    indices: np.ndarray
    model_values: np.ndarray
    relative_flux: np.ndarray
    counts: np.ndarray
    iterations: int


# The block function of the running map; forked workers inherit it (and the arrays it
# closes over) without copying or pickling the cube.
_WORK = None


def _call_work(bounds):
    return _WORK(bounds)


def _map_blocks(work, blocks, max_workers):
    """``[work(b) for b in blocks]``, in forked worker processes when ``max_workers > 1``.

    The numpy work is a long chain of small vectorised calls that mostly hold the GIL, so
    threads do not scale; forked processes share the input arrays copy-on-write (they only
    read them) and return only the few flagged samples.  Without ``fork`` (not Linux) the
    blocks run serially.
    """
    global _WORK
    progress = Progress(log, "tso_outlier", len(blocks), unit="blocks of lines")
    workers = min(int(max_workers), len(blocks))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [progress.wrap(work)(b) for b in blocks]
    _WORK = work
    try:
        context = multiprocessing.get_context("fork")
        results = []
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for result in pool.map(_call_work, blocks):
                results.append(result)
                progress.update()
        return results
    finally:
        _WORK = None


class _Lines:
    """How a frame is cut into detector lines, and which pixels share an offset."""

    def __init__(self, shape, line_axis=1, segments=None, common_mode=True):
        self.shape = tuple(shape)
        self.line_axis = int(line_axis)
        self.nlines = self.shape[1 - self.line_axis]
        self.length = self.shape[self.line_axis]
        self.segments = segments
        self.common_mode = common_mode

    def blocks(self, nints, block_pixels=None, memory_budget=None, workers=1):
        """Spans of lines; ``memory_budget`` (MB, shared by ``workers``) sets their size."""
        line_bytes = _BLOCK_TEMPORARIES * 4 * nints * self.length
        default = _BLOCK_TEMPORARIES * 4 * nints * (block_pixels or _BLOCK_BYTES / (4 * nints))
        budget = None if memory_budget is None else memory_budget / max(1, workers)
        return chunk_spans(self.nlines, line_bytes, budget, default, label="tso_outlier")

    def read(self, array, start, stop, dtype=np.float64):
        """``(npix, nints)`` block of lines ``start:stop``, line by line."""
        nints = array.shape[0]
        if self.line_axis == 1:
            part = array[:, start:stop, :]
        else:
            part = array[:, :, start:stop].transpose(0, 2, 1)
        return np.ascontiguousarray(part.reshape(nints, -1).T, dtype=dtype)

    def frame_index(self, start, stop):
        """Flat frame index (``y * nx + x``) of every pixel of a block, in block order."""
        lines = np.arange(start, stop)[:, None]
        along = np.arange(self.length)[None, :]
        y, x = (lines, along) if self.line_axis == 1 else (along, lines)
        return (y * self.shape[1] + x).ravel()

    def groups(self, start, stop):
        """Row indices of the block's line segments (see ``timeseries.group_median``)."""
        if not self.common_mode:
            return ()
        nlines = stop - start
        if self.segments is None:
            labels = np.zeros((nlines, self.length), dtype=int)
        elif self.line_axis == 1:
            labels = self.segments[start:stop, :]
        else:
            labels = self.segments[:, start:stop].T
        result = []
        flat = labels.ravel()
        for value in np.unique(flat):
            index = np.flatnonzero(flat == value)
            if index.size % nlines or index.size // nlines < _MIN_SEGMENT:
                continue
            result.append(index.reshape(nlines, -1))
        return result


def _mask(block, dq_block, bad_bits):
    bad = ~np.isfinite(block)
    if dq_block is not None:
        bad |= (dq_block & bad_bits) != 0
    return bad


def reference_frames(data, dq=None, bad_bits=1, max_workers=1, memory_budget=None):
    """Median over integrations of every pixel, computed a few lines at a time.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
    dq : ndarray of int, optional
    bad_bits : int
        DQ bits marking samples that must not be used.
    max_workers : int
    memory_budget : float, optional
        MB of working memory shared by the workers (sets the block size only).

    Returns
    -------
    ndarray of float64, shape ``(ny, nx)``
        NaN where a pixel has no good sample.
    """
    lines = _Lines(data.shape[1:])
    nints = data.shape[0]

    def work(bounds):
        start, stop = bounds
        block = lines.read(data, start, stop)
        dq_block = None if dq is None else lines.read(dq, start, stop, dq.dtype)
        return masked_median(block, _mask(block, dq_block, bad_bits))

    blocks = lines.blocks(nints, memory_budget=memory_budget, workers=max_workers)
    parts = _map_blocks(work, blocks, max_workers)
    return np.concatenate(parts).reshape(data.shape[1:])


def cube_relative_flux(data, reference, dq=None, bad_bits=1, npixels=_FLUX_PIXELS):
    """Relative flux per integration: the source's summed flux, robust to motion and offsets.

    The flux is summed over an aperture around everything bright in the median frame
    (pixels above 2 % of its 99.9th percentile, grown by two pixels), so a trace or PSF that
    moves by a fraction of a pixel keeps its flux (a per-pixel ratio would see a tilt event
    as a flux change).  The additive offset of each integration (1/f noise, background) is
    the median of ``frame - reference`` over pixels far from the source, and is removed
    first.  Samples of a pixel deviating by more than 8 of its robust sigmas from the
    pixel's scaled median (cosmic rays) and DO_NOT_USE samples count as the scaled median.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
    reference : ndarray, shape ``(ny, nx)``
        Median frame (:func:`reference_frames`).
    dq : ndarray of int, optional
    bad_bits : int
    npixels : int
        At most this many aperture pixels (the brightest) are read.

    Returns
    -------
    ndarray of float64, shape ``(nints,)``
        Scales normalised to median 1; 1 where nothing could be measured.
    """
    nints = data.shape[0]
    finite = np.isfinite(reference)
    if not finite.any():
        return np.ones(nints)
    ref = np.where(finite, reference, 0.0)
    level = np.percentile(ref[finite], 99.9)
    if level <= 0:
        return np.ones(nints)
    core = ref > 0.02 * level
    aperture = np.flatnonzero((ndimage.binary_dilation(core, iterations=2) & finite).ravel())
    if aperture.size > npixels:
        aperture = np.sort(aperture[np.argsort(ref.ravel()[aperture])[-npixels:]])
    far = np.flatnonzero((~ndimage.binary_dilation(core, iterations=4) & finite).ravel())
    if far.size > npixels:
        far = far[:: -(-far.size // npixels)]
    flat_data = data.reshape(nints, -1)
    flat_dq = None if dq is None else dq.reshape(nints, -1)

    def read(index):
        values = np.asarray(flat_data[:, index], dtype=np.float64)
        bad = ~np.isfinite(values)
        if flat_dq is not None:
            bad |= (flat_dq[:, index] & bad_bits) != 0
        return values, bad

    offset = np.zeros(nints)
    if far.size >= 10:
        values, bad = read(far)
        offset = masked_median(values - ref.ravel()[far], bad)
        offset = np.where(np.isfinite(offset), offset, 0.0)
    values, bad = read(aperture)
    values -= offset[:, None]
    median = masked_median(values.T, bad.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        first = masked_median(values / median, bad | ~(median > 0))
    first = np.where(np.isfinite(first), first, 1.0)
    expected = first[:, None] * median
    deviation = values - expected
    sigma = MAD_TO_SIGMA * masked_median(np.abs(deviation).T, bad.T)
    clip = bad | (np.abs(deviation) > 8.0 * sigma) | ~np.isfinite(expected)
    total = np.where(clip, np.where(np.isfinite(expected), expected, 0.0), values).sum(axis=1)
    norm = np.median(total)
    if not np.isfinite(norm) or norm <= 0:
        return np.ones(nints)
    scale = total / norm
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def detect_cube_outliers(
    data,
    err=None,
    dq=None,
    bad_bits=1,
    *,
    design=None,
    motion_pixels=None,
    relative_flux=None,
    line_axis=1,
    segments=None,
    common_mode=True,
    options=None,
    max_workers=1,
    block_pixels=None,
    memory_budget=None,
):
    """Flag outliers in every pixel's time series of a cube, a few lines at a time.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Rates or calibrated values of every integration.  Read only.
    err : ndarray, optional
        Same shape, the pipeline's ERR (expected noise of each sample).
    dq : ndarray of int, optional
        Same shape; samples with any of ``bad_bits`` set are never used nor flagged.
    bad_bits : int
        DQ bits that mark unusable samples (DO_NOT_USE = 1).
    design : ndarray, shape ``(nints, k)``, optional
        Motion regressors; None or ``k = 0`` for no motion term.
    motion_pixels : ndarray of bool, shape ``(ny, nx)``, optional
        Pixels that get the motion regression (default all; see
        :func:`~tso_steps.outlier.detect.motion_sensitive`).
    relative_flux : ndarray, shape ``(nints,)``, optional
        Default: :func:`cube_relative_flux`.
    line_axis : int
        Array axis along which detector lines run (the fast read axis): 1 = rows, 0 = columns.
    segments : ndarray of int, shape ``(ny, nx)``, optional
        Output (amplifier) of every pixel: each line is split into the pixels of each output
        for the common-mode offset.  Default: whole lines.
    common_mode : bool
        Fit an additive offset per line segment and integration (1/f noise).
    options : `~tso_steps.outlier.detect.OutlierOptions`, optional
        Settings; default ``OutlierOptions()``.
    max_workers : int
        Worker processes (forked) working on separate blocks.
    block_pixels : int, optional
        Pixels per block (rounded to whole lines); default about 2 MB per float32 temporary.
    memory_budget : float, optional
        MB of working memory shared by the workers; sets the block size instead of
        ``block_pixels``. Every statistic is per pixel or per line, so the flags do not
        depend on the block size.

    Returns
    -------
    CubeOutliers
    """
    nints = data.shape[0]
    npix = data[0].size
    if relative_flux is None:
        reference = reference_frames(data, dq, bad_bits, max_workers, memory_budget)
        relative_flux = cube_relative_flux(data, reference, dq, bad_bits)
    flux = np.asarray(relative_flux, dtype=np.float64)
    design = np.zeros((nints, 0)) if design is None else np.asarray(design, dtype=np.float64)
    lines = _Lines(data.shape[1:], line_axis, segments, common_mode)

    def work(bounds):
        start, stop = bounds
        block = lines.read(data, start, stop, np.float32)
        bad = _mask(block, None if dq is None else lines.read(dq, start, stop, dq.dtype), bad_bits)
        err_block = None if err is None else lines.read(err, start, stop, np.float32)
        rows = None
        if motion_pixels is not None:
            rows = np.asarray(motion_pixels).ravel()[lines.frame_index(start, stop)]
        flags, model, done, candidates = flag_series(
            block, bad, flux, design, err_block, options, lines.groups(start, stop), rows, True
        )
        index = lines.frame_index(start, stop)
        found = []
        for chosen in (flags, candidates):
            if chosen is None:
                found.append((np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            pix, ints = np.nonzero(chosen)
            flat = ints.astype(np.int64) * npix + index[pix]
            found.append((flat, model[pix, ints].astype(np.float32)))
        return found, done

    blocks = lines.blocks(nints, block_pixels, memory_budget, max_workers)
    parts = _map_blocks(work, blocks, max_workers)
    indices, values = (np.concatenate([p[0][0][k] for p in parts]) for k in (0, 1))
    near, near_values = (np.concatenate([p[0][1][k] for p in parts]) for k in (0, 1))
    grown = np.isin(near, grow_flags(indices, near, data.shape))
    if grown.any():
        log.info("Flagged %d more samples next to flagged ones", grown.sum())
    indices = np.concatenate([indices, near[grown]])
    values = np.concatenate([values, near_values[grown]])
    order = np.argsort(indices)
    indices, values = indices[order], values[order]
    return CubeOutliers(
        indices=indices,
        model_values=values,
        relative_flux=flux,
        counts=np.bincount(indices // npix, minlength=nints),
        iterations=max(p[1] for p in parts),
    )


def grow_flags(flagged, candidates, shape):
    """The candidates joined to a flagged sample through touching candidates.

    A snowball's or shower's halo and the inter-pixel capacitance around a hit are fainter
    than the hit but sit next to it: a candidate (a sample beyond a lower threshold) that
    touches a flagged sample in the same integration (8 neighbours) is flagged, and so on
    outwards while candidates touch.

    Parameters
    ----------
    flagged, candidates : ndarray of int
        Flat indices into a cube of ``shape``.
    shape : tuple of int
        ``(nints, ny, nx)``.

    Returns
    -------
    ndarray of int64
        The flat indices of the candidates that join, sorted.
    """
    _, ny, nx = shape
    front = np.asarray(flagged, dtype=np.int64)
    remaining = np.unique(np.asarray(candidates, dtype=np.int64))
    joined = []
    while front.size and remaining.size:
        t, pixel = np.divmod(front, ny * nx)
        y, x = np.divmod(pixel, nx)
        touching = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y + dy, x + dx
                inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
                touching.append(((t * ny + yy) * nx + xx)[inside])
        hit = np.isin(remaining, np.concatenate(touching))
        front = remaining[hit]
        remaining = remaining[~hit]
        joined.append(front)
    return np.sort(np.concatenate(joined)) if joined else np.zeros(0, np.int64)
