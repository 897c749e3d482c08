"""Per-integration flux scale and image-motion proxies measured from the group differences.

A transit, an eclipse or a detector ramp scales every pixel of an integration by the same
factor; pointing jitter moves the image by a fraction of a pixel. Both change the group
differences of bright pixels coherently across the frame, so they are measured once for
the whole exposure by a weighted least-squares fit, integration by integration, of

``S_i(p) = f_i M(p) + a_i dM/dx(p) + b_i dM/dy(p) + c_i``

where ``S_i`` is the integration's median group difference, ``M`` the median over
integrations (the reference frame) and ``dM/dx``, ``dM/dy`` its gradients. ``f_i`` is the
relative flux; ``a_i`` and ``b_i`` are the image shifts (minus the displacement, in pixels)
to first order, i.e. the motion regressors the detector uses on every pixel. Only the most
informative pixels are kept (high signal or high gradient over noise; the same pixels
however the frame is cut into slabs), so the fit needs neither the whole cube nor a second
pass over it.
"""

from __future__ import annotations

import numpy as np

from tso_steps.stats import nanmedian_last, robust_std_last

__all__ = ["FrameSamples", "fit_frame_regressors", "sample_frame_pixels"]


class FrameSamples:
    """Time series of the most informative pixels of a slab, for the frame-level fit.

    Attributes
    ----------
    series : ndarray, shape ``(nints, k)``
        Median group difference (DN per group) of each kept pixel in every integration.
    design : ndarray, shape ``(k, 3)``
        ``M``, ``dM/dx``, ``dM/dy`` of each kept pixel.
    sigma : ndarray, shape ``(k,)``
        Robust scatter over integrations (DN).
    index : ndarray of int64, shape ``(k,)``
        Flat frame index (``y * nx + x``) of each pixel.
    score : ndarray, shape ``(k,)``
        How informative each pixel is (level or gradient over scatter).
    """

    def __init__(self, series, design, sigma, index, score):
        self.series = series
        self.design = design
        self.sigma = sigma
        self.index = index
        self.score = score

    @classmethod
    def best(cls, samples, keep):
        """The ``keep`` most informative pixels of several slabs, in frame order.

        Pixels are ranked by score, ties by frame index, so the choice (and the order in
        which the fit sums them) is the same however the frame was cut into slabs.
        """
        samples = [s for s in samples if s is not None and s.sigma.size]
        if not samples:
            return None
        index = np.concatenate([s.index for s in samples])
        score = np.concatenate([s.score for s in samples])
        pick = _top(score, index, keep)
        pick = pick[np.argsort(index[pick], kind="stable")]
        return cls(
            np.concatenate([s.series for s in samples], axis=1)[:, pick],
            np.concatenate([s.design for s in samples], axis=0)[pick],
            np.concatenate([s.sigma for s in samples])[pick],
            index[pick],
            score[pick],
        )


def _top(score, index, keep):
    """Positions of the ``keep`` highest scores (ties: lowest index first)."""
    if score.size <= keep:
        return np.arange(score.size)
    return np.lexsort((index, -score))[:keep]


def sample_frame_pixels(per_int, keep, interior, index, min_snr=5.0):
    """Time series of a slab's most informative pixels.

    Parameters
    ----------
    per_int : ndarray, shape ``(nints, ny, nx)``
        Mean group difference of each integration in DN, NaN where unusable. May include
        halo lines (for the gradients).
    keep : int
        Maximum number of pixels to keep.
    interior : tuple of slice
        ``(slice_y, slice_x)`` of the slab without its halo.
    index : ndarray of int
        Flat frame index of every interior pixel (shape of the interior).
    min_snr : float
        A pixel is informative when its level or its gradient (per pixel) exceeds this many
        times its scatter.

    Returns
    -------
    FrameSamples or None
    """
    # the reference level and scatter need no more than ~32 integrations
    stack = np.moveaxis(per_int[:: max(1, per_int.shape[0] // 32)], 0, -1)
    level = nanmedian_last(stack, min_count=3)
    sigma = robust_std_last(stack, min_count=3)
    grad_y, grad_x = np.gradient(level)
    level, grad_x, grad_y, sigma = (a[interior] for a in (level, grad_x, grad_y, sigma))
    per_int = per_int[(slice(None), *interior)]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.fmax(np.abs(level), np.hypot(grad_x, grad_y)) / sigma
    # next to a dead (all-NaN) column the gradients are NaN: such pixels carry no design
    finite = np.isfinite(level) & np.isfinite(grad_x) & np.isfinite(grad_y)
    score = np.where(np.isfinite(score) & (sigma > 0) & finite, score, 0.0).ravel()
    good = np.flatnonzero(score > min_snr)
    if good.size == 0 or keep < 1:
        return None
    index = np.asarray(index, dtype=np.int64).ravel()
    good = good[_top(score[good], index[good], keep)]
    design = np.stack([level.ravel()[good], grad_x.ravel()[good], grad_y.ravel()[good]], axis=1)
    series = per_int.reshape(per_int.shape[0], -1)[:, good]
    return FrameSamples(series, design, sigma.ravel()[good], index[good], score[good])


def fit_frame_regressors(samples, nints, clip=5.0, iterations=3):
    """Fit each integration's flux scale and shift proxies.

    Parameters
    ----------
    samples : FrameSamples or None
    nints : int
    clip : float
        Samples further than ``clip`` scatters from an integration's fit are dropped
        (cosmic rays, bad pixels) and the fit is repeated.
    iterations : int
        Number of fit-and-clip rounds.

    Returns
    -------
    flux : ndarray, shape ``(nints,)``
        Relative flux, median 1 (all ones when nothing could be measured).
    shifts : ndarray, shape ``(nints, 2)``
        ``(a_i, b_i)`` minus their medians, pixels (zeros when nothing could be measured).
    """
    flux = np.ones(nints)
    shifts = np.zeros((nints, 2))
    if samples is None or samples.sigma.size < 20:
        return flux, shifts
    design = np.column_stack([samples.design, np.ones(samples.sigma.size)])
    # scale columns so the normal equations are well conditioned
    scale = np.sqrt(np.nanmean(design**2, axis=0))
    scale[scale == 0] = 1.0
    design = design / scale
    series = samples.series.astype(np.float64)
    weight = np.broadcast_to(1.0 / samples.sigma**2, series.shape).copy()
    weight[~np.isfinite(series)] = 0.0
    series = np.where(np.isfinite(series), series, 0.0)
    coeffs = np.zeros((nints, 4))
    rows = np.isfinite(design).all(axis=1)
    weight[:, ~rows] = 0.0
    design = np.where(rows[:, None], design, 0.0)
    # Start from a robust model (the reference frame times the median ratio): a large event
    # (a snowball over thousands of pixels) would pull a first least-squares fit so far that
    # the clip then drops the good pixels instead of the event.
    level = samples.design[:, 0]
    bright = rows & (np.abs(level) > 5.0 * samples.sigma)
    if bright.sum() >= 20:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(weight[:, bright] > 0, series[:, bright] / level[bright], np.nan)
        start = nanmedian_last(ratio)
        start = np.where(np.isfinite(start), start, 1.0)
        first = (series - start[:, None] * level[None, :]) / samples.sigma
        spread = robust_std_last(np.where(weight > 0, first, np.nan))
        seeded = np.where(np.abs(first) > clip * np.fmax(spread, 1.0)[:, None], 0.0, weight)
    else:
        seeded = weight
    usable = weight
    weight = seeded
    for _ in range(iterations):
        normal = np.einsum("ik,kp,kq->ipq", weight, design, design)
        rhs = np.einsum("ik,kp,ik->ip", weight, design, series)
        ok = np.zeros(nints, dtype=bool)
        finite = np.isfinite(normal).all(axis=(1, 2))
        ok[finite] = np.linalg.cond(normal[finite]) < 1e12
        coeffs[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
        residual = (series - coeffs @ design.T) / samples.sigma
        # each round clips against the latest fit (the seed only steers the first one)
        weight = np.where(np.abs(residual) > clip, 0.0, usable)
    coeffs = coeffs / scale
    good = ok & np.isfinite(coeffs).all(axis=1) & (coeffs[:, 0] > 0)
    if good.sum() < max(2, nints // 2):
        return flux, shifts
    flux = np.where(good, coeffs[:, 0] / np.median(coeffs[good, 0]), 1.0)
    raw = coeffs[:, 1:3] / np.where(good, coeffs[:, 0], 1.0)[:, None]
    shifts = np.where(good[:, None], raw - np.median(raw[good], axis=0), 0.0)
    return flux, shifts
