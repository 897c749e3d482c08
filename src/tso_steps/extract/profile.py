"""Spatial profile of a spectral trace built from the exposure itself, moved with the trace.

Every band pixel ``(k, x)`` (see :mod:`tso_steps.extract.band`) of every integration ``i``,
divided by the column's flux in that integration, is one sample of the normalised profile at
the integration's trace shift ``s_i``.  Across integrations each pixel is fitted by a line in
the shift, ``P_i[k, x] = p[k, x] + (s_i - s0) * g[k, x]``: ``p`` is the profile at the mean
position and ``g`` its derivative with respect to a cross-dispersion shift, both measured on
the data's own pixel grid.  Nothing is interpolated in the cross-dispersion direction, so an
undersampled trace (NIRCam grism, FWHM ~ 2 px) is moved as exactly as its measured shifts
allow, where shifting a median frame by interpolation is not (Horne 1986 builds the profile
from the data; Marsh 1989 follows a curved trace by fitting along it).

Both ``p`` and ``g`` are then smoothed along the dispersion (a weighted running mean of
``window`` columns, neighbours resampled to each column's sub-pixel phase so a curved trace
is followed), clipped to non-negative values, and normalised per column when evaluated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Profile", "build_profile", "choose_profile_window", "normalise_profile"]


@dataclass
class Profile:
    """Shift-dependent normalised profile of one order on its band.

    Attributes
    ----------
    base : ndarray, shape ``(nnodes, nrow, n_disp)``
        Profile at each node shift (not normalised).
    slope : ndarray, shape ``(nnodes, nrow, n_disp)``
        Derivative of the profile with respect to the trace shift at each node, per pixel.
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels.
    nodes : ndarray, shape ``(nnodes,)``
        Shifts at which ``base`` holds, pixels (one node unless the shifts spread over more
        than the bandwidth, e.g. a tilt event); an integration uses its nearest node.
    halfwidth : float
        Aperture half-width: pixels whose centre is within this distance of the trace centre
        of an integration get a profile value.
    """

    base: np.ndarray
    slope: np.ndarray
    offset: np.ndarray
    nodes: np.ndarray
    halfwidth: float

    def evaluate(self, shifts):
        """Normalised profile of integrations with the given trace shifts.

        Parameters
        ----------
        shifts : ndarray, shape ``(n,)``
            Cross-dispersion shift of each integration's trace, pixels.

        Returns
        -------
        ndarray, shape ``(n, nrow, n_disp)``
            Non-negative, zero outside the aperture, unit sum per column (NaN columns where
            the order is not traced).
        """
        shifts = np.asarray(shifts, float)
        node = np.argmin(np.abs(shifts[:, None] - self.nodes[None, :]), axis=1)
        ds = (shifts - self.nodes[node])[:, None, None]
        profile = np.clip(self.base[node] + ds * self.slope[node], 0.0, None)
        inside = np.abs(self.offset[None] - shifts[:, None, None]) <= self.halfwidth
        return normalise_profile(np.where(inside, profile, 0.0))


def normalise_profile(profile):
    """Scale every column to unit sum (columns with no positive value become NaN).

    Parameters
    ----------
    profile : ndarray, shape ``(..., nrow, n_disp)``

    Returns
    -------
    ndarray
    """
    profile = np.nan_to_num(np.clip(profile, 0.0, None))
    total = profile.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, profile / total, np.nan)


def build_profile(
    data, variance, good, offset, shifts, halfwidth, window=15, clip=5.0, bandwidth=0.1
):
    """Fit the shift-dependent profile of one order from all integrations.

    Parameters
    ----------
    data : ndarray, shape ``(nints, nrow, n_disp)``
        Background-subtracted band pixels (any flux unit).
    variance : ndarray, shape ``(nints, nrow, n_disp)``
        Their variance.
    good : ndarray of bool, shape ``(nints, nrow, n_disp)``
        Usable samples.
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels.
    shifts : ndarray, shape ``(nints,)``
        Trace shift of every integration, pixels.
    halfwidth : float
        Aperture half-width, pixels.
    window : int
        Dispersion columns averaged when smoothing (1: no smoothing).
    clip : float
        Samples beyond this many sigma from the fit are rejected (cosmic rays).
    bandwidth : float
        When the shifts spread over more than twice this (px), the line in the shift is
        fitted locally at nodes ``bandwidth`` apart with Gaussian weights of this width
        (cut at two widths), so
        the profile's curvature in the shift (a tilt event moving the trace by tenths of a
        pixel) does not bias the local derivative.

    Returns
    -------
    Profile
    """
    shifts = np.asarray(shifts, float)
    if np.ptp(shifts) <= 2 * bandwidth:
        nodes = np.array([np.mean(shifts)])
    else:
        grid = np.arange(shifts.min(), shifts.max() + bandwidth, bandwidth)
        nodes = grid[np.unique(np.argmin(np.abs(shifts[:, None] - grid[None, :]), axis=1))]
    near = np.abs(offset) <= halfwidth + 1.0
    # pixels bad in every integration (all-NaN slices) are expected; they get no weight
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(np.where(good, data, np.nan), axis=0)
        median = np.nan_to_num(median)
        spectrum = np.sum(np.where(near, median, 0.0), axis=0)
        # each integration's scale from samples near the median: one corrupted sample (a
        # cosmic ray, a +-1e30 readout fault) must not rescale its whole integration
        typical = good & (np.abs(data - median) <= clip * np.sqrt(np.abs(variance)))
        columns = np.sum(np.where(near, np.where(typical, data, median), 0.0), axis=1)
        bright = spectrum > 0.2 * np.nanmax(spectrum)
        scale = columns[:, bright].sum(axis=1) / spectrum[bright].sum()
        norm = spectrum[None, None, :] * scale[:, None, None]
        ratio = np.where(good, data / norm, 0.0)
        weight = np.where(good & (norm > 0) & (variance > 0), norm**2 / variance, 0.0)
    weight = np.nan_to_num(weight)
    ratio = np.nan_to_num(ratio)
    bases, slopes = [], []
    for node in nodes:
        u = (shifts - node) / bandwidth
        # compact Gaussian: a far cluster's lever arm would dominate the local slope
        kernel = 1.0 if nodes.size == 1 else np.where(np.abs(u) < 2, np.exp(-0.5 * u**2), 0.0)
        base, slope = _fit_line(ratio, weight * np.reshape(kernel, (-1, 1, 1)), shifts - node, clip)
        bases.append(base)
        slopes.append(slope)
    # columns count by their profile signal-to-noise in the smoothing
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        colvar = np.nansum(np.where(near, np.nanmedian(np.where(good, variance, np.nan), 0), 0), 0)
        column_weight = np.nan_to_num(np.clip(spectrum, 0, None) ** 2 / colvar)
    column_weight[~np.isfinite(offset[0])] = 0.0
    outside = ~(np.abs(offset) <= halfwidth + 1.0)
    base = np.array([_smooth_along_trace(b, offset, column_weight, window) for b in bases])
    slope = np.array([_smooth_along_trace(g, offset, column_weight, window) for g in slopes])
    base[:, outside] = 0.0
    slope[:, outside] = 0.0
    return Profile(
        base=np.clip(base, 0.0, None),
        slope=slope,
        offset=offset,
        nodes=nodes,
        halfwidth=float(halfwidth),
    )


def _fit_line(ratio, weight, t, clip):
    """Weighted line ``ratio = base + t * slope`` per pixel across integrations, clipped."""
    t = np.asarray(t, float)[:, None, None]
    base = slope = None
    for _ in range(2):
        w0, w1, w2 = weight.sum(0), (weight * t).sum(0), (weight * t * t).sum(0)
        r0, r1 = (weight * ratio).sum(0), (weight * ratio * t).sum(0)
        det = w0 * w2 - w1 * w1
        with np.errstate(all="ignore"):
            solvable = det > 1e-12 * np.maximum(w0, 1e-300) ** 2
            base = np.where(solvable, (w2 * r0 - w1 * r1) / det, r0 / w0)
            slope = np.where(solvable, (w0 * r1 - w1 * r0) / det, 0.0)
        base, slope = np.nan_to_num(base), np.nan_to_num(slope)
        resid2 = (ratio - base[None] - t * slope[None]) ** 2 * weight
        weight = np.where(resid2 > clip**2, 0.0, weight)
    return base, slope


#: Sub-pixel sampling (1/8 px) of the offset grid on which profiles are smoothed; the
#: cubic re-interpolation from it differs from smoothing at each column's exact phase by
#: < 3e-4 of the profile peak on a 1.2 px FWHM trace (tests/test_extract.py)
_OVERSAMPLE = 8


def _triangle_sum(values, half):
    """Running sum with weights ``1 - |j| / (half + 1)``, ``|j| <= half``, along the last axis.

    Samples beyond the ends count as zero.  A triangle is a box of ``half + 1`` samples
    convolved with itself, so two cumulative-sum box filters give it in O(n) whatever the
    window (a direct sum costs ``window`` passes over the band).
    """
    size = half + 1
    out = values
    for _ in range(2):
        pad = np.zeros(out.shape[:-1] + (size,))
        total = np.cumsum(np.concatenate([pad, out, pad], axis=-1), axis=-1)
        out = total[..., size:] - total[..., :-size]
    n = values.shape[-1]
    return out[..., size - 1 : size - 1 + n] / size


def _smooth_along_trace(values, offset, column_weight, window):
    """Weighted running mean along the dispersion at each column's own sub-pixel phase.

    Every column is resampled (cubic spline along the column) onto a common grid of offsets
    from the trace centre, the weighted triangular running mean is taken along the
    dispersion on that grid, and the result is interpolated back to each column's rows.
    """
    nrow, ndisp = values.shape
    if window <= 1:
        return values.copy()
    half = int(window) // 2
    start = np.nan_to_num(offset[0])  # offset of band row 0 per column
    coeffs = ndimage.spline_filter(np.nan_to_num(values), order=3, mode="nearest")
    low, high = start.min(), nrow - 1 + start.max()
    grid = low + np.arange(int(np.ceil((high - low) * _OVERSAMPLE)) + 1) / _OVERSAMPLE
    columns = np.arange(ndisp, dtype=float)
    rows_at = grid[:, None] - start[None, :]
    rectified = ndimage.map_coordinates(
        coeffs,
        [rows_at.ravel(), np.broadcast_to(columns, rows_at.shape).ravel()],
        order=3,
        mode="nearest",
        prefilter=False,
    ).reshape(rows_at.shape)
    weight = np.asarray(column_weight, float)
    wsum = _triangle_sum(weight[None, :], half)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, _triangle_sum(rectified * weight[None, :], half) / wsum, 0.0)
    where = (np.arange(nrow)[:, None] + start[None, :] - low) * _OVERSAMPLE
    smooth = ndimage.map_coordinates(
        mean,
        [where.ravel(), np.broadcast_to(columns, where.shape).ravel()],
        order=3,
        mode="nearest",
    ).reshape(nrow, ndisp)
    return np.where(wsum[None, :] > 0, smooth, values)


#: Smoothing windows tried by :func:`choose_profile_window`, columns (a factor ~2 apart)
WINDOW_CANDIDATES = (5, 15, 31, 61, 121, 241, 481, 961, 1921, 3841)


def choose_profile_window(data, variance, good, offset, shifts, halfwidth, clip=5.0):
    """Smoothing window of the profile that best predicts integrations it was not built from.

    For each candidate window the profile is built from the even integrations and the odd
    ones are extracted with it (profile-weighted flux per column); the summed weighted
    residual ``sum((D - f P)^2 / V)`` of the odd integrations measures the profile's noise
    (large for a faint source and a short window) plus its bias (a long window averaging
    over a profile that changes along the dispersion).  The window with the smallest
    held-out residual wins; candidates stop past twice the band's length (a nearly flat
    average over all columns).

    Parameters
    ----------
    data, variance, good, offset, shifts, halfwidth, clip
        As for :func:`build_profile`.

    Returns
    -------
    int
    """
    nints, _, ndisp = data.shape
    if nints < 4:
        return WINDOW_CANDIDATES[1]
    train, test = np.arange(0, nints, 2), np.arange(1, nints, 2)
    var = np.where(good & (variance > 0), variance, np.inf)
    best, best_cost = WINDOW_CANDIDATES[1], np.inf
    for window in WINDOW_CANDIDATES:
        if window > 2 * ndisp + 1:
            break  # already (nearly) a flat average over the whole band
        prof = build_profile(
            data[train],
            variance[train],
            good[train],
            offset,
            shifts[train],
            halfwidth,
            window,
            clip,
        ).evaluate(shifts[test])
        p = np.nan_to_num(prof)
        d = np.where(good[test], data[test], 0.0)
        w = np.where(p > 0, 1.0 / var[test], 0.0)
        with np.errstate(all="ignore"):
            flux = np.nan_to_num(np.sum(w * p * d, axis=1) / np.sum(w * p * p, axis=1))
        inside = (np.abs(offset[None] - shifts[test][:, None, None]) <= halfwidth) & good[test]
        resid = np.where(inside, (d - flux[:, None, :] * p) ** 2 / var[test], 0.0)
        # capped at the rejection level: a sample the extraction would reject (a cosmic ray,
        # a corrupted pixel) must not decide the window
        cost = float(np.sum(np.minimum(np.nan_to_num(resid, nan=0.0, posinf=clip**2), clip**2)))
        if cost < best_cost:
            best, best_cost = window, cost
    return int(best)
