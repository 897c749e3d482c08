"""Score extracted spectra against a simulation's truth (tests, benchmarks, demo)."""

from __future__ import annotations

import numpy as np

from tso_steps.trace.geometry import to_dispersion_last

__all__ = [
    "channel_error_ratio",
    "formal_white_error",
    "true_profile_cube",
    "white_light_scatter",
]


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


def formal_white_error(flux, error):
    """White-light fractional error predicted by the per-column errors (noise limit).

    With the errors of an extraction handed the true profile, this is the photon + read
    noise limit of an optimal extraction.

    Parameters
    ----------
    flux, error : ndarray, shape ``(nints, n_disp)``

    Returns
    -------
    float
    """
    return float(np.median(np.sqrt(np.nansum(error**2, axis=1)) / np.nansum(flux, axis=1)))
