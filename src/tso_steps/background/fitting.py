"""Robust linear fits of smooth background models to the unilluminated pixels of images.

Three model families, all linear in their parameters:

* **line polynomials** (:func:`fit_lines`): one Legendre polynomial across the dispersion
  for every cross-dispersion line (MIRI LRS, NIRSpec, NIRCam grism);
* **basis images** (:func:`fit_basis`): any fixed set of images combined linearly, used for
  the 2-D surface (:func:`surface_basis`, Legendre products in x and y) and for a user
  template scaled separately on each side of a discontinuity (:func:`template_basis`);
* **one scale per image** (:func:`fit_scales`): a known shape times a free factor.

Every fit is iteratively sigma-clipped (cosmic rays, source wings left outside the mask)
and unweighted: off-source pixels have nearly equal variance, and weights computed from the
data themselves would bias faint levels low.  Images are ``(n_cross, n_disp)`` for the line
fits (the caller transposes when the spectrum runs along y); everything else is any 2-D
shape.  Nothing here knows about datamodels.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

from tso_steps.stats import MAD_TO_SIGMA, robust_std

__all__ = [
    "fit_basis",
    "fit_lines",
    "fit_scales",
    "side_masks",
    "surface_basis",
    "template_basis",
]


def _normalised(n):
    """Coordinates 0..n-1 mapped onto [-1, 1] (Legendre polynomials' domain)."""
    return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)


def _sigma(residuals, usable, max_samples=50_000):
    """Robust scatter of the usable residuals of each image (leading axis).

    Returns inf where an image has no usable residual (nothing is clipped).
    """
    sigma = np.full(residuals.shape[0], np.inf)
    for i in range(residuals.shape[0]):
        values = residuals[i][usable[i]]
        if values.size > max_samples:  # a subsample is plenty for a clipping threshold
            values = values[:: values.size // max_samples]
        if values.size:
            center = np.median(values)
            scale = MAD_TO_SIGMA * np.median(np.abs(values - center))
            if np.isfinite(scale) and scale > 0:
                sigma[i] = scale
    return sigma


def fit_lines(images, usable, order=1, window=1, clip=4.0, maxiter=5):
    """Fit a polynomial across the dispersion to every cross-dispersion line of every image.

    Parameters
    ----------
    images : ndarray, shape ``(n, n_cross, n_disp)``
        Images with the dispersion along the last axis (any units).
    usable : ndarray of bool, same shape
        Pixels the fit may use (off-source, finite, not DO_NOT_USE).
    order : int
        Polynomial order across the dispersion (0: a level per line).
    window : int
        Number of adjacent lines fitted together (a running sum of the normal equations):
        more pixels per fit, less noise, at the cost of resolution along the dispersion.
    clip : float
        Reject pixels more than ``clip`` robust sigma from the fit (0: no clipping).
    maxiter : int
        Maximum fit-and-clip iterations.

    Returns
    -------
    model : ndarray, shape of ``images``
        The fitted background, float64.
    kept : ndarray of bool
        Pixels used in the final fit.
    n_filled : int
        Lines with too few usable pixels, whose coefficients were interpolated from their
        neighbours along the dispersion.

    Raises
    ------
    ValueError
        If no line of some image can be fitted.
    """
    from scipy.ndimage import uniform_filter1d

    images = np.asarray(images, dtype=np.float64)
    n, n_cross, n_disp = images.shape
    basis = legendre.legvander(_normalised(n_cross), order)  # (n_cross, k)
    k = order + 1
    kept = usable & np.isfinite(images)
    data = np.where(kept, images, 0.0)
    for _ in range(max(1, maxiter)):
        weight = kept.astype(np.float64)
        normal = np.einsum("nyx,yk,yl->nxkl", weight, basis, basis, optimize=True)
        rhs = np.einsum("nyx,yk->nxk", weight * data, basis, optimize=True)
        counts = weight.sum(axis=1)
        if window > 1:
            normal = uniform_filter1d(normal, window, axis=1, mode="nearest") * window
            rhs = uniform_filter1d(rhs, window, axis=1, mode="nearest") * window
            counts = uniform_filter1d(counts, window, axis=1, mode="nearest") * window
        coeffs, n_filled = _solve_lines(normal, rhs, counts >= k + 1)
        model = np.einsum("nxk,yk->nyx", coeffs, basis, optimize=True)
        if clip <= 0:
            break
        residuals = images - model
        sigma = _sigma(residuals, kept)
        new = usable & np.isfinite(images) & (np.abs(residuals) <= clip * sigma[:, None, None])
        if np.array_equal(new, kept):
            break
        kept = new
    return model, kept, n_filled


def _solve_lines(normal, rhs, enough):
    """Solve the per-line normal equations; fill unsolvable lines from their neighbours."""
    n, n_disp, k = rhs.shape
    coeffs = np.full((n, n_disp, k), np.nan)
    det_ok = enough & (np.abs(np.linalg.det(normal)) > 1e-12 * np.abs(normal).max(initial=1))
    if det_ok.any():
        coeffs[det_ok] = np.linalg.solve(normal[det_ok], rhs[det_ok][..., None])[..., 0]
    lines = np.arange(n_disp)
    for i in range(n):
        good = det_ok[i]
        if not good.any():
            raise ValueError("No cross-dispersion line has enough unilluminated pixels to fit.")
        if good.all():
            continue
        for c in range(k):
            coeffs[i, ~good, c] = np.interp(lines[~good], lines[good], coeffs[i, good, c])
    return coeffs, int((~det_ok).sum())


def _residual(data, flat_basis, live, solution, rows=2**16):
    """``data - flat_basis[:, live] @ solution``, a block of pixels at a time.

    The same products block by block, without a copy of the live basis columns of every
    pixel (the size of the basis).
    """
    residual = np.empty_like(data)
    for start in range(0, data.size, rows):
        block = slice(start, start + rows)
        residual[block] = data[block] - flat_basis[block][:, live] @ solution
    return residual


def surface_basis(shape, order=2, sides=None):
    """Legendre products ``P_i(x) P_j(y)``, ``i + j <= order``, as basis images.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    order : int
        Total polynomial order.
    sides : sequence of ndarray of bool, optional
        Regions (e.g. :func:`side_masks`) that each get their own surface.

    Returns
    -------
    ndarray, shape ``(nbasis, ny, nx)``
    """
    ny, nx = shape
    vy = legendre.legvander(_normalised(ny), order)
    vx = legendre.legvander(_normalised(nx), order)
    pairs = [(j, i) for i in range(order + 1) for j in range(order + 1 - i)]
    regions = [np.ones(shape, dtype=bool)] if not sides else sides
    # filled in place: a list of products and its stack would hold the basis twice
    basis = np.empty((len(regions) * len(pairs), ny, nx))
    for k, (region, (j, i)) in enumerate((r, p) for r in regions for p in pairs):
        np.multiply(np.outer(vy[:, j], vx[:, i]), region, out=basis[k])
    return basis


def template_basis(template, sides=None):
    """A template split into one basis image per side of a discontinuity.

    Parameters
    ----------
    template : ndarray, shape ``(ny, nx)``
        Background template (any units); NaN is treated as 0.
    sides : sequence of ndarray of bool, optional
        Regions scaled independently (default: one scale for the whole template).

    Returns
    -------
    ndarray, shape ``(nsides, ny, nx)``
    """
    template = np.nan_to_num(np.asarray(template, dtype=np.float64))
    if not sides:
        return template[None]
    return np.stack([template * r for r in sides])


def side_masks(shape, columns):
    """Left and right of a discontinuity at ``columns`` (one per row, or one for all).

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    columns : float or ndarray, shape ``(ny,)``
        First column of the right-hand side, 0-based.

    Returns
    -------
    list of ndarray of bool
        ``[left, right]``.
    """
    columns = np.broadcast_to(np.asarray(columns, dtype=np.float64), (shape[0],))
    right = np.arange(shape[1])[None, :] >= columns[:, None]
    return [~right, right]


def fit_basis(images, usable, basis, clip=4.0, maxiter=5):
    """Least-squares combination of basis images fitted to each image, with clipping.

    Parameters
    ----------
    images : ndarray, shape ``(n, ny, nx)``
    usable : ndarray of bool, same shape
        Pixels the fit may use.
    basis : ndarray, shape ``(nbasis, ny, nx)``
    clip : float
        Reject pixels more than ``clip`` robust sigma from the fit (0: none).
    maxiter : int
        Maximum fit-and-clip iterations.

    Returns
    -------
    coeffs : ndarray, shape ``(n, nbasis)``
        NaN for a basis image with no usable pixel (its model contribution is then 0).
    kept : ndarray of bool, shape of ``images``
        Pixels used in the final fit.
    """
    images = np.asarray(images, dtype=np.float64)
    n = images.shape[0]
    flat_basis = basis.reshape(basis.shape[0], -1).T  # (npix, nbasis)
    coeffs = np.full((n, basis.shape[0]), np.nan)
    kept = usable & np.isfinite(images)
    for i in range(n):
        data = images[i].ravel()
        good = kept[i].ravel().copy()
        for _ in range(max(1, maxiter)):
            design = flat_basis[good]
            live = (design != 0).any(axis=0)  # a side with no usable pixel (basis is finite)
            if live.sum() == 0:
                raise ValueError("No unilluminated pixel is usable for the background fit.")
            solution = np.linalg.lstsq(design[:, live], data[good], rcond=None)[0]
            coeffs[i] = np.nan
            coeffs[i, live] = solution
            if clip <= 0:
                break
            residual = _residual(data, flat_basis, live, solution)
            sigma = robust_std(residual[good])
            if not np.isfinite(sigma) or sigma <= 0:
                break
            new = kept[i].ravel() & (np.abs(residual) <= clip * sigma)
            if np.array_equal(new, good):
                break
            good = new
        kept[i] = good.reshape(images.shape[1:])
    return coeffs, kept


def fit_scales(images, usable, shape, clip=4.0, maxiter=5, keep=True):
    """One multiplicative factor per image: ``images[i] ~ scale[i] * shape``, with clipping.

    Parameters
    ----------
    images : ndarray, shape ``(n, ny, nx)``
    usable : ndarray of bool, same shape
    shape : ndarray, shape ``(ny, nx)``
        The background shape (e.g. fitted to the mean image).
    clip : float
        Reject pixels more than ``clip`` robust sigma from the fit (0: none).
    maxiter : int
        Maximum fit-and-clip iterations.
    keep : bool
        Return the pixels kept (a boolean array the size of ``images``); False returns None.

    Returns
    -------
    scales : ndarray, shape ``(n,)``
        NaN for an image with no usable pixel.
    kept : ndarray of bool or None
    """
    shape = np.nan_to_num(np.asarray(shape, dtype=np.float64)).ravel()
    n = images.shape[0]
    scales = np.full(n, np.nan)
    kept = np.zeros(images.shape, dtype=bool) if keep else None
    for i in range(n):  # one image at a time, on its usable pixels only
        flat = np.asarray(images[i]).ravel()
        index = np.flatnonzero(np.asarray(usable[i]).ravel() & np.isfinite(flat))
        values, model = flat[index].astype(np.float64), shape[index]
        good = np.ones(index.size, dtype=bool)
        for iteration in range(max(1, maxiter) + 1):
            weight = model[good]
            norm = np.dot(weight, weight)
            if norm <= 0:
                break
            scales[i] = np.dot(weight, values[good]) / norm
            if clip <= 0 or iteration == max(1, maxiter):
                break
            residual = values - scales[i] * model
            sigma = _sigma(residual[None], good[None])[0]
            new = np.abs(residual) <= clip * sigma
            changed = np.count_nonzero(new != good)
            good = new
            if changed == 0:
                break
            if changed <= 1e-4 * good.size:  # refit once more, then a handful cannot matter
                maxiter = iteration + 1
        if keep:
            kept[i].ravel()[index[good]] = True
    return scales, kept
