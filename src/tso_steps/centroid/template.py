"""Shift of each integration against a template (the median frame), by weighted least squares.

Model of integration ``i`` inside the window::

    d_i(x, y) = a_i * T(x - sx_i, y - sy_i) + b_i

``T`` is the background-subtracted median frame, evaluated at sub-pixel shifts by cubic
B-spline interpolation; ``a_i`` absorbs the transit and ``b_i`` a background change.  The
four parameters are found by Gauss-Newton iterations with weights ``1 / variance``; the
Jacobian uses the gradients of the shifted template.  Because the model itself (not its
linearisation) is evaluated at every step, the converged shift is the weighted least-squares
shift and carries no scale error from finite-difference gradients.  Pixels whose residual
exceeds ``clip_sigma`` robust standard deviations (unflagged cosmic rays) are dropped and the
fit repeated.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tso_steps.stats import robust_std

from .gauss_newton import weighted_step

__all__ = ["TemplateFit", "fit_template_shifts"]

_MIN_PIXELS = 8
#: B-spline order of the sub-pixel shifts
SPLINE_ORDER = 5


class TemplateFit:
    """Per-integration results of :func:`fit_template_shifts` (arrays of length nints).

    Attributes
    ----------
    shift_x, shift_y : ndarray
        Shift of each integration relative to the template, pixels (NaN where the fit failed).
    shift_x_err, shift_y_err : ndarray
        Formal 1-sigma uncertainties from the weights, pixels.
    scale : ndarray
        Flux relative to the template.
    offset : ndarray
        Additive background change, data units.
    n_pixels : ndarray of int
        Pixels used in the final fit.
    n_clipped : ndarray of int
        Pixels rejected by the residual clip.
    """

    def __init__(self, nints):
        nan = np.full(nints, np.nan)
        self.shift_x, self.shift_y = nan.copy(), nan.copy()
        self.shift_x_err, self.shift_y_err = nan.copy(), nan.copy()
        self.scale, self.offset = nan.copy(), nan.copy()
        self.n_pixels = np.zeros(nints, dtype=np.int64)
        self.n_clipped = np.zeros(nints, dtype=np.int64)


def _robust_sigma(values):
    """Robust standard deviation (1.4826 x median absolute deviation)."""
    return robust_std(values)


def _fit_one(d, w, use, coeffs, start, max_iter, tol, max_shift):
    """Gauss-Newton fit of one image; returns (params, covariance, residual) or None.

    On convergence the last (sub-``tol``) update is applied without re-evaluating the model:
    the residual returned (used only for clipping) is that of the previous iterate.
    """
    a, b, sx, sy = start
    for _ in range(max_iter):
        model = ndimage.shift(coeffs, (sy, sx), order=SPLINE_ORDER, mode="mirror", prefilter=False)
        gy, gx = np.gradient(model)
        m, gx, gy = model[use], gx[use], gy[use]
        jac = np.stack([m, np.ones_like(m), -a * gx, -a * gy], axis=1)
        resid = d - (a * m + b)
        solved = weighted_step(jac, resid, w)
        if solved is None:
            return None
        step, cov = solved
        a, b, sx, sy = a + step[0], b + step[1], sx + step[2], sy + step[3]
        if not (np.isfinite(sx) and np.isfinite(sy)) or max(abs(sx), abs(sy)) > max_shift:
            return None
        if max(abs(step[2]), abs(step[3])) < tol:
            break
    return (a, b, sx, sy), cov, resid


def fit_template_shifts(
    data,
    template,
    variance,
    bad,
    inside,
    *,
    clip_sigma=5.0,
    max_iter=10,
    tol=1e-5,
    max_shift=None,
    start_x=None,
    start_y=None,
):
    """Fit the shift, scale and offset of every integration against a template.

    All images are cut-outs around the source (the caller chooses the box); the template must
    be finite everywhere (fill NaN first) and background-subtracted.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Images, data units (e.g. DN/s).
    template : ndarray, shape ``(ny, nx)``
        Background-subtracted template, data units.
    variance : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``
        Per-pixel variance of the data, data units squared.  Non-positive or non-finite
        values exclude the pixel.
    bad : ndarray of bool, shape ``(nints, ny, nx)``
        True for samples that must not be used (DQ, NaN).
    inside : ndarray of bool, shape ``(ny, nx)``
        The fit window.
    clip_sigma : float
        Reject pixels whose weighted residual exceeds this many robust standard deviations,
        then refit (twice at most); 0 disables.
    max_iter : int
        Gauss-Newton iterations per fit.
    tol : float
        Convergence: the shift update is below this, pixels.
    max_shift : float, optional
        A fit moving further than this (pixels) is a failure; default a quarter of the box.
    start_x, start_y : ndarray, optional
        Starting shifts per integration, pixels (default 0; NaN entries start at 0).

    Returns
    -------
    TemplateFit
    """
    nints = data.shape[0]
    if max_shift is None:
        max_shift = 0.25 * min(template.shape)
    coeffs = ndimage.spline_filter(
        np.asarray(template, np.float64), order=SPLINE_ORDER, mode="mirror"
    )
    var = np.broadcast_to(variance, data.shape)
    out = TemplateFit(nints)
    for i in range(nints):
        use = inside & ~bad[i] & np.isfinite(data[i]) & np.isfinite(var[i]) & (var[i] > 0)
        if use.sum() < _MIN_PIXELS:
            continue
        d = data[i][use].astype(np.float64)
        w = 1.0 / var[i][use].astype(np.float64)
        t = template[use]
        # linear start for scale and offset (shift ignored)
        lin = np.stack([t, np.ones_like(t)], axis=1)
        a0, b0 = np.linalg.lstsq(lin * np.sqrt(w)[:, None], d * np.sqrt(w), rcond=None)[0]
        sx0 = start_x[i] if start_x is not None and np.isfinite(start_x[i]) else 0.0
        sy0 = start_y[i] if start_y is not None and np.isfinite(start_y[i]) else 0.0
        start = (a0 if a0 > 0 else 1.0, b0, sx0, sy0)
        n_clipped = 0
        fit = None
        for _round in range(3):
            refit = _fit_one(d, w, use, coeffs, start, max_iter, tol, max_shift)
            if refit is None:
                break  # keep the previous round's fit, if any
            fit = refit
            params, cov, resid = fit
            if clip_sigma <= 0 or _round == 2:
                break
            chi = resid * np.sqrt(w)
            keep = np.abs(chi - np.median(chi)) <= clip_sigma * max(_robust_sigma(chi), 1e-12)
            if keep.all() or keep.sum() < _MIN_PIXELS:
                break
            n_clipped += int((~keep).sum())
            idx = np.flatnonzero(use)[~keep]
            use = use.copy()
            use.flat[idx] = False
            d, w = d[keep], w[keep]
            start = params
        if fit is None:
            continue
        (a, b, sx, sy), cov, _ = fit
        out.shift_x[i], out.shift_y[i] = sx, sy
        out.shift_x_err[i], out.shift_y_err[i] = np.sqrt(cov[2, 2]), np.sqrt(cov[3, 3])
        out.scale[i], out.offset[i] = a, b
        out.n_pixels[i] = int(use.sum())
        out.n_clipped[i] = n_clipped
    return out
