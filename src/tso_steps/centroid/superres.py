"""A super-resolved template of the source built from the time series itself, and the fit.

Jitter and tilt events put the source at many sub-pixel phases over a visit.  The template
``E`` is a cubic B-spline on a grid ``oversample`` times finer than the pixels; it represents
the *pixel-integrated* PSF (an effective PSF, as photutils' ``EPSFBuilder`` builds from many
stars), so sampling it at a pixel centre gives the pixel's value and no assumption about the
PSF's shape, sampling or intra-pixel response is made.  Integration ``i`` is modelled as::

    d_i(k) = a_i * E(c + (k - c - t_i) / s_i) + b_i

with ``k`` the pixel, ``t_i`` the shift, ``s_i`` a size scale about the template's light
centroid ``c`` (PSF breathing), ``a_i`` the flux and ``b_i`` a background change.  ``E`` is
solved from all integrations at once by weighted linear least squares (weights
``a_i^2 / variance``) with a weak curvature penalty that only fills sub-pixel phases the
series never visited; then every integration's five parameters are refitted by Gauss-Newton
with exact spline derivatives, and the two steps alternate.  Because one function ``E`` is
shared by every pixel, the shifts keep their scale (a per-pixel model would not).  The source
position is ``c + t_i``: the light centroid of the template moved with the fit.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from tso_steps.stats import robust_std

from .gauss_newton import weighted_step

__all__ = ["SuperTemplate", "fit_super_template"]

_MIN_PIXELS = 8
#: Samples whose part of the normal equations is built at once (bounds the design matrix).
_SOLVE_BLOCK = 1 << 16


def _bspline(t):
    """Cubic B-spline weights and derivatives for fractional offsets ``t`` in [0, 1)."""
    w = np.stack(
        [
            (1 - t) ** 3 / 6,
            (3 * t**3 - 6 * t**2 + 4) / 6,
            (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6,
            t**3 / 6,
        ],
        axis=-1,
    )
    dw = np.stack(
        [-((1 - t) ** 2) / 2, (9 * t**2 - 12 * t) / 6, (-9 * t**2 + 6 * t + 3) / 6, t**2 / 2],
        axis=-1,
    )
    return w, dw


class SuperTemplate:
    """Cubic B-spline template on a fine grid over a box of pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the pixel box.
    oversample : int
        Fine-grid nodes per pixel along each axis.
    """

    def __init__(self, shape, oversample):
        self.shape = tuple(shape)
        self.q = int(oversample)
        self.margin = 3
        self.fine = tuple(self.q * n + 2 * self.margin for n in self.shape)
        self.coeffs = np.zeros(self.fine)

    def _fine(self, y, x):
        """Fine-grid coordinates of box coordinates (pixel centres at integers)."""
        q, m = self.q, self.margin
        return q * (y + 0.5) - 0.5 + m, q * (x + 0.5) - 0.5 + m

    def basis(self, y, x):
        """Indices, weights and coordinate derivatives of the 16 nodes under each point.

        Returns
        -------
        index : ndarray of int, shape ``(n, 16)``
        weight, dweight_y, dweight_x : ndarray, shape ``(n, 16)``
            Weights, and their derivatives with respect to the box coordinates.
        """
        fy, fx = self._fine(np.asarray(y, float), np.asarray(x, float))
        ny, nx = self.fine
        fy = np.clip(fy, 1.0, ny - 3.0 - 1e-9)
        fx = np.clip(fx, 1.0, nx - 3.0 - 1e-9)
        iy, ix = np.floor(fy).astype(int), np.floor(fx).astype(int)
        wy, dwy = _bspline(fy - iy)
        wx, dwx = _bspline(fx - ix)
        jy = iy[:, None] - 1 + np.arange(4)[None, :]
        jx = ix[:, None] - 1 + np.arange(4)[None, :]
        index = (jy[:, :, None] * nx + jx[:, None, :]).reshape(-1, 16)
        weight = (wy[:, :, None] * wx[:, None, :]).reshape(-1, 16)
        d_y = self.q * (dwy[:, :, None] * wx[:, None, :]).reshape(-1, 16)
        d_x = self.q * (wy[:, :, None] * dwx[:, None, :]).reshape(-1, 16)
        return index, weight, d_y, d_x

    def evaluate(self, y, x, gradient=False):
        """Template value (and its gradient) at box coordinates."""
        index, weight, d_y, d_x = self.basis(y, x)
        c = self.coeffs.ravel()[index]
        value = np.sum(c * weight, axis=1)
        if not gradient:
            return value
        return value, np.sum(c * d_y, axis=1), np.sum(c * d_x, axis=1)

    def centroid(self, inside):
        """Light centroid ``(x, y)`` of the template sampled on the pixel grid inside a window."""
        yy, xx = np.nonzero(inside)
        v = self.evaluate(yy.astype(float), xx.astype(float))
        return float((v * xx).sum() / v.sum()), float((v * yy).sum() / v.sum())

    def solve(self, y, x, values, weights, smooth=1e-3):
        """Least-squares coefficients from samples ``values`` at box coordinates ``(y, x)``.

        A second-difference penalty of relative strength ``smooth`` (per unit of the mean
        data weight per node) keeps the nodes no sample reaches smooth.
        """
        self.solve_blocks([(y, x, values, weights)], smooth)

    def solve_blocks(self, blocks, smooth=1e-3):
        """:meth:`solve` from an iterable of ``(y, x, values, weights)`` blocks of samples.

        The normal equations are summed block by block (and over at most ``_SOLVE_BLOCK``
        samples at a time): the design matrix of a whole segment, 16 nodes per sample of
        every integration, would take gigabytes.
        """
        n = self.fine[0] * self.fine[1]
        normal = sparse.csc_matrix((n, n))
        rhs = np.zeros(n)
        total = 0.0
        for y, x, values, weights in blocks:
            total += float(np.sum(weights))
            for start in range(0, len(values), _SOLVE_BLOCK):
                part = slice(start, start + _SOLVE_BLOCK)
                index, weight, _, _ = self.basis(y[part], x[part])
                rows = np.repeat(np.arange(index.shape[0]), 16)
                a = sparse.csr_matrix(
                    (weight.ravel(), (rows, index.ravel())), shape=(index.shape[0], n)
                )
                normal = normal + (a.T @ a.multiply(weights[part][:, None]).tocsr()).tocsc()
                rhs += a.T @ (weights[part] * values[part])
        lam = smooth * total / n
        normal = normal + lam * _curvature(self.fine)
        self.coeffs = spsolve(normal.tocsc(), rhs).reshape(self.fine)


def _curvature(fine):
    """``D^T D`` of the second differences along both axes of a fine grid."""
    ny, nx = fine

    def second(n):
        return sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))

    dy = sparse.kron(second(ny), sparse.identity(nx))
    dx = sparse.kron(sparse.identity(ny), second(nx))
    return (dy.T @ dy + dx.T @ dx).tocsc()


def _fit_one(tmpl, yy, xx, d, w, c, p, max_iter, tol, fit_scale=True):
    """Gauss-Newton fit of (a, b, tx, ty, s) of one integration; None on failure."""
    a, b, tx, ty, s = p
    cx, cy = c
    cov = None
    for _ in range(max_iter):
        uy, ux = cy + (yy - cy - ty) / s, cx + (xx - cx - tx) / s
        m, gy, gx = tmpl.evaluate(uy, ux, gradient=True)
        dot = gx * (ux - cx) + gy * (uy - cy)
        cols = [m, np.ones_like(m), -a * gx / s, -a * gy / s]
        if fit_scale:
            cols.append(-a * dot / s)
        jac = np.stack(cols, axis=1)
        solved = weighted_step(jac, d - (a * m + b), w)
        if solved is None:
            return None
        step = np.zeros(5)
        step[: jac.shape[1]], cov = solved
        a, b, tx, ty, s = a + step[0], b + step[1], tx + step[2], ty + step[3], s + step[4]
        if not np.all(np.isfinite([a, tx, ty, s])) or s <= 0.5 or s >= 2.0:
            return None
        if max(abs(step[2]), abs(step[3])) < tol:
            break
    uy, ux = cy + (yy - cy - ty) / s, cx + (xx - cx - tx) / s
    resid = d - (a * tmpl.evaluate(uy, ux) + b)
    full = np.full((5, 5), np.nan)
    full[: cov.shape[0], : cov.shape[1]] = cov
    return np.array([a, b, tx, ty, s]), full, resid


def _template_samples(data, var, keep, yy, xx, params, good, cx, cy):
    """``(y, x, value, weight)`` of the kept samples in template coordinates, in blocks.

    Blocks of whole integrations of about ``_SOLVE_BLOCK`` samples, so the samples of a
    segment are never held at once.
    """
    ys, xs, vals, wts, count = [], [], [], [], 0
    for n, i in enumerate(good):
        a, b, tx, ty, s = params[i]
        k = keep[i][yy, xx]
        ys.append(cy + (yy[k] - cy - ty) / s)
        xs.append(cx + (xx[k] - cx - tx) / s)
        vals.append((data[i][yy[k], xx[k]] - b) / a)
        wts.append(a * a / var[i][yy[k], xx[k]])
        count += ys[-1].size
        if count >= _SOLVE_BLOCK or n == good.size - 1:
            yield tuple(np.concatenate(p) for p in (ys, xs, vals, wts))
            ys, xs, vals, wts, count = [], [], [], [], 0


class SuperFit:
    """Per-integration results of :func:`fit_super_template` (arrays of length nints).

    Attributes
    ----------
    x, y : ndarray
        Source position (template light centroid plus shift), box pixels; NaN if failed.
    x_err, y_err : ndarray
        Formal 1-sigma errors, pixels.
    scale : ndarray
        Size relative to the template (breathing).
    flux, offset : ndarray
    n_clipped : int
        Pixels rejected by the residual clip (final pass).
    template : SuperTemplate
    """

    def __init__(self, nints, template):
        nan = np.full(nints, np.nan)
        self.x, self.y, self.x_err, self.y_err = nan.copy(), nan.copy(), nan.copy(), nan.copy()
        self.scale, self.flux, self.offset = nan.copy(), nan.copy(), nan.copy()
        self.n_clipped = 0
        self.template = template


def fit_super_template(
    data,
    variance,
    bad,
    inside,
    start_x,
    start_y,
    *,
    oversample=4,
    rounds=3,
    clip_sigma=5.0,
    max_iter=10,
    tol=1e-6,
    smooth=1e-3,
    fit_scale=True,
):
    """Alternate a super-resolved template and the per-integration fits against it.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Cut-outs around the source, data units (background may remain: it is fitted).
    variance : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``
        Per-pixel variance, data units squared (weights).
    bad : ndarray of bool, shape ``(nints, ny, nx)``
        Samples not to use.
    inside : ndarray of bool, shape ``(ny, nx)``
        Fit window.
    start_x, start_y : ndarray, shape ``(nints,)``
        Starting source positions in box pixels (e.g. centres of mass); NaN: not used.
    oversample : int
        Template nodes per pixel and axis.
    rounds : int
        Template / fit alternations.
    clip_sigma : float
        Pixels whose weighted residual exceeds this many robust sigma are dropped from both
        the template and the fits (0: off).
    max_iter, tol : int, float
        Gauss-Newton iterations and convergence on the shift, pixels.
    smooth : float
        Relative strength of the template's curvature penalty.

    Returns
    -------
    SuperFit
    """
    nints = data.shape[0]
    var = np.broadcast_to(variance, data.shape)
    use = inside[None] & ~bad & np.isfinite(data) & np.isfinite(var) & (var > 0)
    yy, xx = np.nonzero(inside)
    tmpl = SuperTemplate(data.shape[1:], oversample)
    ok = np.isfinite(start_x) & np.isfinite(start_y) & (use.sum(axis=(1, 2)) >= _MIN_PIXELS)
    cx, cy = float(np.median(start_x[ok])), float(np.median(start_y[ok]))
    params = np.full((nints, 5), np.nan)
    params[:, 2], params[:, 3], params[:, 4] = start_x - cx, start_y - cy, 1.0
    sums = np.array([np.sum(np.where(use[i], data[i], 0.0)) for i in range(nints)])
    params[:, 0], params[:, 1] = sums / np.median(sums[ok]), 0.0
    params[~ok] = np.nan
    cov = np.full((nints, 5, 5), np.nan)
    keep = use.copy()
    for _round in range(rounds):
        good = np.flatnonzero(np.isfinite(params[:, 0]))
        # template from every usable sample, mapped to template coordinates
        tmpl.solve_blocks(_template_samples(data, var, keep, yy, xx, params, good, cx, cy), smooth)
        # shifts are about the template's own light centroid
        ncx, ncy = tmpl.centroid(inside)
        params[:, 2] += cx - ncx
        params[:, 3] += cy - ncy
        cx, cy = ncx, ncy
        n_clipped = 0
        for i in good:
            k = use[i][yy, xx]
            d, w = data[i][yy[k], xx[k]], 1.0 / var[i][yy[k], xx[k]]
            fit = _fit_one(tmpl, yy[k], xx[k], d, w, (cx, cy), params[i], max_iter, tol, fit_scale)
            if fit is not None and clip_sigma > 0:
                chi = fit[2] * np.sqrt(w)
                sigma = max(robust_std(chi), 1e-12)
                inlier = np.abs(chi - np.median(chi)) <= clip_sigma * sigma
                if not inlier.all() and inlier.sum() >= _MIN_PIXELS:
                    n_clipped += int((~inlier).sum())
                    kk = np.flatnonzero(k)[~inlier]
                    keep[i][yy[kk], xx[kk]] = False
                    k = k & keep[i][yy, xx]
                    d, w = data[i][yy[k], xx[k]], 1.0 / var[i][yy[k], xx[k]]
                    fit = _fit_one(
                        tmpl, yy[k], xx[k], d, w, (cx, cy), fit[0], max_iter, tol, fit_scale
                    )
            if fit is None:
                params[i] = np.nan
                continue
            params[i], cov[i] = fit[0], fit[1]
    out = SuperFit(nints, tmpl)
    out.x, out.y = cx + params[:, 2], cy + params[:, 3]
    out.x_err, out.y_err = np.sqrt(cov[:, 2, 2]), np.sqrt(cov[:, 3, 3])
    out.flux, out.offset, out.scale = params[:, 0], params[:, 1], params[:, 4]
    out.n_clipped = n_clipped
    return out
