"""Coarse location of the spectral orders on a median frame (dispersion along the last axis)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tso_steps.stats import MAD_TO_SIGMA

__all__ = ["find_orders"]


def _fwhm(values, step):
    """FWHM of a sampled profile: outermost half-maximum crossings of the peak's lobe.

    The lobe is the run of samples above 20 % of the peak that contains it, so the dip of a
    two-horned profile does not split it and a second order further away is not included.
    """
    peak = int(np.argmax(values))
    half = values[peak] / 2.0
    low = values >= 0.2 * values[peak]
    labels, _ = ndimage.label(low)
    lobe = np.flatnonzero((labels == labels[peak]) & (values >= half))
    lo, hi = lobe[0], lobe[-1]
    left = lo - 1 + (half - values[lo - 1]) / (values[lo] - values[lo - 1]) if lo > 0 else lo
    right = hi + (values[hi] - half) / (values[hi] - values[hi + 1]) if hi < len(values) - 1 else hi
    return float((right - left) * step)


def find_orders(image, norders=1, block=16, min_snr=10.0, min_fraction=1e-3, exclusion=None):
    """Coarse location of the spectral orders: a peak followed from block to block of columns.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Median frame; NaN marks bad pixels.
    norders : int
        Orders to look for, brightest first (order 1 is the brightest of SOSS's orders).
    block : int
        Columns median-combined per step, pixels.
    min_snr : float
        A block's peak must exceed the background by this many robust sigma.
    min_fraction : float
        ...and be at least this fraction of the order's brightest block.
    exclusion : float, optional
        Half-width (pixels) masked around a found order before looking for the next one;
        default three times the order's FWHM plus 3 px.

    Returns
    -------
    list of tuple
        ``(columns, centres, fwhm)`` per order found: block-centre columns, coarse centres
        (pixels) and the coarse FWHM (pixels).  Fewer than ``norders`` entries when an order
        is not detected.
    """
    n_cross, n_disp = image.shape
    nblocks = max(n_disp // block, 1)
    edges = np.linspace(0, n_disp, nblocks + 1).astype(int)
    with np.errstate(all="ignore"):
        bounds = zip(edges[:-1], edges[1:], strict=True)
        profiles = np.stack([np.nanmedian(image[:, a:b], axis=1) for a, b in bounds], axis=1)
        profiles = np.where(np.isfinite(profiles), profiles, np.nanmedian(profiles))
        profiles -= np.nanpercentile(profiles, 10, axis=0)
    noise = MAD_TO_SIGMA * np.median(np.abs(np.diff(profiles, axis=0)), axis=0) / np.sqrt(2) + 1e-30
    rows = np.arange(n_cross)
    centres_blocks = 0.5 * (edges[:-1] + edges[1:] - 1)
    available = np.ones(profiles.shape, dtype=bool)
    found = []
    for _ in range(norders):
        narrow = ndimage.gaussian_filter1d(profiles, 1.0, axis=0)
        masked = np.where(available, narrow, -np.inf)
        seed = int(np.argmax(masked.max(axis=0) / noise))
        if not masked[:, seed].max() > min_snr * noise[seed]:
            break
        fwhm = _fwhm(np.where(available[:, seed], narrow[:, seed], 0.0), 1.0)
        # Smoothing matched to the profile merges the horns of a SOSS profile into one peak.
        smooth = ndimage.gaussian_filter1d(profiles, max(1.0, fwhm / 2.355), axis=0)
        masked = np.where(available, smooth, -np.inf)
        position = np.full(nblocks, np.nan)
        position[seed] = np.argmax(masked[:, seed])
        reference_peak = masked[:, seed].max()
        for direction in (1, -1):
            last = position[seed]
            k = seed + direction
            while 0 <= k < nblocks:
                window = available[:, k] & (np.abs(rows - last) <= 4 + 0.5 * block)
                if not window.any():
                    break
                local = np.where(window, smooth[:, k], -np.inf)
                peak_row = int(np.argmax(local))
                if local[peak_row] < max(min_snr * noise[k], min_fraction * reference_peak):
                    break
                position[k] = last = peak_row
                k += direction
        good = np.isfinite(position)
        halfwidth = 3.0 * fwhm + 3.0 if exclusion is None else exclusion
        for k in np.flatnonzero(good):
            available[np.abs(rows - position[k]) <= halfwidth, k] = False
        found.append((centres_blocks[good], position[good], fwhm))
    return found
