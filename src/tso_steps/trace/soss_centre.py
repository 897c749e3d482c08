"""Where a NIRISS/SOSS trace "is": the centre convention of pastasoss's trace model.

The SOSS cross-dispersion profile is the defocused image of the pupil: about 23 px wide, flat
topped, with two horns whose heights change along the order.  Its centre is therefore a
convention, and the usual definitions differ by tenths of a pixel on real data (program 1512,
order 1: flux-weighted centroid +0.38 to +0.45 px from pastasoss, midpoint of the half-maximum
edges +0.22 px, midpoint of the steepest edges +0.07 to +0.10 px).

pastasoss's reference traces (``jwst_niriss_gr700xd_order{1,2}_trace_refmodel*.txt``, made by
T. Baines and N. Espinoza in March-May 2023) do not state how they were measured.  Their author
added, two months earlier (transitspectroscopy commit d6ea3c9, 2023-01-18), a SOSS tracing
method that takes the peak of each column's cross-correlation with two Gaussians at +-7.5 px of
sigma 3 px.  That definition reproduces pastasoss on the real program 1512 frame to +0.01 px
(order 1) and +0.09 px (order 2), while moving either kernel parameter by 1 px moves the
centre by 0.1-0.2 px; no other definition tried comes within 0.1 px on both orders.  It is
the convention of :func:`soss_profile_centre`, so that a fitted offset against pastasoss
measures where the star is, not how the centre is defined.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SOSS_HORN_SEPARATION", "SOSS_HORN_SIGMA", "soss_profile_centre"]

#: Half-separation (px) and width (sigma, px) of the two Gaussians of pastasoss's convention.
SOSS_HORN_SEPARATION = 7.5
SOSS_HORN_SIGMA = 3.0
_SEARCH = 5.0  # px: the centre is looked for within this distance of the profile's origin


def soss_profile_centre(u, value, separation=SOSS_HORN_SEPARATION, sigma=SOSS_HORN_SIGMA):
    """Peak of a profile's cross-correlation with two Gaussians at +-``separation``.

    Parameters
    ----------
    u : ndarray
        Equally spaced offsets (pixels) at which the profile is sampled, spanning at least
        ``separation + 3 sigma`` beyond the centre on both sides.
    value : ndarray
        Profile (background removed) at ``u``.
    separation, sigma : float
        Half-separation and standard deviation of the two Gaussians, pixels.

    Returns
    -------
    float
        The lag (in units of ``u``) of the correlation peak, refined by a parabola through
        the three highest samples; NaN when the peak is at the edge of the searched range
        (the profile is not centred near ``u = 0``) or the profile has no positive flux.
    """
    u = np.asarray(u, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    step = float(u[1] - u[0])
    lags = u[np.abs(u) <= _SEARCH]
    if lags.size < 3 or not np.nansum(value) > 0:
        return np.nan
    offsets = u[None, :] - lags[:, None]
    kernel = np.exp(-0.5 * ((offsets - separation) / sigma) ** 2) + np.exp(
        -0.5 * ((offsets + separation) / sigma) ** 2
    )
    correlation = kernel @ np.where(np.isfinite(value), value, 0.0)
    peak = int(np.argmax(correlation))
    if peak == 0 or peak == lags.size - 1:
        return np.nan
    left, middle, right = correlation[peak - 1 : peak + 2]
    curvature = left - 2.0 * middle + right
    if not curvature < 0:
        return float(lags[peak])
    return float(lags[peak] + 0.5 * step * (left - right) / curvature)
