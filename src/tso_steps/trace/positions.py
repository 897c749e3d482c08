"""Per-integration trace position and width: a linearised fit against the exposure's median.

Every integration ``D_i`` is modelled, column by column over the pixels of every traced order,
as ``a_ix * M_x(y - dy_i - s_i * (y - g_x)) + b_ix``: the median frame's own column profile
``M_x`` (a cubic spline through the median frame, so SOSS wings and NIRCam's undersampled
cores are represented as they are, not by a Gaussian), moved by one cross-dispersion shift
``dy_i`` and stretched by one fractional width change ``s_i`` common to the whole exposure's
trace, with a free amplitude ``a_ix`` and background ``b_ix`` per column (so a transit,
chromatic or not, and a background change do not bias the position).  The width change is
a stretch about ``g_x``, the CENTROID of the column's profile (of the continuous pixel model
for undersampled orders, of the median frame's column otherwise), not about the reference
trace centre ``c_x``: a focus change blurs the profile symmetrically and keeps its centroid,
and a stretch about any other point turns every width change into a fake shift
``s_i * (g_x - c_x)`` - for a skewed profile (coma, one-sided wings) ``g_x - c_x`` is a
sizeable fraction of a pixel, so a 2 % breathing moved the measured trace by several
Cramer-Rao bounds.  The per-column
nuisance parameters are eliminated analytically and ``(dy_i, s_i)`` found by Gauss-Newton
with weights ``1/variance``; samples beyond ``clip`` sigma are rejected (cosmic rays, bad
pixels).  With noiseless profile derivatives this is the maximum-likelihood estimator whose
variance reaches the Cramer-Rao bound ``sum (dI/dy)^2 / var``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["TracePositions", "integration_positions"]


@dataclass
class TracePositions:
    """Per-integration results of :func:`integration_positions`.

    Attributes
    ----------
    shift : ndarray, shape ``(nints,)``
        Cross-dispersion shift of the trace relative to the median frame, pixels.
    shift_error : ndarray, shape ``(nints,)``
        1-sigma error of ``shift`` (formal, scaled by the reduced chi-square when > 1).
    width_scale : ndarray, shape ``(nints,)``
        Fractional width change relative to the median frame (0 = same width).
    npixels : int
        Pixels used per integration.
    """

    shift: np.ndarray
    shift_error: np.ndarray
    width_scale: np.ndarray
    npixels: int


def _pixels(centers, halfwidths, n_cross):
    """Rows, columns, centres and order indices of the pixels in the orders' windows (once)."""
    rows, cols, centre, order = [], [], [], []
    taken = set()
    for k, (center, half) in enumerate(zip(centers, halfwidths, strict=True)):
        for x in np.flatnonzero(np.isfinite(center)):
            lo = max(int(np.ceil(center[x] - half)), 0)
            hi = min(int(np.floor(center[x] + half)), n_cross - 1)
            for y in range(lo, hi + 1):
                if (y, x) not in taken:
                    taken.add((y, x))
                    rows.append(y)
                    cols.append(x)
                    centre.append(center[x])
                    order.append(k)
    return np.array(rows, int), np.array(cols, int), np.array(centre, float), np.array(order, int)


def integration_positions(
    cube,
    variance,
    reference,
    centers,
    halfwidths,
    bad=None,
    profiles=None,
    iterations=3,
    clip=5.0,
    block=64,
):
    """Measure each integration's cross-dispersion shift and width change.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, n_cross, n_disp)``
        Integrations, dispersion along the last axis (data units).
    variance : ndarray, shape ``(nints, n_cross, n_disp)`` or ``(n_cross, n_disp)``
        Per-pixel variance (data units squared).
    reference : ndarray, shape ``(n_cross, n_disp)``
        Median frame (NaN-free; bad pixels filled).
    centers : ndarray, shape ``(norders, n_disp)``
        Reference trace centres (NaN where an order is absent).
    halfwidths : array-like, shape ``(norders,)``
        Half-width of each order's window, pixels.
    bad : ndarray of bool, optional
        Same shape as ``cube``: samples not to use.
    profiles : list, optional
        Per order, a :class:`~tso_steps.trace.pixel_profile.PixelProfiles` (undersampled
        orders: the median frame is moved by the model's exact pixel-integrated increment)
        or None (the median frame is moved by a Fourier phase ramp).
    iterations : int
        Gauss-Newton iterations.
    clip : float
        Rejection threshold for normalised residuals (after the first iteration).
    block : int
        Integrations processed together (bounds memory).

    Returns
    -------
    TracePositions
    """
    nints, n_cross, _ = cube.shape
    centers = np.atleast_2d(centers)
    rows, cols, centre, order = _pixels(centers, np.atleast_1d(halfwidths), n_cross)
    if rows.size == 0:
        raise ValueError("No traced pixels to measure positions on.")
    # Group pixels by (order window) column so the nuisance parameters can be eliminated.
    key = cols * centers.shape[0] + order
    groups, group_index = np.unique(key, return_inverse=True)
    ngroups = groups.size
    mover = _Mover(reference, rows, cols, centre, order, profiles)
    anchor = _anchors(reference, centers, np.atleast_1d(halfwidths), profiles)[order, cols]
    # About eight float64 copies of a padded frame per integration live at once.
    per_int = 8 * 2 * n_cross * cube.shape[2] * 8
    block = max(1, min(int(block), int(2e8 // per_int)))
    shift = np.zeros(nints)
    scale = np.zeros(nints)
    error = np.full(nints, np.nan)
    for start in range(0, nints, block):
        stop = min(start + block, nints)
        data = np.asarray(cube[start:stop][:, rows, cols], dtype=np.float64)
        var = np.asarray(
            variance[start:stop][:, rows, cols] if variance.ndim == 3 else variance[rows, cols],
            dtype=np.float64,
        )
        var = np.broadcast_to(var, data.shape)
        good = np.isfinite(data) & np.isfinite(var) & (var > 0)
        if bad is not None:
            good &= ~bad[start:stop][:, rows, cols]
        weight = np.where(good, 1.0 / np.where(good, var, 1.0), 0.0)
        data = np.where(good, data, 0.0)
        result = _solve_block(
            data,
            weight,
            mover,
            rows,
            cols,
            anchor,
            group_index,
            ngroups,
            iterations,
            clip,
        )
        shift[start:stop], scale[start:stop], error[start:stop] = result
    return TracePositions(shift, error, scale, int(rows.size))


def _anchors(reference, centers, halfwidths, profiles, smooth=33):
    """Centroid of every order's profile per column: the point its width changes about.

    Undersampled orders (a pixel model in ``profiles``): the continuous model's centroid.
    Others: the flux-weighted centroid of the median frame's column within three
    half-widths of the centre (background: the median of the next 4 pixels on each side),
    its offset from the centre smoothed along the dispersion (running median then mean over
    ``smooth`` columns) so the frame's noise does not enter.

    Returns
    -------
    ndarray, shape ``(norders, n_disp)``
    """
    from scipy.ndimage import median_filter, uniform_filter1d

    n_cross, n_disp = reference.shape
    out = np.array(centers, dtype=np.float64, copy=True)
    rows = np.arange(n_cross, dtype=np.float64)[:, None]
    profiles = list(profiles or []) + [None] * len(centers)
    for k, (center, half) in enumerate(zip(centers, halfwidths, strict=True)):
        lit = np.flatnonzero(np.isfinite(center))
        if lit.size == 0:
            continue
        if profiles[k] is not None:
            out[k, lit] = center[lit] + profiles[k].centroid(lit)
            continue
        dist = np.abs(rows - center[lit][None, :])
        inside = dist <= 3 * half
        ring = (dist > 3 * half) & (dist <= 3 * half + 4)
        values = reference[:, lit]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bkg = np.nanmedian(np.where(ring, values, np.nan), axis=0)
            bkg = np.where(np.isfinite(bkg), bkg, 0.0)
            net = np.where(inside, values - bkg, 0.0)
            delta = np.sum(net * (rows - center[lit][None, :]), axis=0) / np.sum(net, axis=0)
        delta = np.where(np.isfinite(delta), delta, np.nanmedian(delta))
        if lit.size >= 3:
            size = min(smooth, lit.size - (1 - lit.size % 2))
            delta = uniform_filter1d(median_filter(delta, size=size, mode="nearest"), size)
        out[k, lit] = center[lit] + delta
    return out


def _padded_spectrum(reference):
    """Wiener-filtered FFT along the cross-dispersion of the mirror-padded median frame.

    A band-limited (Fourier) shift and derivative represent a well-sampled profile (SOSS)
    faithfully; the Wiener filter (signal power averaged over columns against the white
    noise floor at the highest frequencies) keeps the median frame's noise out of the
    derivative, where it would add scatter to every shift.  Mirror padding makes each column
    periodic without a jump.
    """
    padded = np.concatenate([reference, reference[::-1]], axis=0).astype(np.float64)
    freq = np.fft.rfftfreq(padded.shape[0])
    spectrum = np.fft.rfft(padded, axis=0)
    power = np.mean(np.abs(spectrum) ** 2, axis=1)
    noise = np.median(power[freq > 0.35]) if np.any(freq > 0.35) else 0.0
    with np.errstate(all="ignore"):
        wiener = np.clip(1.0 - noise / power, 0.0, 1.0)
    wiener[0] = 1.0
    filtered = spectrum * np.where(np.isfinite(wiener), wiener, 1.0)[:, None]
    # stored (n_disp, nfreq): the transforms then run along the contiguous axis
    return np.ascontiguousarray(filtered.T), freq


def _shifted(spectrum, freq, dy, n_cross):
    """Median frame moved by ``dy`` (per integration) and its derivative along y.

    ``spectrum`` is ``(n_disp, nfreq)`` (:func:`_padded_spectrum`); the results are
    ``(ndy, n_cross, n_disp)`` views.  Transforming along the contiguous last axis gives
    the same numbers as along the rows of a ``(nfreq, n_disp)`` spectrum, twice as fast.
    """
    phase = np.exp(-2j * np.pi * freq[None, None, :] * dy[:, None, None])
    moved = spectrum[None] * phase
    model = np.fft.irfft(moved, n=2 * n_cross, axis=-1)[..., :n_cross]
    slope = np.fft.irfft(moved * (2j * np.pi * freq[None, None, :]), n=2 * n_cross, axis=-1)
    return model.transpose(0, 2, 1), slope[..., :n_cross].transpose(0, 2, 1)


class _Mover:
    """The median frame at the traced pixels, moved by ``dy``, and its derivative along y."""

    def __init__(self, reference, rows, cols, centre, order, profiles):
        self.spectrum, self.freq = _padded_spectrum(reference)
        self.n_cross = reference.shape[0]
        self.rows, self.cols = rows, cols
        self.u = rows - centre
        self.values = reference[rows, cols].astype(np.float64)
        self.parts = []
        for k, profile in enumerate(profiles or []):
            if profile is not None:
                sel = np.flatnonzero(order == k)
                self.parts.append((sel, profile, profile.value(self.u[sel], cols[sel])))

    def __call__(self, dy):
        full, full_slope = _shifted(self.spectrum, self.freq, dy, self.n_cross)
        model = full[:, self.rows, self.cols]
        slope = full_slope[:, self.rows, self.cols]
        for sel, profile, base in self.parts:
            u = self.u[sel][None, :] - dy[:, None]
            c = np.broadcast_to(self.cols[sel], u.shape)
            # The median frame plus the model's exact pixel-integrated change.
            model[:, sel] = self.values[sel] + profile.value(u, c) - base
            slope[:, sel] = profile.slope(u, c)
        return model, slope


def _solve_block(data, weight, mover, rows, cols, anchor, group, ngroups, iterations, clip):
    """Gauss-Newton for ``(dy, s)`` of a block of integrations, per-column nuisances profiled."""
    nblock = data.shape[0]
    dy = np.zeros(nblock)
    s = np.zeros(nblock)
    offset = rows - anchor
    for iteration in range(iterations + 1):
        # The width change is applied to first order: M(y - dy) - s*(y - c)*M'(y - dy).
        moved, slope = mover(dy)
        model = moved - s[:, None] * offset[None, :] * slope
        # Linearised model: a*M + b - a*M'*(ddy + ds*offset); amplitude a from the first
        # term, fitted jointly with b per column group.
        basis = [model, np.ones_like(model)]
        sums = {}
        for i, u in enumerate(basis):
            for j, v in enumerate(basis[: i + 1]):
                sums[i, j] = _group_sum(weight * u * v, group, ngroups)
        rhs = [_group_sum(weight * u * data, group, ngroups) for u in basis]
        det = sums[0, 0] * sums[1, 1] - sums[1, 0] ** 2
        with np.errstate(all="ignore"):
            amp = (rhs[0] * sums[1, 1] - rhs[1] * sums[1, 0]) / det
            bkg = (rhs[1] * sums[0, 0] - rhs[0] * sums[1, 0]) / det
        amp = np.where(np.isfinite(amp), amp, 0.0)
        bkg = np.where(np.isfinite(bkg), bkg, 0.0)
        fitted = amp[:, group] * model + bkg[:, group]
        residual = data - fitted
        if iteration == 1 and clip:
            with np.errstate(all="ignore"):
                chi = residual * np.sqrt(weight)
            weight = np.where(np.abs(chi) > clip, 0.0, weight)
        derivs = [-amp[:, group] * slope, -amp[:, group] * slope * offset[None, :]]
        # Project the derivatives and residual off the per-group (model, 1) space.
        projected = [_project(d, basis, sums, det, weight, group, ngroups) for d in derivs]
        r_proj = residual
        gram = np.empty((nblock, 2, 2))
        vec = np.empty((nblock, 2))
        for i in range(2):
            vec[:, i] = np.sum(weight * projected[i] * r_proj, axis=1)
            for j in range(2):
                gram[:, i, j] = np.sum(weight * projected[i] * projected[j], axis=1)
        gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(2)
        # An integration without usable pixels (all NaN / DO_NOT_USE) has no information:
        # keep it out of the inversion and report NaN for it.
        gram_det = gram[:, 0, 0] * gram[:, 1, 1] - gram[:, 0, 1] * gram[:, 1, 0]
        singular = ~np.isfinite(gram_det) | (gram_det <= 0) | ~np.isfinite(vec).all(axis=1)
        gram[singular] = np.eye(2)
        vec[singular] = 0.0
        inverse = np.linalg.inv(gram)
        delta = np.einsum("bij,bj->bi", inverse, vec)
        if iteration < iterations:
            dy += np.clip(delta[:, 0], -0.5, 0.5)
            s += np.clip(delta[:, 1], -0.2, 0.2)
    used = weight > 0
    dof = np.maximum(used.sum(axis=1) - 2 * ngroups - 2, 1)
    chi2 = np.maximum(np.sum(weight * residual**2, axis=1) / dof, 1.0)
    error = np.sqrt(inverse[:, 0, 0] * chi2)
    dy[singular], s[singular], error[singular] = np.nan, np.nan, np.nan
    return dy, s, error


def _group_sum(values, group, ngroups):
    """Sum of ``values`` (nblock, npix) over pixels of each group -> (nblock, ngroups)."""
    out = np.zeros((values.shape[0], ngroups))
    for b in range(values.shape[0]):
        out[b] = np.bincount(group, weights=values[b], minlength=ngroups)
    return out


def _project(derivative, basis, sums, det, weight, group, ngroups):
    """Remove from ``derivative`` its weighted fit by the per-group basis (model, 1)."""
    r0 = _group_sum(weight * basis[0] * derivative, group, ngroups)
    r1 = _group_sum(weight * derivative, group, ngroups)
    with np.errstate(all="ignore"):
        c0 = (r0 * sums[1, 1] - r1 * sums[1, 0]) / det
        c1 = (r1 * sums[0, 0] - r0 * sums[1, 0]) / det
    c0 = np.where(np.isfinite(c0), c0, 0.0)
    c1 = np.where(np.isfinite(c1), c1, 0.0)
    return derivative - c0[:, group] * basis[0] - c1[:, group] * basis[1]
