"""Where a NIRISS/SOSS trace "is": the centre convention of pastasoss's trace model.

The SOSS cross-dispersion profile is the defocused image of the pupil: about 23 px wide, flat
topped, with two horns whose heights change along the order.  Its centre is therefore a
convention, and the usual definitions differ by tenths of a pixel on real data.  On the
program 1512 frame (``tests/data/real``), relative to pastasoss at the header PWCPOS (medians
over the columns), order 1 / order 2: flux-weighted centroid in a +-10 to +-14 px window
+0.38 to +0.45 / +0.30 to +0.58 px; midpoint of the half-maximum edges +0.22 / +0.19 px;
midpoint of the steepest rising and falling edges (applesoss's edge trigger, 11-row slope
window) +0.05 / +0.38 px; highest point +7.5 / +10 px (a horn).

pastasoss's reference traces (``jwst_niriss_gr700xd_order{1,2}_trace_refmodel*.txt``, by
T. Baines and N. Espinoza, March 2023 - March 2024) do not state how they were measured.  Two
months before the first of them, their author added to transitspectroscopy (commit d6ea3c9,
2023-01-18) a SOSS tracing method that takes the peak of each column's cross-correlation with
two Gaussians at +-7.5 px of sigma 3 px.  That definition reproduces pastasoss on the same
frame to +0.01 px (order 1) and +0.09 px (order 2), and it is specific: moving the Gaussians'
separation or width by 1 px moves the centre by 0.05-0.2 px.  It is the convention of
:func:`soss_profile_centre`, so that an offset fitted against pastasoss measures where the
star is, not the difference between two definitions of the centre.

The convention belongs to SOSS's wide two-horned profile: for a profile much narrower than the
+-7.5 px pair, the correlation peaks where one Gaussian of the pair sits on the profile, and
there is no centre in this sense (:func:`soss_profile_centre` returns NaN).
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
