"""Per-integration width of the cross-dispersion profile (PSF breathing), measured from the data.

Thermal "breathing" changes the PSF width by per cents over a visit (smooth drifts, and steps
at tilt events).  A profile of fixed width then weights the pixels of a wider (narrower)
integration as if its light were more (less) concentrated, and the flux follows the width.

Each integration's relative width change ``w_i`` is measured from all its columns at once:
the residual of the fixed-width extraction projected on ``F_x dP/dw`` (the profile's width
derivative, :class:`~tso_steps.extract.pixel_spline.PixelSpline`), made orthogonal to the
profile itself so the column flux does not leak into it.  One integration's estimate is noisy
for a faint source, so the series is smoothed in time by the posterior mean of a random walk
``w_i = w_(i-1) + N(0, q)`` observed with the measured errors (Kalman filter and
Rauch-Tung-Striebel smoother).  ``q`` is the maximum of the marginal likelihood (empirical
Bayes): a drift or a step is followed, a series consistent with noise is flattened.  The
random walk is used only if it beats a constant width by the Bayesian information criterion,
so a steady PSF keeps one width exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_walk_smooth", "width_estimates"]


def width_estimates(data, profile, width, variance, used, flux):
    """Relative width change of every integration, and its variance, from one set of pixels.

    Parameters
    ----------
    data : ndarray, shape ``(n, nrow, n_disp)``
        Background-subtracted band pixels.
    profile : ndarray, shape ``(n, nrow, n_disp)``
        Normalised fixed-width profile (unit column sums, zero outside the aperture).
    width : ndarray, shape ``(n, nrow, n_disp)``
        Derivative of the profile with respect to the relative width, on the same scale.
    variance : ndarray, shape ``(n, nrow, n_disp)``
        Model variance of every pixel.
    used : ndarray of bool, shape ``(n, nrow, n_disp)``
        Pixels to use (not rejected, inside the aperture).
    flux : ndarray, shape ``(n, n_disp)``
        Column fluxes of a smooth model of the spectrum (non-positive: column not used).

    Returns
    -------
    estimate, variance : ndarray, shape ``(n,)``
        NaN where nothing constrains the width.
    """
    p = np.nan_to_num(profile)
    use = used & (p > 0) & (flux[:, None, :] > 0)
    w = np.where(use, 1.0 / np.where(use, variance, 1.0), 0.0)
    h = np.where(use, np.nan_to_num(width), 0.0)
    with np.errstate(all="ignore"):
        # the part of the width derivative that a column's flux cannot mimic
        proj = np.sum(w * p * h, axis=1) / np.sum(w * p * p, axis=1)
        perp = h - np.nan_to_num(proj)[:, None, :] * p
        f = np.where(flux > 0, flux, 0.0)[:, None, :]
        num = np.sum(w * f * perp * np.where(use, data, 0.0), axis=(1, 2))
        info = np.sum(w * (f * perp) ** 2, axis=(1, 2))
        ok = info > 0
        return np.where(ok, num / info, np.nan), np.where(ok, 1.0 / info, np.nan)


def _random_walk(y, s2, q):
    """Log-likelihood of ``y`` under a random walk of step variance ``q``, and its smoothed path.

    The first state has a diffuse prior; its likelihood term is left out (the same for any
    ``q``), so log-likelihoods of different ``q`` compare directly.
    """
    n = y.size
    mean_f, var_f = np.empty(n), np.empty(n)
    mean_p, var_p = np.empty(n), np.empty(n)
    mean, var = y[0], s2[0]  # the diffuse prior updated by the first measurement
    loglike = 0.0
    mean_f[0], var_f[0], mean_p[0], var_p[0] = mean, var, mean, np.inf
    for i in range(1, n):
        var = var + q
        mean_p[i], var_p[i] = mean, var
        total = var + s2[i]
        resid = y[i] - mean
        loglike -= 0.5 * (np.log(2 * np.pi * total) + resid * resid / total)
        gain = var / total
        mean, var = mean + gain * resid, (1 - gain) * var
        mean_f[i], var_f[i] = mean, var
    smooth = mean_f.copy()
    for i in range(n - 2, -1, -1):
        gain = var_f[i] / var_p[i + 1] if var_p[i + 1] > 0 else 0.0
        smooth[i] = mean_f[i] + gain * (smooth[i + 1] - mean_p[i + 1])
    return loglike, smooth


def random_walk_smooth(estimate, variance):
    """Smoothed series: random walk with the step variance of maximum marginal likelihood.

    Parameters
    ----------
    estimate, variance : ndarray, shape ``(n,)``
        Measurements in time order and their variances (NaN: not measured).

    Returns
    -------
    smooth : ndarray, shape ``(n,)``
        Posterior mean at every time (measured or not); the weighted mean everywhere when
        the random walk does not beat a constant by the Bayesian information criterion.
    step : float
        Step variance used (0 for a constant).
    """
    y = np.asarray(estimate, float)
    s2 = np.asarray(variance, float)
    ok = np.isfinite(y) & np.isfinite(s2) & (s2 > 0)
    n = int(ok.sum())
    if n < 3:
        level = np.sum(np.where(ok, y / s2, 0.0)) / max(np.sum(np.where(ok, 1 / s2, 0.0)), 1e-300)
        return np.full(y.shape, level if n else 0.0), 0.0
    index = np.flatnonzero(ok)
    yy, ss = y[ok], s2[ok]
    spread = np.var(yy) + np.mean(ss)
    steps = np.concatenate([[0.0], spread * np.logspace(-8, 1, 46)])
    loglikes = [_random_walk(yy, ss, q)[0] for q in steps]
    best = int(np.argmax(loglikes))
    # one hyperparameter more than a constant: BIC asks for 0.5 ln(n) of likelihood
    if loglikes[best] - loglikes[0] <= 0.5 * np.log(n):
        best = 0
    _, path = _random_walk(yy, ss, steps[best])
    return np.interp(np.arange(y.size), index, path), float(steps[best])
