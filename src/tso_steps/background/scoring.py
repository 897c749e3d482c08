"""Score a background subtraction against a simulation's injected background.

Used by the tests and the benchmark of ``tso_background``.  Definitions (see
``docs/steps/tso_background.rst``):

* the **residual** on a region R is the RMS over integrations of the mean over R of
  ``fitted background - true background`` (what the background error adds to a sum over R,
  per pixel);
* the **noise floor** is the error of the ideal estimator that knows the true shape of the
  background and fits only its level, per integration, by inverse-variance weighted least
  squares to the same unilluminated pixels: ``|mean_R(B)| / sqrt(sum_off B**2 / var)``
  with ``var = var_poisson + var_rnoise``;
* the **realised floor** (:func:`ideal_level_residual`) is that ideal estimator run on the
  same noise realisation (samples hit by a cosmic ray left out by an oracle), so that the
  ratio of the two residuals does not carry the sampling scatter of an RMS over a few tens
  of integrations;
* the **transit depth** of a light curve is the least-squares ``D`` of
  ``F_i = F0 * (1 - D * shape_i)``, ``shape_i`` the true transit shape scaled to 1 at its
  deepest.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ideal_level_residual", "level_noise_floor", "region_residual"]


def region_residual(fitted, true, region):
    """RMS over integrations of the region-mean background error.

    Parameters
    ----------
    fitted : ndarray, shape ``(nints, ny, nx)``
        Subtracted background per integration.
    true : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``
        Injected background.
    region : ndarray of bool, shape ``(ny, nx)``

    Returns
    -------
    float
        Same units as the inputs.
    """
    error = np.asarray(fitted, np.float64) - np.asarray(true, np.float64)
    error = np.broadcast_to(error, np.shape(fitted))
    per_int = error[:, region].mean(axis=1)
    return float(np.sqrt(np.mean(per_int**2)))


def level_noise_floor(true, variance, fit_pixels, region):
    """Error of the ideal one-parameter (level) fit of the true background shape.

    Parameters
    ----------
    true : ndarray, shape ``(ny, nx)``
        Injected background shape (any positive scale).
    variance : ndarray, shape ``(ny, nx)``
        Per-pixel variance of one integration (``var_poisson + var_rnoise``), data units
        squared.
    fit_pixels : ndarray of bool, shape ``(ny, nx)``
        Unilluminated pixels available to the fit.
    region : ndarray of bool, shape ``(ny, nx)``
        Where the error is measured.

    Returns
    -------
    float
        Standard deviation of the region-mean background error, data units.
    """
    true = np.asarray(true, np.float64)
    information = np.sum(true[fit_pixels] ** 2 / variance[fit_pixels])
    return float(abs(true[region].mean()) / np.sqrt(information))


def ideal_level_residual(data, true, variance, fit_pixels, region, clip=5.0):
    """Residual of the ideal level-only fit of the true shape, on the same data.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Data with the background in them (source pixels are not used).
    true : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``
        Injected background of each integration.
    variance : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``
        ``var_poisson + var_rnoise``.
    fit_pixels : ndarray of bool, shape ``(ny, nx)``
        Unilluminated pixels the fit uses.
    region : ndarray of bool, shape ``(ny, nx)``
        Where the error is measured.
    clip : float
        Samples deviating from the truth by more than ``clip * sqrt(variance)`` (cosmic
        rays) are left out.

    Returns
    -------
    float
        RMS over integrations of the region-mean error, as :func:`region_residual`.
    """
    data = np.asarray(data, np.float64)
    true = np.broadcast_to(np.asarray(true, np.float64), data.shape)
    variance = np.broadcast_to(np.asarray(variance, np.float64), data.shape)
    good = fit_pixels[None] & (np.abs(data - true) <= clip * np.sqrt(variance))
    weight = np.where(good, true / variance, 0.0)
    scale = (weight * np.where(good, data, 0.0)).sum(axis=(1, 2)) / (weight * true).sum(axis=(1, 2))
    errors = (scale - 1.0) * true[:, region].mean(axis=1)
    return float(np.sqrt(np.mean(errors**2)))
