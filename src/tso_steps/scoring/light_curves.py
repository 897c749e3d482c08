"""Light-curve and spectrum scores against a simulation's truth.

Part of :mod:`tso_steps.scoring`: transit depths (:func:`fit_transit_scale`), extracted
spectra (:func:`white_light_scatter`, :func:`channel_error_ratio`, :func:`true_profile_cube`)
and background subtraction (:func:`region_residual`, :func:`level_noise_floor`,
:func:`ideal_level_residual`).

Background definitions (see ``docs/steps/tso_background.rst``):

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

import dataclasses

import numpy as np

from tso_steps.trace.geometry import to_dispersion_last

__all__ = [
    "TransitFit",
    "channel_error_ratio",
    "fit_transit_scale",
    "ideal_level_residual",
    "level_noise_floor",
    "region_residual",
    "true_profile_cube",
    "white_light_scatter",
]


@dataclasses.dataclass(frozen=True)
class TransitFit:
    """Result of :func:`fit_transit_scale`.

    Attributes
    ----------
    scale, scale_error : float
        Recovered depth in units of the injected one (1 = unbiased), and its 1-sigma error
        (NaN when nothing was injected).
    baseline : float
        Out-of-transit level of the measured flux.
    residual_rms : float
        Scatter of the measured relative flux about the fit.
    """

    scale: float
    scale_error: float
    baseline: float
    residual_rms: float

    @property
    def pull(self):
        """float : Deviation of the scale from 1 in units of its error."""
        return (self.scale - 1.0) / self.scale_error

    @property
    def scatter_ppm(self):
        """float : ``residual_rms`` in parts per million."""
        return 1e6 * self.residual_rms


def fit_transit_scale(flux, light_curve):
    """Fit a measured light curve with the injected one, scaled in depth.

    Model: ``flux = baseline * (1 - scale * (1 - light_curve))``, linear least squares in
    ``baseline`` and ``baseline * scale`` over the finite samples.  ``scale`` is 1 when the
    injected depth is recovered without bias.

    Parameters
    ----------
    flux : array-like, shape (nints,)
        Measured flux per integration (any unit).
    light_curve : array-like, shape (nints,)
        The injected relative flux (e.g. ``truth.light_curve`` or one channel of
        ``truth.spectral_light_curves``).

    Returns
    -------
    TransitFit
        Without an injected transit (``light_curve`` all 1) only the baseline and the
        scatter are fitted; the scale and its error are NaN.
    """
    flux = np.asarray(flux, dtype=np.float64)
    dip = 1.0 - np.asarray(light_curve, dtype=np.float64)
    good = np.isfinite(flux) & np.isfinite(dip)
    if good.sum() < 3:
        raise ValueError("fit_transit_scale needs at least 3 finite samples.")
    flux, dip = flux[good], dip[good]
    if not np.any(dip != 0):
        baseline = float(np.mean(flux))
        rms = float(np.std(flux, ddof=1)) / abs(baseline)
        return TransitFit(np.nan, np.nan, baseline, rms)
    design = np.stack([np.ones(flux.size), -dip], axis=1)
    coeffs, *_ = np.linalg.lstsq(design, flux, rcond=None)
    residual = flux - design @ coeffs
    sigma2 = float(residual @ residual) / max(flux.size - 2, 1)
    cov = sigma2 * np.linalg.inv(design.T @ design)
    baseline, product = coeffs
    scale = product / baseline
    # first-order error of the ratio product / baseline, with their covariance
    variance = (
        cov[1, 1] / baseline**2
        + product**2 * cov[0, 0] / baseline**4
        - 2.0 * product * cov[0, 1] / baseline**3
    )
    return TransitFit(
        scale=float(scale),
        scale_error=float(np.sqrt(max(variance, 0.0))),
        baseline=float(baseline),
        residual_rms=float(np.sqrt(sigma2) / abs(baseline)),
    )


def true_profile_cube(truth):
    """Noiseless source of every integration, dispersion last: the true extraction profile.

    Parameters
    ----------
    truth : `~tso_steps.simulate.SimulationTruth`

    Returns
    -------
    ndarray, shape ``(nints, n_cross, n_disp)``
    """
    cube = np.array([truth.source_image(i) for i in range(truth.nints)])
    return to_dispersion_last(cube, truth.dispersion_axis)


def white_light_scatter(flux, light_curve):
    """Fractional scatter of the white light after dividing by the true light curve.

    Parameters
    ----------
    flux : ndarray, shape ``(nints, n_disp)``
    light_curve : ndarray, shape ``(nints,)``

    Returns
    -------
    float
    """
    white = np.nansum(flux, axis=1) / light_curve
    return float(np.std(white / np.median(white)))


def channel_error_ratio(flux, error, light_curves, width=8):
    """Median over channels of the mean FLUX_ERROR over the empirical scatter.

    Channels of ``width`` columns; the empirical scatter is the standard deviation over
    integrations of the channel flux after dividing out its true light curve.

    Parameters
    ----------
    flux, error : ndarray, shape ``(nints, n_disp)``
    light_curves : ndarray, shape ``(nints, n_disp)``
        ``truth.spectral_light_curves()[:, order]``.
    width : int

    Returns
    -------
    float
    """
    lit = np.flatnonzero(np.all(np.isfinite(flux), axis=0))
    lit = lit[: lit.size // width * width]
    f = flux[:, lit].reshape(len(flux), -1, width).sum(axis=2)
    e = np.sqrt((error[:, lit] ** 2).reshape(len(flux), -1, width).sum(axis=2))
    lc = light_curves[:, lit].reshape(len(flux), -1, width).mean(axis=2)
    level = np.median(f / lc, axis=0)
    scatter = np.std(f - level * lc, axis=0, ddof=1)
    return float(np.median(np.mean(e, axis=0) / scatter))


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
