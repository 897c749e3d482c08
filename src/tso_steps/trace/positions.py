"""Per-integration trace position and width: a linearised fit against the exposure's mean.

Every integration ``D_i`` is modelled, column by column over the pixels of every traced order,
as ``a_ix * M_x(y - dy_i - s_i * (y - g_x)) + b_ix``: the mean frame's own column profile
``M_x`` moved by one cross-dispersion shift ``dy_i`` and stretched by one fractional width
change ``s_i`` common to the whole exposure's trace, with a free amplitude ``a_ix`` and
background ``b_ix`` per column (so a transit, chromatic or not, and a background change do
not bias the position).  The width change is a stretch about ``g_x``, the CENTROID of the
column's profile, not about the reference trace centre ``c_x``: a focus change blurs the
profile symmetrically and keeps its centroid, and a stretch about any other point turns
every width change into a fake shift ``s_i * (g_x - c_x)``.  The per-column nuisance
parameters are eliminated analytically and ``(dy_i, s_i)`` found by Gauss-Newton with
weights ``1/variance``; samples beyond ``clip`` sigma are rejected (cosmic rays, bad pixels)
once an integration's fit has settled, so a trace far from the reference is not clipped away.

Three choices decide how close the shifts come to the Cramer-Rao bound:

* the pixels (:mod:`~tso_steps.trace.window`): each order's window holds 99 % of its shift
  information, whatever the reference window;
* how ``M`` moves (:mod:`~tso_steps.trace.movers`).  A profile sampled at one sub-pixel
  phase does not determine its own derivative, and a wrong derivative scales every shift
  (and its noise).  Orders with a pixel-integrated parametric model (undersampled cores)
  are fitted twice, with that model and with the band-limited interpolation of the mean
  frame; the interpolation replaces the parametric model only if its residuals vary
  significantly less from integration to integration (it explains better how the
  integrations differ; a paired test, :func:`_choose`).  On a band-limited core (a
  diffraction pattern sampled near Nyquist) that is usually the interpolation, on a cuspy or
  Gaussian-cored one, or when the trace barely moves, the parametric model;
* the width (:mod:`~tso_steps.trace.breathing`): measured jointly with the shift in every
  integration, then smoothed over the exposure, and each shift taken at the smoothed width.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from tso_steps.trace.breathing import condition_on_smooth_width
from tso_steps.trace.movers import FrameMover
from tso_steps.trace.shift_scale import shift_scale
from tso_steps.trace.window import information_window

__all__ = ["TracePositions", "integration_positions"]

log = logging.getLogger("stpipe.tso_steps.trace")

#: Standard errors by which a later shift model's residual scatter must be lower to be kept.
SIGNIFICANCE = 2.0
#: A fit has converged enough to reject outliers once its last step moved no pixel's model by
#: more than this many standard errors: a model still far from the data (a trace far from
#: the reference) makes every trace pixel an "outlier", and clipping them then locks the fit
#: at a wrong position.
SETTLED = 1.0
#: Gauss-Newton steps an integration may take before it is clipped even if not settled.
MAX_UNCLIPPED = 8
#: Working memory of one block of integrations in the per-integration fit, bytes.
BLOCK_BYTES = 32e6


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
    shift_model : str
        How the mean frame was moved: ``"band-limited"`` (Fourier interpolation) or
        ``"pixel model"`` (the pixel-integrated parametric model of the undersampled orders).
    shift_scale : float
        Factor the fitted shifts (and errors) were multiplied by to move as the centre of
        light does (:mod:`~tso_steps.trace.shift_scale`); 1 when not needed or not measurable.
    """

    shift: np.ndarray
    shift_error: np.ndarray
    width_scale: np.ndarray
    npixels: int
    shift_model: str = "band-limited"
    shift_scale: float = 1.0


def _pixels(centers, extents, n_cross):
    """Rows, columns, centres and order indices of the pixels in the orders' windows (once).

    ``extents`` is ``(norders, 2)``: each window's extent below and above the centre.
    """
    rows, cols, centre, order = [], [], [], []
    taken = set()
    for k, (center, (below, above)) in enumerate(zip(centers, extents, strict=True)):
        for x in np.flatnonzero(np.isfinite(center)):
            lo = max(int(np.ceil(center[x] - below)), 0)
            hi = min(int(np.floor(center[x] + above)), n_cross - 1)
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
    reference_variance=None,
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
        Mean frame (NaN-free; bad pixels filled).
    centers : ndarray, shape ``(norders, n_disp)``
        Reference trace centres (NaN where an order is absent).
    halfwidths : array-like, shape ``(norders,)``
        Half-width of each order's window, pixels.
    bad : ndarray of bool, optional
        Same shape as ``cube``: samples not to use.
    profiles : list, optional
        Per order, a :class:`~tso_steps.trace.pixel_profile.PixelProfiles` or None.  Orders
        with a pixel model are fitted both with it and with the band-limited interpolation
        of the mean frame, and the pixel model is kept unless the interpolation's residuals
        vary significantly less between integrations (see the module docstring).
    reference_variance : ndarray, shape ``(n_cross, n_disp)``, optional
        Variance of ``reference`` (for the Wiener filter); default: ``variance`` averaged over
        integrations divided by their number.
    iterations : int
        Gauss-Newton iterations, counted from the rejection of outliers: an integration is
        clipped once its fit has converged (:data:`SETTLED`), then iterated ``iterations - 1``
        more times.
    clip : float
        Rejection threshold for normalised residuals.
    block : int
        Integrations processed together (bounds memory).

    Returns
    -------
    TracePositions
    """
    nints, n_cross, _ = cube.shape
    centers = np.atleast_2d(centers)
    halfwidths = np.atleast_1d(halfwidths)
    if reference_variance is None:
        mean_var = variance if variance.ndim == 2 else np.nanmean(variance, axis=0)
        reference_variance = mean_var / nints
    extents = information_window(reference, reference_variance, centers, halfwidths)
    rows, cols, centre, order = _pixels(centers, extents, n_cross)
    if rows.size == 0:
        raise ValueError("No traced pixels to measure positions on.")
    profiles = list(profiles or []) + [None] * (centers.shape[0] - len(profiles or []))
    # The pixel model first: it is kept unless the interpolation explains the integrations
    # significantly better (see _choose).
    candidates = [[None] * centers.shape[0]]
    if any(p is not None for p in profiles):
        candidates.insert(0, profiles)
    results = []
    for candidate in candidates:
        mover = FrameMover(reference, reference_variance, rows, cols, centre, order, candidate)
        anchor = _anchors(reference, centers, halfwidths, candidate)[order, cols]
        results.append(
            _fit_all(
                cube,
                variance,
                bad,
                mover,
                rows,
                cols,
                order,
                anchor,
                centers.shape[0],
                iterations,
                clip,
                block,
            )
        )
    names = ["pixel model", "band-limited"] if len(results) == 2 else ["band-limited"]
    keep = _choose([r[-1] for r in results], names)
    best, chosen = results[keep], names[keep]
    shift, scale, fisher, chi2, _ = best
    shift, scale, error = condition_on_smooth_width(shift, scale, fisher, chi2)
    # the scale is in doubt only where a sampled core does not fix its own derivative (the
    # undersampled orders); a well-sampled order's band-limited derivative is the samples'
    loose = np.isin(order, [k for k, p in enumerate(profiles) if p is not None])
    check = shift_scale(
        cube, bad, reference, reference_variance, rows[loose], cols[loose], centre[loose],
        order[loose], shift, error, block,
    )  # fmt: skip
    if check.applied:
        log.warning("Shift scale: %s", check.reason)
        shift, error = shift * check.factor, error * check.factor
    else:
        log.info("Shift scale not changed: %s", check.reason)
    return TracePositions(shift, error, scale, int(rows.size), chosen, check.factor)


def _fit_all(
    cube, variance, bad, mover, rows, cols, order, anchor, norders, iterations, clip, block
):
    """Joint ``(dy, s)`` of every integration with one mover, block by block.

    Returns the shifts, widths, Fisher matrices, reduced chi-squares and the scatter of every
    pixel's normalised residuals about their mean over the integrations (residuals capped at
    ``clip``, so the samples either mover rejects count the same): the comparison between
    movers measures how well each explains the differences between integrations, not its
    fit to the mean frame.
    """
    nints, n_cross, n_disp = cube.shape
    # Group pixels by (order window) column so the nuisance parameters can be eliminated.
    groups = _Groups(np.unique(cols * norders + order, return_inverse=True)[1])
    # About twenty float64 arrays of the traced pixels live at once per integration (the
    # mover bounds its own); every integration's fit is independent of the block size.
    per_int = 8 * 20 * rows.size
    block = max(1, min(int(block), int(BLOCK_BYTES // per_int)))
    shift, scale, chi2 = np.zeros(nints), np.zeros(nints), np.ones(nints)
    fisher = np.full((nints, 2, 2), np.nan)
    totals = (np.zeros(rows.size), np.zeros(rows.size), np.zeros(rows.size))
    for start in range(0, nints, block):
        stop = min(start + block, nints)
        data = np.asarray(cube[start:stop][:, rows, cols], dtype=np.float64)
        var = np.asarray(
            # one index: a VarianceFrames then reads only the traced pixels, not whole frames
            variance[start:stop, rows, cols] if variance.ndim == 3 else variance[rows, cols],
            dtype=np.float64,
        )
        var = np.broadcast_to(var, data.shape)
        good = np.isfinite(data) & np.isfinite(var) & (var > 0)
        if bad is not None:
            good &= ~bad[start:stop][:, rows, cols]
        weight = np.where(good, 1.0 / np.where(good, var, 1.0), 0.0)
        data = np.where(good, data, 0.0)
        result = _solve_block(data, weight, mover, rows, anchor, groups, iterations, clip)
        span = slice(start, stop)
        shift[span], scale[span], fisher[span], chi2[span], sums = result
        for total, part in zip(totals, sums, strict=True):
            total += part
    # Scatter of the normalised residuals about their mean over the integrations: how well
    # the mover explains how the integrations differ, whatever its fit at dy = 0.
    first, second, count = totals
    spread = second - first**2 / np.maximum(count, 1)
    return shift, scale, fisher, chi2, spread


def _choose(spreads, names, significance=SIGNIFICANCE):
    """Index of the mover kept: the first unless a later one's residuals vary significantly less.

    ``spreads`` are per-pixel scatters of the normalised residuals over the integrations
    (:func:`_fit_all`).  Both movers are fitted to the same data, so the test is paired: the
    total difference against ``significance`` times its standard error from the per-pixel
    differences.  Without it a mover that mis-scales every shift wins by chance whenever
    the trace barely moves (a steady pointing: nothing in the residuals tells the movers
    apart, while a shift scale of 0.45 halved a 0.001 px step).
    """
    for name, spread in zip(names, spreads, strict=True):
        log.debug("Shift model %s: residual scatter %.1f", name, float(np.sum(spread)))
    keep = 0
    for k in range(1, len(spreads)):
        diff = spreads[k] - spreads[keep]
        error = np.sqrt(diff.size) * np.std(diff)
        if np.sum(diff) < -significance * error:
            keep = k
    return keep


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


def _solve_block(data, weight, mover, rows, anchor, groups, iterations, clip):
    """Gauss-Newton for ``(dy, s)`` of a block of integrations, per-column nuisances profiled.

    Every product of the traced pixels is formed once per iteration (the weighted model
    ``weight * model`` serves the normal equations, the right-hand sides and both
    projections); multiplications by the constant basis function are left out, which
    changes no number (a product with 1.0 is exact).
    """
    nblock = data.shape[0]
    weight0 = weight
    dy = np.zeros(nblock)
    s = np.zeros(nblock)
    offset = rows - anchor
    bins = groups.sum
    # Per integration: the iteration it is clipped at (-1: not yet) and whether its last
    # step settled the model (:data:`SETTLED`); it then takes ``iterations - 1`` more steps
    # and the last evaluation is its result.  Finished integrations are evaluated again
    # unchanged while the others go on.
    clipped_at = np.full(nblock, -1 if clip else 1)  # unclipped: as if clipped at 1
    settled = np.zeros(nblock, bool)
    iteration = 0
    while True:
        # The width change is applied to first order: M(y - dy) - s*(y - c)*M'(y - dy).
        moved, slope = mover(dy)
        model = moved - s[:, None] * offset[None, :] * slope
        # Linearised model: a*M + b - a*M'*(ddy + ds*offset); amplitude a from the first
        # term, fitted jointly with b per column group (basis: model and 1).
        wmodel = weight * model
        sums = (bins(wmodel * model), bins(wmodel), bins(weight))  # (M,M), (1,M), (1,1)
        det = sums[0] * sums[2] - sums[1] ** 2
        rhs = (bins(wmodel * data), bins(weight * data))
        with np.errstate(all="ignore"):
            amp = (rhs[0] * sums[2] - rhs[1] * sums[1]) / det
            bkg = (rhs[1] * sums[0] - rhs[0] * sums[1]) / det
        amp = groups.expand(np.where(np.isfinite(amp), amp, 0.0))
        bkg = np.where(np.isfinite(bkg), bkg, 0.0)
        residual = data - (amp * model + groups.expand(bkg))
        now = (clipped_at < 0) & (iteration >= 1) & (settled | (iteration > MAX_UNCLIPPED))
        if now.any():
            with np.errstate(all="ignore"):
                chi = residual[now] * np.sqrt(weight[now])
            weight = weight.copy() if weight is weight0 else weight
            weight[now] = np.where(np.abs(chi) > clip, 0.0, weight[now])
            wmodel = weight * model
            clipped_at[now] = iteration
        # Project the derivatives off the per-group (model, 1) space.
        d_shift = -amp * slope
        projected = [
            _project(d, model, wmodel, sums, det, weight, groups)
            for d in (d_shift, d_shift * offset[None, :])
        ]
        weighted = [weight * p for p in projected]
        gram = np.empty((nblock, 2, 2))
        vec = np.empty((nblock, 2))
        for i in range(2):
            vec[:, i] = np.sum(weighted[i] * residual, axis=1)
            for j in range(2):
                gram[:, i, j] = np.sum(weighted[i] * projected[j], axis=1)
        gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(2)
        # An integration without usable pixels (all NaN / DO_NOT_USE) has no information:
        # keep it out of the inversion and report NaN for it.
        gram_det = gram[:, 0, 0] * gram[:, 1, 1] - gram[:, 0, 1] * gram[:, 1, 0]
        singular = ~np.isfinite(gram_det) | (gram_det <= 0) | ~np.isfinite(vec).all(axis=1)
        gram[singular] = np.eye(2)
        vec[singular] = 0.0
        inverse = np.linalg.inv(gram)
        delta = np.einsum("bij,bj->bi", inverse, vec)
        active = (clipped_at < 0) | (iteration < clipped_at + iterations - 1)
        if not active.any():
            break
        step = np.where(active[:, None], delta, 0.0)
        step = np.c_[np.clip(step[:, 0], -0.5, 0.5), np.clip(step[:, 1], -0.2, 0.2)]
        dy += step[:, 0]
        s += step[:, 1]
        if (clipped_at < 0).any():
            # the largest change of any pixel's model by this step, in standard errors
            change = (d_shift * (step[:, :1] + step[:, 1:] * offset[None, :])) ** 2 * weight
            settled = np.sqrt(change.max(axis=1, initial=0.0)) <= SETTLED
        iteration += 1
    used = weight > 0
    dof = np.maximum(used.sum(axis=1) - 2 * groups.ngroups - 2, 1)
    chi2 = np.maximum(np.sum(weight * residual**2, axis=1) / dof, 1.0)
    # Normalised residuals (cosmic rays capped) for comparing movers: their per-pixel sums.
    with np.errstate(all="ignore"):
        z = residual * np.sqrt(weight0)
    z = np.clip(np.where(weight0 > 0, z, 0.0), -clip, clip) if clip else z
    dy[singular], s[singular], gram[singular] = np.nan, np.nan, np.nan
    return dy, s, gram, chi2, (z.sum(axis=0), (z**2).sum(axis=0), (weight0 > 0).sum(axis=0))


class _Groups:
    """The per-column groups of the traced pixels: sums over them and values spread back.

    ``sum`` adds ``(nblock, npix)`` values over the pixels of each group ->
    ``(nblock, ngroups)`` by a sparse 0/1 matrix product, which adds every group's pixels
    in pixel order, as one ``bincount`` per integration did, three times faster; ``expand``
    gives every pixel its group's value (``values[:, group]``) by repeating each run of
    consecutive pixels of one group, twice as fast as the gather.
    """

    def __init__(self, group):
        npix, ngroups = group.size, int(group.max()) + 1
        self.ngroups = ngroups
        self.matrix = csr_matrix((np.ones(npix), (group, np.arange(npix))), shape=(ngroups, npix))
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        self.run_group = group[starts]
        self.run_length = np.diff(np.r_[starts, npix])

    def sum(self, values):
        """Sum over each group's pixels, ``(nblock, npix)`` -> ``(nblock, ngroups)``."""
        return np.stack([self.matrix @ row for row in values])

    def expand(self, values):
        """Each pixel's group value, ``(nblock, ngroups)`` -> ``(nblock, npix)``."""
        return np.repeat(values[:, self.run_group], self.run_length, axis=1)


def _project(derivative, model, wmodel, sums, det, weight, groups):
    """Remove from ``derivative`` its weighted fit by the per-group basis (model, 1).

    ``wmodel`` is ``weight * model``; ``sums`` the basis' group sums and ``groups`` a
    :class:`_Groups` (:func:`_solve_block`).
    """
    r0 = groups.sum(wmodel * derivative)
    r1 = groups.sum(weight * derivative)
    with np.errstate(all="ignore"):
        c0 = (r0 * sums[2] - r1 * sums[1]) / det
        c1 = (r1 * sums[0] - r0 * sums[1]) / det
    c0 = np.where(np.isfinite(c0), c0, 0.0)
    c1 = np.where(np.isfinite(c1), c1, 0.0)
    return derivative - groups.expand(c0) * model - groups.expand(c1)
