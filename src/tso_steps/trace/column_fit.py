"""Per-column fits of a template to the median frame: centres, errors, centre-of-mass offset.

See :mod:`tso_steps.trace.reference` for the method.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centroid_offset", "fit_columns"]


def _gather(image, weight, centers, halfwidth):
    """Pixels within ``halfwidth`` of each column's centre: rows, data and weights."""
    n_cross = image.shape[0]
    cols = np.flatnonzero(np.isfinite(centers))
    nrow = 2 * int(np.ceil(halfwidth)) + 1
    start = np.round(centers[cols]).astype(int) - nrow // 2
    rows = start[:, None] + np.arange(nrow)[None, :]
    inside = (rows >= 0) & (rows < n_cross)
    clipped = np.clip(rows, 0, n_cross - 1)
    data = image[clipped, cols[:, None]]
    w = np.where(inside, weight[clipped, cols[:, None]], 0.0)
    w = np.where(np.abs(rows - centers[cols][:, None]) <= halfwidth, w, 0.0)
    data = np.where(w > 0, data, 0.0)
    return cols, rows.astype(np.float64), data, w


def _solve(basis, data, weight):
    """Weighted least squares per column: ``data[c] ~ basis[c] @ x[c]``."""
    wb = basis * weight[..., None]
    gram = np.einsum("cnk,cnl->ckl", wb, basis)
    rhs = np.einsum("cnk,cn->ck", wb, data)
    gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(gram.shape[-1])
    inverse = np.linalg.pinv(gram)
    return np.einsum("ckl,cl->ck", inverse, rhs), inverse


def fit_columns(image, weight, centers, template, halfwidth, iterations=5, clip=5.0):
    """Fit every column with ``a * T(y - c) + b``: centre, amplitude and their errors.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
    weight : ndarray, shape ``(n_cross, n_disp)``
        Inverse variance per pixel; 0 for bad pixels.
    centers : ndarray, shape ``(n_disp,)``
        Starting centres; NaN columns are skipped.
    template : Template
    halfwidth : float
        Pixels within this distance of the centre are fitted.
    iterations : int
        Gauss-Newton iterations.
    clip : float
        Samples whose normalised residual exceeds this are rejected (after the second
        iteration).

    Returns
    -------
    center, error, amplitude, snr : ndarray, shape ``(n_disp,)``
        NaN where not fitted.  ``amplitude`` is the profile's integral (data units), ``snr``
        its significance.
    """
    n_disp = image.shape[1]
    out = [np.full(n_disp, np.nan) for _ in range(4)]
    cols, rows, data, w = _gather(image, weight, centers, halfwidth)
    if cols.size == 0:
        return tuple(out)
    c = centers[cols].astype(np.float64)
    for iteration in range(iterations):
        u = rows - c[:, None]
        basis = np.stack([template(u), -template(u, derivative=True), np.ones_like(u)], axis=-1)
        solution, inverse = _solve(basis, data, w)
        if iteration == 1 and clip:
            # Allow 20 % template mismatch: bright undersampled columns must keep their core.
            model = np.einsum("cnk,ck->cn", basis, solution)
            with np.errstate(all="ignore"):
                norm = (data - model) / np.sqrt(1.0 / w + (0.2 * model) ** 2)
            w = np.where(np.abs(norm) > clip, 0.0, w)
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            step = solution[:, 1] / solution[:, 0]
        c = c + np.clip(np.where(np.isfinite(step), step, 0.0), -0.5, 0.5)
    residual = (data - np.einsum("cnk,ck->cn", basis, solution)) * np.sqrt(w)
    dof = np.maximum((w > 0).sum(axis=1) - 3, 1)
    chi2 = np.maximum((residual**2).sum(axis=1) / dof, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.sqrt(inverse[:, 1, 1] * chi2) / np.abs(solution[:, 0])
        snr = solution[:, 0] / np.sqrt(inverse[:, 0, 0] * chi2)
    ok = (w > 0).sum(axis=1) > 4
    for array, values in zip(out, (c, error, solution[:, 0], snr), strict=True):
        array[cols[ok]] = values[ok]
    return tuple(out)


def centroid_offset(image, centers, halfwidth, weights=None):
    """Median offset of column centres of mass from given centres.

    The centre of mass of pixel-integrated samples of a smooth symmetric profile, in a window
    symmetric about the centre, is unbiased up to aliasing terms that fall off like the
    profile's Fourier transform at one cycle per pixel (negligible even for NIRCam's
    undersampled core), whereas a spline through undersampled samples is not symmetric.  This
    offset therefore fixes the zero point of the template.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Bad pixels filled.
    centers : ndarray, shape ``(n_disp,)``
        Fitted centres (NaN: skipped).
    halfwidth : float
        Half-width of the centroid window, pixels; the background is the median of the 4
        pixels beyond it on each side.
    weights : ndarray, optional
        Per-column weights of the median (e.g. inverse error squared).

    Returns
    -------
    float
        Median ``centre of mass - centers``, pixels.
    """
    cols = np.flatnonzero(np.isfinite(centers))
    rows = np.arange(image.shape[0], dtype=np.float64)[:, None]
    dist = rows - centers[cols][None, :]
    values = image[:, cols]
    ring = (np.abs(dist) > halfwidth + 0.5) & (np.abs(dist) <= halfwidth + 4.5)
    with np.errstate(all="ignore"):
        background = np.nanmedian(np.where(ring, values, np.nan), axis=0)
    values = values - np.where(np.isfinite(background), background, 0.0)
    # Fractional weight of each pixel inside [c - h, c + h].
    frac = np.clip(halfwidth + 0.5 - np.abs(dist), 0.0, 1.0)
    inside = (centers[cols] - halfwidth >= -0.5) & (
        centers[cols] + halfwidth <= image.shape[0] - 0.5
    )
    with np.errstate(all="ignore"):
        com = np.sum(frac * values * dist, axis=0) / np.sum(frac * values, axis=0)
    ok = inside & np.isfinite(com) & (np.abs(com) < halfwidth)
    if not ok.any():
        return 0.0
    if weights is None:
        return float(np.median(com[ok]))
    order = np.argsort(com[ok])
    cumulative = np.cumsum(weights[cols][ok][order])
    return float(com[ok][order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])
