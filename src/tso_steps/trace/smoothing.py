"""Robust penalised spline (P-spline) along the dispersion, stiffness by cross-validation.

Eilers & Marx (1996): a cubic B-spline basis on equally spaced knots, dense enough to follow
any real trace shape, with a second-difference penalty on the coefficients; the penalty's
weight is chosen by generalised cross-validation (GCV), so how much structure the curve
follows is set by the scatter of the data about it, not by a fixed degree.  Points whose
normalised residual is far beyond the robust scatter are rejected and the fit repeated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from tso_steps.stats import MAD_TO_SIGMA

__all__ = ["SplineFit", "penalised_spline"]

_LOG_LAMBDAS = np.linspace(-4.0, 10.0, 29)  # penalty weights tried (log10)


@dataclass
class SplineFit:
    """Result of :func:`penalised_spline`.

    Attributes
    ----------
    curve : ndarray
        The smooth curve at every input abscissa.
    used : ndarray of bool
        Points kept by the robust rejection.
    lam : float
        Penalty weight chosen by GCV.
    edf : float
        Effective degrees of freedom of the curve (trace of the hat matrix).
    """

    curve: np.ndarray
    used: np.ndarray
    lam: float
    edf: float


def _basis(x, lo, hi, spacing):
    """Cubic B-spline design matrix on equally spaced knots covering ``[lo, hi]``."""
    ninterior = max(int(np.ceil((hi - lo) / spacing)), 1)
    step = (hi - lo) / ninterior if hi > lo else 1.0
    knots = lo + step * np.arange(-3, ninterior + 4)
    return BSpline.design_matrix(np.clip(x, lo, hi), knots, 3).toarray()


def _gcv_solve(design, y, w, penalty, known_variance=False):
    """Weighted penalised least squares at the GCV-optimal penalty weight.

    With ``known_variance`` the weights are true inverse variances and the penalty minimises
    the unbiased risk estimate ``RSS_w + 2 edf`` (Mallows' Cp) instead of GCV, which does
    not use the noise level and can follow noise that happens to look structured.

    One Cholesky factor of the normal matrix and one eigen-decomposition of the penalty in
    its frame make every trial weight cost a matrix-vector product (Demmler-Reinsch basis).
    """
    wd = design * w[:, None]
    gram = design.T @ wd
    gram += 1e-10 * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    rhs = wd.T @ y
    lower = np.linalg.cholesky(gram)
    inv_lower = np.linalg.solve(lower, np.eye(gram.shape[0]))
    eigval, eigvec = np.linalg.eigh(inv_lower @ penalty @ inv_lower.T)
    eigval = np.clip(eigval, 0.0, None)
    back = inv_lower.T @ eigvec  # coef = back @ (projected / (1 + lam * eigval))
    projected = eigvec.T @ (inv_lower @ rhs)
    scale = 1.0 / max(float(np.median(eigval[eigval > 0])), 1e-300) if (eigval > 0).any() else 1.0
    n = y.size
    best = None
    for log_lam in _LOG_LAMBDAS:
        lam = 10.0**log_lam * scale
        shrink = 1.0 / (1.0 + lam * eigval)
        coef = back @ (projected * shrink)
        edf = float(shrink.sum())
        if edf >= n - 1:
            continue
        rss = float(np.sum(w * (y - design @ coef) ** 2))
        gcv = rss + np.log(n) * edf if known_variance else n * rss / (n - edf) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, coef, lam, edf)
    return best[1:]


def penalised_spline(
    x, y, sigma, knot_spacing=8.0, clip=4.0, iterations=5, known_variance=False, order=2
):
    """Robust GCV-penalised cubic spline through noisy points.

    Parameters
    ----------
    x, y : ndarray, shape ``(n,)``
        Abscissae (e.g. dispersion columns) and values; NaN values are skipped.
    sigma : ndarray, shape ``(n,)``
        1-sigma errors of ``y`` (weights ``1/sigma^2``); non-finite or non-positive: skipped.
        The 10th percentile is used as a floor so that a few very bright points cannot
        decide the shape alone.
    knot_spacing : float
        Knot spacing in units of ``x``; only an upper bound on the detail the curve can
        follow (the GCV-chosen penalty decides how much it does).
    clip : float
        Points whose normalised residual exceeds ``clip`` times the robust scatter of the
        normalised residuals (at least ``clip`` sigma) are rejected, iteratively.
    iterations : int
        Rejection rounds.
    known_variance : bool
        ``sigma`` are the true errors (not only relative ones): the stiffness minimises the
        unbiased risk (Mallows' Cp) rather than GCV, and no error floor is applied.
    order : int
        Order of the coefficient differences penalised: 2 (the stiffest curve is a straight
        line) or 1 (a constant).

    Returns
    -------
    SplineFit
        ``curve`` is NaN everywhere when fewer than 4 points are usable.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(sigma) & (sigma > 0)
    if good.sum() < 4:
        return SplineFit(np.full(x.shape, np.nan), good, np.nan, np.nan)
    floor = 0.0 if known_variance else np.percentile(sigma[good], 10)
    weight = 1.0 / np.maximum(np.where(good, sigma, np.inf), floor) ** 2
    lo, hi = float(x[good].min()), float(x[good].max())
    design_all = _basis(np.where(np.isfinite(x), x, lo), lo, hi, knot_spacing)
    ncoef = design_all.shape[1]
    diff = np.diff(np.eye(ncoef), n=order, axis=0)
    penalty = diff.T @ diff
    curve, lam, edf = np.full(x.shape, np.nan), np.nan, np.nan
    for _ in range(iterations):
        coef, lam, edf = _gcv_solve(
            design_all[good], y[good], weight[good], penalty, known_variance
        )
        curve = design_all @ coef
        norm = (y - curve) * np.sqrt(weight)
        scatter = MAD_TO_SIGMA * np.median(np.abs(norm[good]))
        new = good & (np.abs(norm) <= clip * max(scatter, 1.0))
        if new.sum() == good.sum() or new.sum() < 4:
            break
        good = new
    curve = np.where(np.isfinite(x), curve, np.nan)
    return SplineFit(curve, good, float(lam), float(edf))
