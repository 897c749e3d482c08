"""Image motion between integrations: measuring sub-pixel shifts and building regressors.

:func:`measure_shifts` registers every frame of a time series (images or 1-D spectra)
against a reference by iterative Gauss-Newton least squares on a cubic-spline model of the
reference (the Lucas-Kanade approach, Lucas & Kanade 1981), fitting a flux scale and an
additive offset at the same time so that a transit or a background change does not bias
the shift.  It works on plain arrays; the outlier and jitter steps share it.

:func:`motion_design_matrix` turns per-integration shifts into orthonormal regressors
(shifts and their second-order products) for per-pixel decorrelation.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tso_steps.stats import MAD_TO_SIGMA, nanmedian_last, robust_std

log = logging.getLogger("stpipe.tso_steps.motion")

__all__ = ["ShiftResult", "measure_shifts", "motion_design_matrix"]


@dataclass
class ShiftResult:
    """Per-frame registration against a reference.

    Attributes
    ----------
    shifts : ndarray, shape ``(nframes, ndim)``
        Shift of each frame's content along each array axis, in pixels (axis order as in
        the array: for an image ``(dy, dx)``); positive means towards increasing index.
    scale : ndarray, shape ``(nframes,)``
        Flux of each frame relative to the reference.
    offset : ndarray, shape ``(nframes,)``
        Additive offset of each frame (data units).
    errors : ndarray, shape ``(nframes, ndim)``
        1-sigma statistical uncertainty of each shift, pixels: the white-noise error from
        the residual scatter, scaled by the residual-based (sandwich) covariance of
        :func:`_calibration` so that noise shared along lines or larger on the steep pixels
        is counted.
    npixels : int
        Number of reference pixels used.
    """

    shifts: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    errors: np.ndarray
    npixels: int

    def significant_axes(self, factor=3.0):
        """Axes along which the frames really move: shift scatter > ``factor`` x error.

        Returns
        -------
        ndarray of bool, shape ``(ndim,)``
        """
        scatter = MAD_TO_SIGMA * np.nanmedian(
            np.abs(self.shifts - np.nanmedian(self.shifts, axis=0)), axis=0
        )
        return scatter > factor * np.nanmedian(self.errors, axis=0)


def measure_shifts(
    frames,
    reference=None,
    mask=None,
    max_pixels=10000,
    iterations=4,
    block=256,
    clip=5.0,
    calibrate=True,
):
    """Measure the sub-pixel shift of every frame against a reference frame.

    Each frame is modelled as ``scale * R(x - shift) + offset`` where ``R`` is a cubic
    spline through the reference; the model is linearised around the current shift and
    solved by least squares, iterating so that shifts of a pixel or more converge.  Only
    the ``max_pixels`` pixels with the steepest reference gradient are used (the flanks of
    a trace or PSF, which carry the positional information), and within each frame samples
    deviating by more than ``clip`` times the frame's robust residual scatter (cosmic rays)
    are dropped before the final solve of each iteration.

    Parameters
    ----------
    frames : ndarray, shape ``(nframes, ...)``
        Images ``(nframes, ny, nx)`` or spectra ``(nframes, n)``.  Only the selected pixels
        are read, so a memory-mapped array is fine.
    reference : ndarray, optional
        The frame to register against (shape ``frames.shape[1:]``); default the median
        over frames.  NaN pixels are not used.
    mask : ndarray of bool, optional
        Same shape as ``frames``, True where a sample must not be used.
    max_pixels : int
        Number of reference pixels used.
    iterations : int
        Gauss-Newton iterations.
    block : int
        Frames processed together (bounds memory: ``block * max_pixels`` samples).
    clip : float
        Outlier rejection threshold in units of the robust residual scatter (see
        ``calibrate``).
    calibrate : bool
        Clip against each pixel's own scatter over the frames and scale the white-noise
        errors by the residual-based (sandwich) calibration.  False: clip against each
        frame's scatter and keep the white-noise errors, the behaviour that tso_outlier's
        motion test (``ShiftResult.significant_axes``) was set on.

    Returns
    -------
    ShiftResult
        Shifts in pixels, relative flux and offset per frame.  Frames with too few good
        pixels get NaN.
    """
    nframes = frames.shape[0]
    shape = frames.shape[1:]
    if reference is None:
        reference = np.nanmedian(np.asarray(frames, dtype=np.float64), axis=0)
    reference = np.asarray(reference, dtype=np.float64)
    finite = np.isfinite(reference)
    filled = np.where(finite, reference, 0.0)
    gradients = np.gradient(filled) if filled.ndim > 1 else [np.gradient(filled)]
    strength = sum(g * g for g in gradients)
    # Pixels next to a NaN have meaningless gradients.
    near_bad = ~ndimage.binary_erosion(finite, iterations=1, border_value=1)
    strength[near_bad] = -1.0
    flat = strength.ravel()
    usable = np.flatnonzero(flat > 0)
    if usable.size == 0:
        raise ValueError("The reference frame has no usable gradient to register against.")
    npix = min(int(max_pixels), usable.size)
    index = usable[np.argpartition(flat[usable], usable.size - npix)[usable.size - npix :]]
    coords = np.array(np.unravel_index(index, shape), dtype=np.float64)

    spline = ndimage.spline_filter(filled, order=3)
    grad_splines = [ndimage.spline_filter(g, order=3) for g in gradients]
    sampler = ShiftedSplines([spline, *grad_splines], coords)
    ndim = len(shape)
    shifts = np.zeros((nframes, ndim))
    scale = np.full(nframes, np.nan)
    offset = np.full(nframes, np.nan)
    errors = np.full((nframes, ndim), np.nan)
    inflation = np.full((nframes, 1 + ndim, ndim), np.nan)
    flat_frames = frames.reshape(nframes, -1)
    for start in range(0, nframes, block):
        stop = min(start + block, nframes)
        data = np.asarray(flat_frames[start:stop][:, index], dtype=np.float64)
        bad = ~np.isfinite(data)
        if mask is not None:
            bad |= mask.reshape(nframes, -1)[start:stop][:, index]
        data[bad] = 0.0
        result = _register_block(
            data,
            ~bad,
            coords,
            sampler,
            iterations,
            clip,
            shifts[start:stop],
            calibrate,
        )
        shifts[start:stop], scale[start:stop], offset[start:stop] = result[:3]
        errors[start:stop], inflation[start:stop] = result[3:]
    _remeasure_spikes(
        flat_frames,
        mask,
        index,
        coords,
        sampler,
        iterations,
        clip,
        calibrate,
        (shifts, scale, offset, errors, inflation),
    )
    if calibrate:
        errors *= _calibration(inflation)
    return ShiftResult(shifts=shifts, scale=scale, offset=offset, errors=errors, npixels=npix)


class ShiftedSplines:
    """Cubic-spline images sampled at fixed pixels moved by one shift per frame.

    The same values as ``scipy.ndimage.map_coordinates(c, coords - shift, order=3,
    prefilter=False)`` for each prefiltered image ``c`` (to rounding), computed differently:
    the pixels are whole numbers, so within a frame every sample falls at the same fraction
    of its cell, and the spline is one set of ``4**ndim`` tap weights (from the shift) applied
    to the coefficients around each pixel.  The coefficients are gathered once per whole-pixel
    part of the shift (a frame moves by less than a pixel or two: a few tables), and a block
    of frames is then a matrix product (tap weights x gathered coefficients), several times
    faster than interpolating every sample.  At the array edges it follows
    ``map_coordinates``' rules (mirrored coefficients; 0 outside the array), and a frame
    with a non-finite shift is left to ``map_coordinates``.

    Parameters
    ----------
    images : list of ndarray
        Spline coefficients (``scipy.ndimage.spline_filter(..., order=3)``), one shape.
    coords : ndarray, shape ``(ndim, npix)``
        The pixels, whole numbers.
    """

    def __init__(self, images, coords):
        self.images = [np.asarray(c, dtype=np.float64) for c in images]
        self.coords = np.asarray(coords, dtype=np.float64)
        self.pixels = self.coords.astype(np.int64)
        self.shape = np.array(self.images[0].shape)
        self._tables = {}

    def _table(self, cell):
        """Coefficients at every tap of every pixel for the whole-pixel offset ``cell``.

        Returns ``images x 4**ndim x npix``.  Taps past the array edge take the mirrored
        coefficient (``c[-1] = c[1]``), as ``map_coordinates`` does for a sample inside the
        array.
        """
        if cell not in self._tables:
            ndim = len(cell)
            first = self.pixels + np.array(cell)[:, None] - 1  # the first tap of each pixel
            taps = np.stack(np.meshgrid(*[np.arange(4)] * ndim, indexing="ij"), axis=0).reshape(
                ndim, -1
            )  # (ndim, 4**ndim), the last axis fastest
            where = np.abs(first[:, None, :] + taps[:, :, None])
            last = self.shape[:, None, None] - 1
            # (a tap mirrored past the far edge belongs to a sample outside the array: 0)
            where = np.clip(np.where(where > last, 2 * last - where, where), 0, last)
            flat = np.ravel_multi_index(tuple(where), tuple(self.shape))
            self._tables[cell] = np.stack([c.ravel()[flat] for c in self.images])
        return self._tables[cell]

    def sample(self, shifts, out=None):
        """The images at ``coords - shift`` for every frame's shift.

        Parameters
        ----------
        shifts : ndarray, shape ``(nframes, ndim)``
        out : ndarray, shape ``(nimages, nframes, npix)``, optional

        Returns
        -------
        ndarray, shape ``(nimages, nframes, npix)``
        """
        nframes, ndim = shifts.shape
        npix = self.coords.shape[1]
        if out is None:
            out = np.empty((len(self.images), nframes, npix))
        position = -np.asarray(shifts, dtype=np.float64)
        # arrays under 4 pixels along an axis: their edge rules are map_coordinates' own
        finite = np.isfinite(position).all(axis=1) & (self.shape.min() >= 4)
        position = np.where(finite[:, None], position, 0.0)
        cells = np.floor(position).astype(np.int64)
        weights = _bspline_weights(position - cells)
        # a sample that falls outside the array is 0, map_coordinates' constant edge rule:
        # only pixels within a cell of the edge can fall there
        near = np.abs(cells).max(initial=0) + 1
        edge = np.flatnonzero(
            ((self.pixels < near) | (self.pixels > self.shape[:, None] - 1 - near)).any(axis=0)
        )
        for cell in {tuple(c) for c in cells[finite]}:
            frames = np.flatnonzero(finite & (cells == cell).all(axis=1))
            table = self._table(cell)
            # the outer product of the axes' weights, in the table's tap order
            w = weights[frames, 0]
            for axis in range(1, ndim):
                w = (w[:, :, None] * weights[frames, axis][:, None, :]).reshape(len(frames), -1)
            for k in range(len(self.images)):
                out[k, frames] = w @ table[k]
        if edge.size:
            at = self.coords[:, None, edge] + position.T[:, :, None]  # (ndim, nframes, nedge)
            outside = ((at < 0) | (at > self.shape[:, None, None] - 1)).any(axis=0)
            out[:, :, edge] = np.where(outside, 0.0, out[:, :, edge])
        if not finite.all():
            self._exact(out, np.flatnonzero(~finite), shifts)
        return out

    def _exact(self, out, frames, shifts):
        """``map_coordinates`` for those frames (non-finite shifts, tiny arrays)."""
        where = self.coords[:, None, :] - shifts[frames].T[:, :, None]
        where = where.reshape(len(self.shape), -1)
        for k, c in enumerate(self.images):
            values = ndimage.map_coordinates(c, where, order=3, prefilter=False)
            out[k, frames] = values.reshape(len(frames), -1)


def _bspline_weights(t):
    """Cubic B-spline weights of the four taps at fraction ``t`` of a cell: ``t.shape + (4,)``."""
    u = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    return np.stack(
        [u * u * u / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
         (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0],
        axis=-1,
    )  # fmt: skip


def _remeasure_spikes(
    flat_frames, mask, index, coords, sampler, iterations, clip, pixel_clip, results, threshold=5.0
):
    """Measure again, robustly, the frames whose shift is an isolated spike (in place).

    A cosmic ray on the source can drag a frame's first, unweighted solve so far that the
    clip, against the residuals it inflated, keeps part of the hit (0.9 px along the
    dispersion for a snowball on a NIRSpec trace), and the frame's shift then stands out
    from its neighbours'.  A frame more than ``threshold`` robust sigma from both the mean of
    the two frames before it and that of the two after it, on the same side (a step, such
    as a tilt event, matches one side), is registered again from its neighbours' median by
    iteratively reweighted solves (each starting from the previous one's clip).  The new
    shift replaces the old one if it is closer to the neighbours'.
    """
    shifts, scale, offset, errors, inflation = results
    nframes = shifts.shape[0]
    if nframes < 5:
        return
    padded = np.pad(shifts, ((2, 2), (0, 0)), constant_values=np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        before = np.nanmean([padded[:-4], padded[1:-3]], axis=0)
        after = np.nanmean([padded[3:-1], padded[4:]], axis=0)
        local = np.nanmean([before, after], axis=0)
        # the floor keeps a series with no jitter (spread 0) from being all spikes
        spread = np.fmax(robust_std(shifts - local, axis=0), np.nanmedian(errors, axis=0))
        low, high = (
            np.fmin(shifts - before, shifts - after),
            np.fmax(shifts - before, shifts - after),
        )
        distance = np.where(low > 0, low, np.where(high < 0, -high, 0.0))
        distance = np.where(np.isnan(before) | np.isnan(after), 0.0, distance)
        spikes = np.flatnonzero((distance > threshold * spread).any(axis=1))
    if spikes.size == 0:
        return
    data = np.asarray(flat_frames[spikes][:, index], dtype=np.float64)
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= mask.reshape(nframes, -1)[spikes][:, index]
    data[bad] = 0.0
    redo = _register_block(
        data, ~bad, coords, sampler, iterations, clip, local[spikes], pixel_clip, reweight=True
    )
    with np.errstate(invalid="ignore"):
        closer = np.abs(redo[0] - local[spikes]).max(axis=1) < np.abs(
            shifts[spikes] - local[spikes]
        ).max(axis=1)
    chosen = spikes[closer]
    for array, new in zip((shifts, scale, offset, errors, inflation), redo, strict=True):
        array[chosen] = new[closer]
    log.debug("re-registered %d of %d spike frames robustly", chosen.size, spikes.size)


def _register_block(
    data, good, coords, sampler, iterations, clip, shifts, pixel_clip=True, reweight=False
):
    """Gauss-Newton registration of a block of frames (see :func:`measure_shifts`).

    ``sampler``: the reference spline and its gradients' (:class:`ShiftedSplines`).

    ``pixel_clip``: clip against each pixel's noise (:func:`_pixel_noise`) and measure the
    residual-based (sandwich) variances for the calibration of the errors; False: clip
    against each frame's robust scatter (the behaviour tso_outlier's motion test was set
    on) and leave the variances NaN (``measure_shifts(calibrate=False)`` does not use them).
    ``reweight``: each iteration starts from the previous one's clip instead of an
    unweighted solve (:func:`_remeasure_spikes`).
    """
    nblock, npix = data.shape
    ndim = coords.shape[0]
    nparam = ndim + 2
    shifts = shifts.copy()
    solution = np.full((nblock, nparam), np.nan)
    # Per frame, the model's terms (the reference, its gradients, a constant) and then the
    # data, each a contiguous row: one product gives the normal matrix and the right-hand
    # side (:func:`_weighted_solve`) and the sampler writes whole rows.
    rows = np.empty((nblock, nparam + 1, npix))
    rows[:, nparam - 1] = 1.0
    rows[:, nparam] = data
    basis = rows[:, :nparam]
    good_weight = good.astype(np.float64)
    weight = good_weight
    residual = None
    if reweight:
        # the first clip against the reference at the starting shifts, with only its
        # amplitude and offset fitted: a hit cannot drag a shift that is not fitted
        sampler.sample(shifts, out=rows[:, : ndim + 1].transpose(1, 0, 2))
        fixed = rows[:, [0, nparam - 1, nparam]]
        start, _ = _weighted_solve(fixed, good_weight)
        weight = _clip_weight(
            data - np.matmul(start[:, None, :], fixed[:, :2])[:, 0], good, clip, pixel_clip
        )
    for _ in range(iterations):
        sampler.sample(shifts, out=rows[:, : ndim + 1].transpose(1, 0, 2))
        if not reweight:
            weight = good_weight
        for attempt in range(2):
            solution, inverse = _weighted_solve(rows, weight)
            residual = None  # the last one is not needed while the next is computed
            residual = np.matmul(solution[:, None, :], basis)[:, 0]
            np.subtract(data, residual, out=residual)
            if attempt:
                break
            weight = _clip_weight(residual, good, clip, pixel_clip)
        amplitude = solution[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -solution[:, 1 : 1 + ndim] / amplitude[:, None]
        step[~np.isfinite(step)] = 0.0
        # A linearised step is only trusted within about a pixel.
        shifts += np.clip(step, -1.0, 1.0)
        if np.all(np.abs(step) < 1e-4):
            break
    # the scatter of the last solve's residuals (the errors are those of its solution);
    # nanmedian_last: np.nanmedian's values by one partition, 2x faster on these rows
    deviation = np.where(good, np.abs(residual), np.nan)
    scatter = MAD_TO_SIGMA * nanmedian_last(deviation, overwrite=True)
    ok = good.sum(axis=1) > ndim + 2
    shifts[~ok] = np.nan
    diagonal = np.diagonal(inverse, axis1=1, axis2=2)[:, 1 : 1 + ndim]
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = scatter[:, None] * np.sqrt(diagonal) / np.abs(solution[:, :1])
        inflation = np.full((nblock, 1 + ndim, ndim), np.nan)
        if pixel_clip:
            inflation = _sandwich_variance(basis, residual * weight, inverse, coords, ndim)
            inflation /= scatter[:, None, None] ** 2 * diagonal[:, None, :]
    errors[~ok] = np.nan
    inflation[~ok] = np.nan
    scale = np.where(ok, solution[:, 0], np.nan)
    return shifts, scale, np.where(ok, solution[:, -1], np.nan), errors, inflation


def _clip_weight(residual, good, clip, pixel_clip):
    """Weights 1 for the good samples within ``clip`` times their noise, else 0."""
    # clip on each pixel's own noise: a frame-wide scale would drop the bright flanks,
    # which carry the positional information, as outliers
    noise = _pixel_noise(residual, good, min_frames=10 if pixel_clip else np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (good & (np.abs(residual) <= clip * noise)).astype(np.float64)


def _pixel_noise(residual, good, min_frames=10):
    """Noise of every sample of a block, from the residuals of an unweighted solve.

    With at least ``min_frames`` frames each pixel gets its own robust scatter over the frames
    (photon noise makes the bright flanks, which carry the positional information, several
    times noisier than a frame's median pixel, and a frame-wide scale clips them as
    outliers); with fewer, each frame's robust scatter.  Used for the outlier clip only: the
    solve stays unweighted (inverse-variance weights from ~100 frames cost MIRI LRS 5-15 % in
    shift error), and the calibration of the errors accounts for the uneven noise.

    Returns
    -------
    ndarray, broadcastable to ``residual``
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if residual.shape[0] < min_frames:
            masked = np.where(good, residual, np.nan)
            return (MAD_TO_SIGMA * nanmedian_last(np.abs(masked, out=masked), overwrite=True))[
                :, None
            ]
        # medians over frames as rows of the transpose (np.nanmedian's values, 2x faster);
        # one transposed copy, its deviations taken in place (a median ignores the order
        # the first one's partition left)
        masked = np.full(residual.shape[::-1], np.nan)
        np.copyto(masked, residual.T, where=good.T)
        centre = nanmedian_last(masked, overwrite=True)
        np.subtract(masked, centre[:, None], out=masked)
        noise = MAD_TO_SIGMA * nanmedian_last(np.abs(masked, out=masked), overwrite=True)
        typical = np.nanmedian(noise)
    # a pixel without a usable scatter (too few good samples, or exactly constant) gets the
    # typical one, never zero (which would give it infinite weight)
    floor = 1e-3 * typical if np.isfinite(typical) and typical > 0 else 1.0
    noise = np.where(np.isfinite(noise) & (noise > floor), noise, max(typical, floor))
    return noise[None, :]


def _sandwich_variance(basis, residual, inverse, coords, ndim):
    """Shift-coefficient variances of the least-squares solve, estimated from the residuals.

    The sandwich (heteroscedasticity- and cluster-robust) covariance
    ``inverse @ sum_c g_c g_c^T @ inverse``, with ``g_c`` the sum over a cluster ``c`` of
    ``basis * residual``: every pixel its own cluster (noise that differs from pixel to
    pixel, e.g. photon noise on a bright flank), and the lines of pixels along each array
    axis (noise shared along a line, e.g. 1/f stripes, which the white-noise covariance
    ignores).  Each is scaled by ``G / (G - 1)`` for ``G`` clusters.

    ``basis`` is ``(nblock, nparam, npix)``, ``residual`` ``(nblock, npix)``.

    Returns
    -------
    ndarray, shape ``(nblock, 1 + ndim, ndim)``
        The variance of each shift coefficient for each clustering (pixels, then lines along
        each array axis), in the units of ``inverse`` times data squared.
    """
    residual = _noise_part(residual, coords.shape[0])
    groupings = [None] + [np.round(coords[axis]).astype(np.int64) for axis in range(ndim)]
    clusters = []
    for labels in groupings:
        if labels is None:
            clusters.append(None)
            continue
        order = np.argsort(labels, kind="stable")
        clusters.append((order, np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])))
    out = np.full((basis.shape[0], len(groupings), ndim), np.nan)
    # by frames (each frame's variance is its own): the scores are as large as the basis
    # (164 MB for 256 frames x 20000 pixels)
    for start, stop in _frame_chunks(basis):
        scores = basis[start:stop] * residual[start:stop, None, :]  # (frames, nparam, npix)
        for k, cluster in enumerate(clusters):
            if cluster is None:
                sums = scores
            else:
                order, starts = cluster
                sums = np.add.reduceat(scores[:, :, order], starts, axis=2)
            nclusters = sums.shape[2]
            if nclusters < 2:
                continue
            meat = np.matmul(sums, sums.transpose(0, 2, 1)) * (nclusters / (nclusters - 1))
            covariance = np.matmul(np.matmul(inverse[start:stop], meat), inverse[start:stop])
            out[start:stop, k] = np.diagonal(covariance, axis1=1, axis2=2)[:, 1 : 1 + ndim]
    return out


#: Samples of the ``(frames, pixels, parameters)`` temporaries of the per-frame products
#: (8 MB of float64): a block's basis is held once, its products frame chunk by chunk.
FRAME_CHUNK_SAMPLES = 1_000_000


def _frame_chunks(basis):
    """``(start, stop)`` of chunks of a block's frames (its first axis)."""
    nframes = basis.shape[0]
    step = max(1, FRAME_CHUNK_SAMPLES // max(basis[0].size, 1))
    return [(s, min(s + step, nframes)) for s in range(0, nframes, step)]


def _noise_part(residual, ndim, min_frames=10):
    """The residuals less the part every frame shares (a mismatch of the model, not noise).

    A reference that differs from the frames in shape (a spline through an undersampled
    core, a chromatic transit) leaves the same residual pattern in every frame, coherent
    along whole lines; counted as noise it would inflate the line-clustered variance many
    times.  The per-pixel mean over the frames of the block is removed (the variance scaled
    by ``n / (n - 1)``); with fewer than ``min_frames`` frames nothing is removed.
    """
    nblock = residual.shape[0]
    if nblock < min_frames:
        return residual
    out = residual - residual.mean(axis=0)
    out *= np.sqrt(nblock / (nblock - 1))
    return out


def _calibration(inflation):
    """Factor turning the white-noise shift errors into errors calibrated on the residuals.

    ``inflation`` holds, per frame, clustering and axis, the ratio of the sandwich variance
    (:func:`_sandwich_variance`) to the white-noise one.  The per-frame ratios are noisy, so
    they are pooled over frames (median) and the largest clustering is kept per axis: noise
    shared along lines, or larger on the steep pixels than the frame's median scatter, makes
    the white-noise error too small by this much.  Never below 1: a robust scatter that
    overestimates the noise is kept (conservative).

    Returns
    -------
    ndarray, shape ``(ndim,)``
    """
    if not np.isfinite(inflation).any():
        return np.ones(inflation.shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = np.nanmedian(inflation, axis=0)  # (1 + ndim, ndim)
        factor = np.sqrt(np.nanmax(pooled, axis=0))
    return np.where(np.isfinite(factor), np.maximum(factor, 1.0), 1.0)


def _weighted_solve(rows, weight, chunk_bytes=2**20):
    """Solve ``data[f] ~ basis[f] @ x[f]`` with per-sample weights, for every frame ``f``.

    ``rows`` is ``(nframes, nparam + 1, npix)``: the ``nparam`` basis rows of each frame,
    then its data.  Returns the solutions and the inverse normal matrices (the covariance
    per unit variance).
    """
    nframes, nrows, npix = rows.shape
    nparam = nrows - 1
    # [basis; data] W [basis; data]^T holds the normal matrix and the right-hand side; a
    # few frames at a time, so the weighted copy stays in cache
    products = np.empty((nframes, nrows, nrows))
    step = max(1, int(chunk_bytes // (8 * nrows * npix)))
    weighted = np.empty((min(step, nframes), nrows, npix))
    for start in range(0, nframes, step):
        stop = min(start + step, nframes)
        part = weighted[: stop - start]
        np.multiply(rows[start:stop], weight[start:stop, None, :], out=part)
        np.matmul(part, rows[start:stop].transpose(0, 2, 1), out=products[start:stop])
    gram = products[:, :nparam, :nparam]
    rhs = products[:, :nparam, nparam]
    gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(nparam)
    inverse = np.linalg.pinv(gram)
    return np.einsum("fkl,fl->fk", inverse, rhs), inverse


def motion_design_matrix(shifts, order=2, min_std=1e-4, rcond=1e-3):
    """Orthonormal per-integration regressors built from measured motion.

    Parameters
    ----------
    shifts : ndarray, shape ``(nints,)`` or ``(nints, nvec)``
        Per-integration motion vectors (pixels): shifts along each axis, trace positions,
        centroids.  NaN entries are replaced by the column median.
    order : int
        1: the vectors themselves (first-order Taylor term of the image in the shift);
        2: also their squares and pairwise products, which describes a pixel on the steep,
        curved flank of an undersampled trace moved by half a pixel.
    min_std : float
        Vectors whose robust scatter is below this (pixels) carry no motion and are dropped.
    rcond : float
        Directions of the design whose singular value is below ``rcond`` times the largest
        are dropped (e.g. a square that is collinear with the shift when there is only one
        tilt event and no jitter).

    Returns
    -------
    ndarray of float64, shape ``(nints, k)``
        Centred columns of unit RMS, mutually orthogonal; ``k = 0`` when there is no motion.
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    if shifts.ndim == 1:
        shifts = shifts[:, None]
    nints = shifts.shape[0]
    columns = []
    for column in shifts.T:
        median = np.nanmedian(column) if np.isfinite(column).any() else 0.0
        column = np.where(np.isfinite(column), column - median, 0.0)
        spread = MAD_TO_SIGMA * np.median(np.abs(column))
        if max(spread, np.std(column)) >= min_std:
            columns.append(column)
    if not columns:
        return np.zeros((nints, 0))
    terms = list(columns)
    if order >= 2:
        for i, first in enumerate(columns):
            for second in columns[i:]:
                terms.append(first * second)
    design = np.stack(terms, axis=1)
    design -= np.median(design, axis=0)
    u, s, _ = np.linalg.svd(design, full_matrices=False)
    keep = s > rcond * s[0]
    return u[:, keep] * np.sqrt(nints)
