"""The scale of the measured shifts, checked against the centre of light.

The per-integration fit (:mod:`~tso_steps.trace.positions`) measures shifts with a model of
how the mean frame moves.  For an undersampled core that model is not determined by the
data (:mod:`~tso_steps.trace.movers`), and a wrong derivative scales every shift: on a real
NIRSpec PRISM core moved by known amounts the fitted shifts came out 0.77 (band-limited)
and 0.66 (pixel model) of the truth, while their scatter about that line stayed small.

The centre of light does not need a profile model: the first moment of a column's pixel
values moves with the light, at any sub-pixel phase.  For a window of pixels ``lo..hi`` the
derivative of ``sum (y - c) P_y`` with respect to a shift is the light's density summed over
the window's inner pixel edges (a unit-step Riemann sum of the profile: the window's light, up
to aliasing at one cycle per pixel, negligible for cores wider than a pixel) plus terms in
the density at the window's two outer edges, where the profile is faint and well sampled;
the window's flux changes by the difference of those two densities (:func:`_response`).  The
edge terms are the approximate part (a pixel-mean density, a background from the next
pixels out), so the window is the fitting window widened by half its width on each side,
where less light is left: on the fitting window itself they put the response 4-10 % off on
diffraction-like and Moffat cores, and a breathing MIRI core was wrongly rescaled by 1.037.  So
the centre of light's response to a shift comes from the mean frame itself, with no
interpolation (a band-limited or spline interpolant of an undersampled core rings, and its
ringing crosses the window).  The centre of light is much noisier than the fit, but when the
trace moves by many times the fit's error over the exposure, the regression of the centre
of light on the fitted shifts measures their scale precisely.

The shifts are rescaled only when the trace moved enough for the slope to be measured without
bias from the fit's own noise (:data:`MIN_SPREAD`) and the slope differs from one by more than
:data:`SIGNIFICANCE` standard errors and by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["ShiftScale", "shift_scale"]

#: Variance of the fitted shifts over the exposure, in units of their mean squared error, below
#: which the scale is not measured: the fit's noise would bias the slope (errors in the
#: regressor, and its correlation with the centre of light's noise) by more than ~1 %.
MIN_SPREAD = 300.0
#: Standard errors by which the slope must differ from one to rescale the shifts: 5, not 3,
#: because a wrong rescale costs more than a missed one, and on one simulated noise draw
#: (seed 4, MIRI LRS, 0.15 px motion) the centre of light itself came out 1.08 +- 0.03 of the
#: injected shifts in all six cells (1.00 +- 0.02 on seed 3).
SIGNIFICANCE = 5.0
#: ... and the least relative difference: the expected response's own systematic error (2.7 %
#: measured on a sinc^2 core, whose 1/y^2 wings leave the most light at the window's edges;
#: within 2-4 % of the truth on the diffraction, undersampled and Moffat families).
TOLERANCE = 0.05
#: Each side of a column's fitting window is widened by this fraction of the window for the
#: centre of light.
WIDEN = 0.5
#: Pixels beyond the window's edges whose median is a column's background (light that does
#: not move).
RING = 4
#: Columns whose centre of light is this many standard errors from the integration's median
#: are left out (cosmic rays not yet rejected).
CLIP = 5.0


@dataclass
class ShiftScale:
    """The outcome of :func:`shift_scale`.

    Attributes
    ----------
    factor : float
        Factor the shifts were multiplied by (1 when not applied).
    slope : float
        Measured slope of the centre of light on the fitted shifts over its expected
        response (NaN when not measured).
    slope_error : float
        Its standard error.
    applied : bool
    reason : str
        Why the scale was or was not applied, for the log.
    centre_of_light : ndarray or None
        Per integration, the weighted centre of light over its expected response to a shift
        (px, any constant offset; None when not measured).
    """

    factor: float = 1.0
    slope: float = np.nan
    slope_error: float = np.nan
    applied: bool = False
    reason: str = ""
    centre_of_light: np.ndarray | None = None


def _column_starts(cols, order):
    """Index of the first pixel of every column group (pixels of a column and order adjacent)."""
    return np.flatnonzero(np.r_[True, (cols[1:] != cols[:-1]) | (order[1:] != order[:-1])])


def _column_moments(values, offset, starts):
    """First moment and flux of every column group, ``(..., npix)`` -> ``(..., ngroups)``."""
    num = np.add.reduceat(values * offset, starts, axis=-1)
    den = np.add.reduceat(values, starts, axis=-1)
    with np.errstate(all="ignore"):
        return num / den, den


def _response(reference, rows, cols, centre, starts):
    """Each column group's centre-of-light response to a shift of its light, per px.

    The background (the median of the :data:`RING` pixels beyond each edge of the window)
    does not move; the light ``S = reference - background`` does.  With ``f_lo``, ``f_hi``
    the light's density at the window's outer edges (the mean of the two pixels either side
    of each edge) and ``F``, ``N`` the window's flux and first moment about ``c``:
    ``dN = sum S - (S_lo + S_hi) / 2 + (lo - c) f_lo - (hi - c) f_hi``, ``dF = f_lo - f_hi``
    and the centre of light ``N / F`` moves by ``(dN - (N / F) dF) / F``.
    """
    n_cross = reference.shape[0]
    stops = np.r_[starts[1:], rows.size]
    out = np.full(starts.size, np.nan)
    for g, (a, b) in enumerate(zip(starts, stops, strict=True)):
        x, c = cols[a], centre[a]
        lo, hi = int(rows[a:b].min()), int(rows[a:b].max())
        column = reference[:, x].astype(np.float64)
        ring = np.r_[column[max(lo - RING, 0) : lo], column[hi + 1 : hi + 1 + RING]]
        background = np.median(ring) if ring.size else 0.0
        light = column - background
        inside = light[lo : hi + 1]
        below = light[lo - 1] if lo > 0 else 0.0
        above = light[hi + 1] if hi + 1 < n_cross else 0.0
        f_lo, f_hi = max(0.5 * (below + light[lo]), 0.0), max(0.5 * (above + light[hi]), 0.0)
        y = np.arange(lo, hi + 1) - c
        flux, moment = column[lo : hi + 1].sum(), np.sum(y * column[lo : hi + 1])
        d_moment = inside.sum() - 0.5 * (light[lo] + light[hi]) + (lo - c) * f_lo - (hi - c) * f_hi
        if flux > 0:
            out[g] = (d_moment - moment / flux * (f_lo - f_hi)) / flux
    return out


def _widened(rows, cols, centre, order, n_cross):
    """The fitted pixels with each column's window widened by :data:`WIDEN` on both sides.

    The centre of light's response is exact but for the light at the window's edges; a wider
    window leaves less of it (rows of another order's window are not taken).
    """
    starts = _column_starts(cols, order)
    stops = np.r_[starts[1:], rows.size]
    taken = set(zip(rows.tolist(), cols.tolist(), strict=True))
    out = ([], [], [], [])
    for a, b in zip(starts, stops, strict=True):
        lo, hi = int(rows[a:b].min()), int(rows[a:b].max())
        extra = int(np.ceil(WIDEN * (hi - lo + 1)))
        below = range(lo - 1, max(lo - 1 - extra, -1), -1)
        above = range(hi + 1, min(hi + 1 + extra, n_cross))
        new = []
        for side in (below, above):
            for y in side:
                if (y, int(cols[a])) in taken:
                    break  # another order's window
                new.append(y)
        ys = np.sort(np.r_[rows[a:b], new]).astype(int)
        out[0].append(ys)
        out[1].append(np.full(ys.size, cols[a]))
        out[2].append(np.full(ys.size, centre[a]))
        out[3].append(np.full(ys.size, order[a]))
    return tuple(np.concatenate(part) for part in out)


def shift_scale(
    cube, bad, reference, reference_variance, rows, cols, centre, order, shift, error, block=64
):
    """Check the scale of fitted shifts against the centre of light, and the correcting factor.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, n_cross, n_disp)``
    bad : ndarray of bool or None
        Samples not to use, same shape as ``cube``.
    reference, reference_variance : ndarray, shape ``(n_cross, n_disp)``
        Mean frame and its variance (times the number of integrations it is one
        integration's variance, which weights the columns).
    rows, cols, centre, order : ndarray, shape ``(npix,)``
        The traced pixels (each column of each order contiguous), their order's reference
        centre and order index.
    shift, error : ndarray, shape ``(nints,)``
        Fitted shifts and their 1-sigma errors, px.
    block : int
        Integrations read at once.

    Returns
    -------
    ShiftScale
    """
    if rows.size == 0:
        return ShiftScale(reason="no undersampled order (a sampled profile fixes its derivative)")
    ok = np.isfinite(shift) & np.isfinite(error) & (error > 0)
    if ok.sum() < 8:
        return ShiftScale(reason="fewer than 8 measured integrations")
    t = shift[ok] - shift[ok].mean()
    spread, noise = float(np.mean(t**2)), float(np.mean(error[ok] ** 2))
    if spread < MIN_SPREAD * noise:
        return ShiftScale(
            reason=f"the trace moved too little to measure it (rms {np.sqrt(spread):.2g} px, "
            f"{np.sqrt(spread / noise):.1f} times the shift error)"
        )
    nints = cube.shape[0]
    rows, cols, centre, order = _widened(rows, cols, centre, order, cube.shape[1])
    starts = _column_starts(cols, order)
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, rows.size]))
    offset = rows - centre
    values = reference[rows, cols].astype(np.float64)
    c_ref, f_ref = _column_moments(values, offset, starts)
    response = _response(reference, rows, cols, centre, starts)
    # each column's centre-of-light variance in one integration, from the mean frame's
    one_var = np.asarray(reference_variance, dtype=np.float64)[rows, cols] * nints
    with np.errstate(all="ignore"):
        var_c = np.add.reduceat((offset - c_ref[group]) ** 2 * one_var, starts) / f_ref**2
        weight = np.where(np.isfinite(var_c) & (var_c > 0) & (f_ref > 0), 1.0 / var_c, 0.0)
    weight = np.where(np.isfinite(response), weight, 0.0)
    response = np.where(np.isfinite(response), response, 0.0)
    expected = float(np.sum(weight * response) / np.sum(weight))
    sigma = np.sqrt(np.where(weight > 0, 1.0 / np.where(weight > 0, weight, 1.0), np.inf))
    com = np.full(nints, np.nan)
    for start in range(0, nints, block):
        stop = min(start + block, nints)
        data = np.asarray(cube[start:stop][:, rows, cols], dtype=np.float64)
        usable = np.isfinite(data)
        if bad is not None:
            usable &= ~bad[start:stop][:, rows, cols]
        # a column with a lost pixel has no centre of light in that integration
        whole = np.add.reduceat(usable, starts, axis=1) == np.diff(np.r_[starts, rows.size])
        c, _ = _column_moments(np.where(usable, data, 0.0), offset, starts)
        delta = c - c_ref
        w = np.where(whole & np.isfinite(delta), weight, 0.0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a lost integration: all NaN
            median = np.nanmedian(np.where(w > 0, delta, np.nan), axis=1)
        w = np.where(np.abs(delta - median[:, None]) > CLIP * sigma, 0.0, w)
        with np.errstate(all="ignore"):
            com[start:stop] = np.sum(w * np.where(w > 0, delta, 0.0), axis=1) / np.sum(w, axis=1)
    use = ok & np.isfinite(com)
    if use.sum() < 8 or not np.isfinite(expected) or expected <= 0:
        return ShiftScale(reason="no centre of light could be measured")
    t = shift[use] - shift[use].mean()
    c = com[use] - com[use].mean()
    # the fitted shifts' own noise attenuates the regression: take it out of their variance
    denominator = np.sum(t**2) - np.sum(error[use] ** 2)
    slope = np.sum(t * c) / denominator
    residual = c - slope * t
    slope_error = np.sqrt(np.sum(residual**2) / (t.size - 2) / denominator)
    ratio, ratio_error = slope / expected, slope_error / expected
    light = com / expected
    if abs(ratio - 1.0) <= max(SIGNIFICANCE * ratio_error, TOLERANCE):
        reason = f"scale consistent: {ratio:.3f} +- {ratio_error:.3f}"
        return ShiftScale(1.0, ratio, ratio_error, False, reason, light)
    reason = (
        f"the fitted shifts move {1 / ratio:.3f} times as much as the centre of light "
        f"({abs(ratio - 1) / ratio_error:.0f} sigma from 1): multiplied by {ratio:.3f}"
    )
    return ShiftScale(ratio, ratio, ratio_error, True, reason, light)
