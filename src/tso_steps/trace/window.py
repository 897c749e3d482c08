"""Which pixels of an order the per-integration fit uses: where the shift information is.

The reference trace's window (1.5 FWHM + 1 px, bounded by the template's main lobe) is made
for locating the order; for measuring its shift it can be too narrow.  When the reference
centre is not the middle of the light (a two-horned or one-sided profile, whose
half-maximum centre can sit pixels from its centroid) a symmetric window about it cuts off
one side of the profile, and with it the steep edge that carries much of the shift
information (a coma-like SOSS profile: 1.15x the Cramer-Rao bound with the reference window,
0.96x with one holding its whole profile).  Here each side of the window grows until it
holds ``share`` of the order's Fisher information ``sum (dM/dy)^2 / var`` of the mean frame's
median column profile, never narrower than the reference window and never past the middle
between the order and its neighbours.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["information_window"]

#: Share of an order's shift information the fitting window holds.
SHARE = 0.99


def _median_profile(image, center, offsets):
    """Median over columns of ``image`` at ``center + offsets`` (linear interpolation)."""
    lit = np.flatnonzero(np.isfinite(center))
    rows = np.arange(image.shape[0], dtype=np.float64)
    samples = np.full((lit.size, offsets.size), np.nan)
    for i, x in enumerate(lit):
        samples[i] = np.interp(center[x] + offsets, rows, image[:, x], left=np.nan, right=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(samples, axis=0)


def information_window(reference, variance, centers, halfwidths, share=SHARE):
    """Per order, the extent below and above the centre holding ``share`` of the information.

    Parameters
    ----------
    reference, variance : ndarray, shape ``(n_cross, n_disp)``
        Mean frame and its per-pixel variance (any scale: only ratios enter).
    centers : ndarray, shape ``(norders, n_disp)``
        Reference centres (NaN: not traced).
    halfwidths : ndarray, shape ``(norders,)``
        The reference windows' half-widths (the minimum extent), pixels.
    share : float
        Share of the information to hold.

    Returns
    -------
    ndarray, shape ``(norders, 2)``
        Extent below and above the centre, pixels (>= ``halfwidths``).
    """
    n_cross = reference.shape[0]
    halfwidths = np.asarray(halfwidths, dtype=np.float64)
    out = np.repeat(halfwidths[:, None], 2, axis=1)
    mid = np.array([np.nanmedian(c) if np.isfinite(c).any() else np.nan for c in centers])
    offsets = np.arange(-float(n_cross), n_cross + 1.0)
    for k, center in enumerate(centers):
        if not np.isfinite(mid[k]):
            continue
        # Not past the middle between this order and its neighbours (or the array).
        others = np.delete(mid, k)
        others = others[np.isfinite(others)]
        below = min([mid[k] - (mid[k] + o) / 2 for o in others if o < mid[k]] + [mid[k] + 0.5])
        above = min(
            [(mid[k] + o) / 2 - mid[k] for o in others if o > mid[k]] + [n_cross - 0.5 - mid[k]]
        )
        use = (offsets >= -below) & (offsets <= above)
        profile = _median_profile(reference, center, offsets[use])
        noise = _median_profile(variance, center, offsets[use])
        info = np.gradient(profile) ** 2 / noise
        info = np.where(np.isfinite(info), info, 0.0)
        if not info.sum() > 0:
            continue
        u = offsets[use]
        inside = np.abs(u) <= halfwidths[k]
        held = info[inside].sum()
        lo, hi = -halfwidths[k], halfwidths[k]
        # Grow outward, one pixel at a time on the side that adds more, to the share.
        left, right = np.flatnonzero(u < lo)[::-1], np.flatnonzero(u > hi)
        i = j = 0
        while held < share * info.sum() and (i < left.size or j < right.size):
            gain_left = info[left[i]] if i < left.size else -1.0
            gain_right = info[right[j]] if j < right.size else -1.0
            if gain_left >= gain_right:
                held += gain_left
                lo = u[left[i]]
                i += 1
            else:
                held += gain_right
                hi = u[right[j]]
                j += 1
        out[k] = (-lo, hi)
    return out
