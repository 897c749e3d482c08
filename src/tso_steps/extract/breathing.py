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


def width_estimates(data, profile, width, variance, used, flux, *, return_change=False):
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
    return_change : bool
        Also return how the pixels change per unit width once the column fluxes are refitted.

    Returns
    -------
    estimate, variance : ndarray, shape ``(n,)``
        NaN where nothing constrains the width.
    change : ndarray, shape ``(n, nrow, n_disp)``
        With ``return_change``.
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
        out = np.where(ok, num / info, np.nan), np.where(ok, 1.0 / info, np.nan)
    return (*out, f * perp) if return_change else out


def _loglike(y, s2, q, c):
    """Log-likelihoods of ``y`` under random walks observed with noise, for many walks at once.

    ``q`` and ``c`` are arrays of hyperparameters: the step variance of each walk and the
    factor on the measurement variances ``s2``.

    The first state has a diffuse prior; its likelihood term is left out (the same for any
    hyperparameters), so the values compare directly.
    """
    mean = np.full(q.shape, y[0])
    var = c * s2[0]
    loglike = np.zeros(q.shape)
    for i in range(1, y.size):
        var = var + q
        total = var + c * s2[i]
        resid = y[i] - mean
        loglike -= 0.5 * (np.log(2 * np.pi * total) + resid * resid / total)
        gain = var / total
        mean = mean + gain * resid
        var = (1 - gain) * var
    return loglike


def _smoothed_path(y, s2, q):
    """Posterior mean of a random walk of step variance ``q`` (Kalman filter, then RTS)."""
    n = y.size
    mean_f, var_f, mean_p, var_p = (np.empty(n) for _ in range(4))
    mean, var = y[0], s2[0]
    mean_f[0], var_f[0], mean_p[0], var_p[0] = mean, var, mean, np.inf
    for i in range(1, n):
        var = var + q
        mean_p[i], var_p[i] = mean, var
        gain = var / (var + s2[i])
        mean, var = mean + gain * (y[i] - mean), (1 - gain) * var
        mean_f[i], var_f[i] = mean, var
    smooth = mean_f.copy()
    for i in range(n - 2, -1, -1):
        gain = var_f[i] / var_p[i + 1] if var_p[i + 1] > 0 else 0.0
        smooth[i] = mean_f[i] + gain * (smooth[i + 1] - mean_p[i + 1])
    return smooth


def random_walk_smooth(estimate, variance):
    """Smoothed series: random walk with the step variance of maximum marginal likelihood.

    The measurement variances are trusted up to a common factor, fitted as well: scatter
    beyond them that does not persist from one integration to the next (e.g. a profile
    misfit that depends on the sub-pixel phase) then inflates the noise, not the walk.

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
    factors = 2.0 ** np.arange(-1.0, 3.01, 0.5)
    q, c = (a.ravel() for a in np.meshgrid(steps, factors, indexing="ij"))
    loglike = _loglike(yy, ss, q, c).reshape(steps.size, factors.size)
    constant = loglike[0].max()
    k, j = np.unravel_index(np.argmax(loglike), loglike.shape)
    # one hyperparameter more than a constant: BIC asks for 0.5 ln(n) of likelihood
    if loglike[k, j] - constant <= 0.5 * np.log(n):
        k, j = 0, int(np.argmax(loglike[0]))
    path = _smoothed_path(yy, factors[j] * ss, steps[k])
    return np.interp(np.arange(y.size), index, path), float(steps[k])
