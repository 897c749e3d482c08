"""The scene model of a TSO exposure: median frames, source model, pixel weights.

Plain-numpy helpers of :mod:`tso_steps.one_over_f.correct`: the per-pixel median over
integrations and its static stripes, the least-squares fit of a scaled and shifted source
to each frame, and the noise model that weights the pixels.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from tso_steps.one_over_f.stripes import fit_stripes, stripe_image
from tso_steps.stats import evenly_spaced, nanmedian_last, robust_std_last

__all__ = [
    "MAX_MODEL_FRAMES",
    "MAX_VARIANCE_FRAMES",
    "SourceDesign",
    "bright_pixels",
    "fit_source",
    "fit_source_pixels",
    "source_design",
    "nanmedian_frames",
    "pixel_variance",
    "pixel_weights",
    "signal_image",
    "static_stripes",
    "weights_from_variance",
]

# Samples (frames) used for the median model and the per-pixel variance, and the number of
# pixel values held at once while computing a median: enough for a clean model, bounded RAM.
MAX_MODEL_FRAMES = 201
MAX_VARIANCE_FRAMES = 64
# Fewer residual frames than this: one spatial scatter instead of each pixel's own.
MIN_VARIANCE_FRAMES = 5
MEDIAN_BLOCK = 2**24


def nanmedian_frames(get_frames, n, shape, max_frames=MAX_MODEL_FRAMES, block=MEDIAN_BLOCK):
    """Per-pixel NaN-median over (a spread subset of) ``n`` frames, in row blocks.

    ``block`` is the number of pixel values read at once (the median is per pixel, so the
    result does not depend on it).
    """
    use = evenly_spaced(np.arange(n), max_frames)
    ny, nx = shape
    rows = max(1, int(block) // (len(use) * nx))
    median = np.empty(shape, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels bad in every frame
        for start in range(0, ny, rows):
            block = slice(start, min(start + rows, ny))
            # frames along the last axis, contiguous: partitioned in place, 3x faster than
            # through the strided view (which np.partition copies anyway)
            values = np.ascontiguousarray(np.moveaxis(get_frames(use, block), 0, -1))
            median[block] = nanmedian_last(values, overwrite=True)
    return median


def signal_image(data, max_frames=MAX_MODEL_FRAMES, block=MEDIAN_BLOCK):
    """Median image of the scene, for building a source mask.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)`` or ``(nints, ngroups, ny, nx)``
        A cube (median over integrations) or a ramp (median of last minus first group).
    max_frames : int
        Integrations used (spread over the exposure).
    block : int
        Pixel values read at once (see :func:`nanmedian_frames`).

    Returns
    -------
    ndarray of float32, shape ``(ny, nx)``
    """
    if data.ndim == 3:
        return nanmedian_frames(
            lambda i, r: data[i, r], data.shape[0], data.shape[1:], max_frames, block
        )
    last = data.shape[1] - 1

    def difference(index, rows):
        frames = data[index, last, rows].astype(np.float32)
        if last > 0:
            frames -= data[index, 0, rows]
        return frames

    return nanmedian_frames(difference, data.shape[0], data.shape[2:], max_frames, block)


def static_stripes(model, weights, layout, odd_even, min_pixels, kappa, window):
    """Stripes of a median frame, all of them and the instrumental part only.

    Returns ``(full, instrumental)`` images: ``full`` is the level of the unilluminated
    pixels everywhere (offsets and line levels, background included); ``instrumental``
    keeps only the offsets relative to their mean and the line levels relative to a
    running median over ``window`` lines, so a smooth background is not in it.
    """
    lines_weights = layout.to_lines(weights)
    fit = fit_stripes(
        layout.to_lines(model)[None], lines_weights, layout, odd_even, min_pixels, kappa
    )
    full = stripe_image(fit, layout)[0]
    groups = layout.column_groups(odd_even)
    group_weight = np.array(
        [lines_weights[:, groups == g].sum() for g in range(fit.offsets.shape[1])]
    )
    if group_weight.sum() > 0:
        fit.offsets -= np.sum(fit.offsets * group_weight) / group_weight.sum()
    if window and window > 1:
        smooth = ndimage.median_filter(fit.levels, size=(1, int(window), 1), mode="nearest")
        fit.levels = fit.levels - smooth
    else:
        fit.levels = fit.levels - np.median(fit.levels)
    return full, stripe_image(fit, layout)[0]


def pixel_weights(residuals, use, dark, source_image, noisy=10.0):
    """Inverse variance of each pixel from a noise model ``v0 + b * source``.

    The variance of each pixel over the residual frames (:func:`pixel_variance`; with
    fewer than 5 frames, the spatial scatter of the unilluminated pixels) goes to
    :func:`weights_from_variance`.
    """
    if residuals.shape[0] >= MIN_VARIANCE_FRAMES:
        var_pixel = pixel_variance(residuals)
    else:  # too few frames for a per-pixel scatter: the spatial scatter of dark pixels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spatial = robust_std_last(residuals[:, dark].ravel(), min_count=1)
        var_pixel = np.full(residuals.shape[1:], spatial**2)
    return weights_from_variance(var_pixel, use, dark, source_image, noisy)


def pixel_variance(residuals):
    """Robust variance of each pixel over residual frames ``(nframes, ...)``.

    Per pixel, so it can be computed a few rows at a time.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return robust_std_last(np.moveaxis(residuals, 0, -1), min_count=1) ** 2


def weights_from_variance(var_pixel, use, dark, source_image, noisy=10.0):
    """Inverse variance of each pixel from a noise model ``v0 + b * source``.

    ``v0`` is the median variance ``var_pixel`` of the unilluminated pixels and ``b`` the
    median excess variance per unit of source signal of the bright pixels (photon noise),
    so the weights do not follow the noise of any one pixel's own scatter (which would bias
    the levels).  Pixels scattering ``noisy`` times more than the model predicts (hot,
    unstable) get no weight.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = dark & np.isfinite(var_pixel)
        v0 = np.median(var_pixel[reference]) if reference.any() else np.nan
        if not np.isfinite(v0) or v0 <= 0:
            v0 = 1.0
        signal = np.where(np.isfinite(source_image), np.maximum(source_image, 0.0), 0.0)
        bright = (signal > 10 * np.sqrt(v0)) & np.isfinite(var_pixel)
        slope = np.median((var_pixel[bright] - v0) / signal[bright]) if bright.any() else 0.0
        var = v0 + max(float(slope), 0.0) * signal
        ok = np.isfinite(var_pixel) & (var_pixel <= noisy * var)
    return np.where(use & ok, 1.0 / var, 0.0)


def fit_source(frames, basis, bright, kappa=5.0):
    """Least-squares coefficients of source basis images for each frame, on bright pixels.

    Parameters
    ----------
    frames : ndarray, shape ``(nframes, ny, nx)``
    basis : list of ndarray
        Images ``(ny, nx)`` or ``(nframes, ny, nx)``: the source and its derivatives along
        y and x (a scaled, slightly shifted source is their linear combination).
    bright : ndarray of bool, shape ``(ny, nx)``
    kappa : float
        One clipping pass at ``kappa`` robust sigma keeps cosmic rays out.

    Returns
    -------
    ndarray, shape ``(nframes, nbasis)``
        Coefficients; ``[1, 0, 0...]`` where nothing can be fitted.
    """
    return fit_source_pixels(frames[:, bright], [b[..., bright] for b in basis], kappa)


def fit_source_pixels(values, basis, kappa=5.0):
    """:func:`fit_source` on the bright pixels' values alone.

    Parameters
    ----------
    values : ndarray, shape ``(nframes, npix)``
        Each frame's bright pixels.
    basis : list of ndarray or ndarray
        The basis at those pixels, ``(npix,)`` or ``(nframes, npix)`` each; or its
        :func:`source_design`, made once for many calls.
    kappa : float
        As in :func:`fit_source`.

    Returns
    -------
    ndarray, shape ``(nframes, nbasis)``
    """
    design, finite, normal = basis if isinstance(basis, SourceDesign) else source_design(basis)
    nframes = values.shape[0]
    nbasis = design.shape[1]
    default = np.zeros((nframes, nbasis))
    default[:, 0] = 1.0
    if values.shape[1] == 0:
        return default
    use = np.isfinite(values) & finite
    y = np.where(use, values, 0.0).astype(np.float64)
    design = np.broadcast_to(design, (nframes, *design.shape[1:]))
    normal = np.broadcast_to(normal, (nframes, nbasis, nbasis))
    total = design @ y[..., None]  # (nframes, nbasis, 1): every pixel's share
    coeffs = default.copy()
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(2):
            # the normal equations of the pixels used: all of them less the few left out
            # (not finite, clipped), frame by frame (each frame's fit is its own)
            lhs, rhs = normal.copy(), total[..., 0].copy()
            for f in range(nframes):
                out = np.flatnonzero(~use[f])
                if out.size:
                    x = design[f][:, out]
                    lhs[f] -= x @ x.T
                    rhs[f] -= x @ y[f, out]
            try:
                coeffs = np.linalg.solve(lhs, rhs[..., None])[..., 0]
            except np.linalg.LinAlgError:
                return default
            residual = y - (coeffs[:, None, :] @ design)[:, 0]
            residual[~use] = np.nan
            limit = kappa * robust_std_last(residual, min_count=1, max_samples=20000)
            use &= np.abs(residual) <= limit[:, None]
    return np.where(np.isfinite(coeffs), coeffs, default)


def source_design(basis):
    """The basis of :func:`fit_source_pixels` as one array, for many calls.

    Parameters
    ----------
    basis : list of ndarray
        Each ``(npix,)`` or ``(nframes, npix)``.

    Returns
    -------
    SourceDesign
    """
    basis = np.broadcast_arrays(*[np.atleast_2d(b) for b in basis])
    design = np.stack(basis, axis=1).astype(np.float64)
    finite = np.isfinite(design).all(axis=1)
    design[~np.broadcast_to(finite[:, None], design.shape)] = 0
    return SourceDesign(design, finite, design @ np.swapaxes(design, -1, -2))


class SourceDesign(NamedTuple):
    """The basis of :func:`fit_source_pixels` at the bright pixels (:func:`source_design`).

    Attributes
    ----------
    design : ndarray of float64, shape ``(nframes or 1, nbasis, npix)``
        The basis, 0 where any term is not finite.
    finite : ndarray of bool, shape ``(nframes or 1, npix)``
        Pixels where every term is finite.
    normal : ndarray of float64, shape ``(nframes or 1, nbasis, nbasis)``
        The normal matrix of all pixels, ``design @ design.T``.
    """

    design: np.ndarray
    finite: np.ndarray
    normal: np.ndarray


def bright_pixels(source_image, source, dark, n_sigma=10.0, min_count=10):
    """Source pixels well above the noise of a starless median frame.

    Returns an empty selection when fewer than ``min_count`` pixels are ``n_sigma`` above the
    scatter of the unilluminated pixels: there is then no source to scale.
    """
    finite = np.isfinite(source_image)
    usable = dark & finite
    noise = robust_std_last(source_image[usable], min_count=1) if usable.any() else 0.0
    noise = noise if np.isfinite(noise) else 0.0
    with np.errstate(invalid="ignore"):
        candidates = source & finite & (source_image > n_sigma * noise) & (source_image > 0)
    if candidates.sum() < min_count:
        return np.zeros(source_image.shape, dtype=bool)
    return candidates
