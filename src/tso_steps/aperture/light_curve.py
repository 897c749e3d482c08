"""The light curve of a moving (or fixed) aperture, from arrays: radii, centres, photometry.

:func:`aperture_radii` chooses the aperture and annulus for the median frame and
:func:`aperture_light_curve` measures every integration with them; both take the step's
settings as one :class:`ApertureOptions`.  The per-integration photometry itself is
:func:`~tso_steps.aperture.photometry.aperture_series`.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from tso_steps.aperture.photometry import aperture_series, default_radii, scaled_radii
from tso_steps.centroid.window import median_frame

__all__ = [
    "ApertureOptions",
    "ApertureRadii",
    "aperture_light_curve",
    "aperture_radii",
    "median_template",
]

log = logging.getLogger("stpipe.tso_steps.aperture")


@dataclass(frozen=True)
class ApertureOptions:
    """Settings of the aperture photometry (the ``tso_aperture`` spec; see the step).

    Attributes
    ----------
    centering : {"moving", "fixed"}
        ``moving``: the aperture on each integration's centroid; ``fixed``: on the median
        centroid.
    radius, radius_inner, radius_outer : float, optional
        Aperture radius and annulus radii, pixels; None: from the PSF size of the median
        frame (:func:`~tso_steps.aperture.photometry.default_radii`).
    radius_scale_with_width : bool
        Scale the radius per integration with the PSF size (needs widths).
    clip_sigma : float
        Annulus sigma clip, robust sigma; 0 disables.
    annulus_statistic : {"median", "mean"}
        Background per pixel from the clipped annulus pixels.
    fill_masked : bool
        Fill masked aperture pixels from the scaled median frame instead of dropping them.
    """

    centering: str = "moving"
    radius: float | None = None
    radius_inner: float | None = None
    radius_outer: float | None = None
    radius_scale_with_width: bool = False
    clip_sigma: float = 3.0
    annulus_statistic: str = "median"
    fill_masked: bool = True


@dataclass(frozen=True)
class ApertureRadii:
    """Where and how large the aperture is on the median frame (pixels, 0-based)."""

    x: float
    y: float
    radius: float
    radius_inner: float
    radius_outer: float


def aperture_radii(template, x, y, options):
    """The median centre and the radii of the aperture and annulus.

    Parameters
    ----------
    template : ndarray, shape ``(ny, nx)``
        Median frame (:func:`~tso_steps.centroid.window.median_frame`).
    x, y : ndarray, shape ``(nints,)``
        Centroids per integration, pixels (NaN where unknown).
    options : ApertureOptions

    Returns
    -------
    ApertureRadii

    Raises
    ------
    ValueError
        No finite centroid, or radii that do not increase.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        xm, ym = float(np.nanmedian(x)), float(np.nanmedian(y))
    if not np.isfinite(xm + ym):
        raise ValueError("No integration has a finite centroid.")
    radius, r_in, r_out = default_radii(
        template,
        xm,
        ym,
        radius=options.radius,
        radius_inner=options.radius_inner,
        radius_outer=options.radius_outer,
    )
    return ApertureRadii(xm, ym, radius, r_in, r_out)


def aperture_light_curve(
    data, x, y, radii, *, template, widths=None, variance=None, mask=None, options
):
    """Aperture photometry of every integration with the chosen centring and radii.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Images, any linear unit.
    x, y : ndarray, shape ``(nints,)``
        Centroids per integration, pixels.
    radii : ApertureRadii
        From :func:`aperture_radii`.
    template : ndarray, shape ``(ny, nx)``
        Median frame (fills masked aperture pixels when ``options.fill_masked``).
    widths : tuple of ndarray, optional
        PSF widths ``(x, y)`` per integration, pixels; needed by
        ``options.radius_scale_with_width``.
    variance, mask
        As in :func:`~tso_steps.aperture.photometry.aperture_series`.
    options : ApertureOptions

    Returns
    -------
    dict of str to ndarray
        :func:`~tso_steps.aperture.photometry.aperture_series` output.
    """
    nints = data.shape[0]
    per_integration = radii.radius
    if options.radius_scale_with_width:
        if widths is None:
            raise ValueError("radius_scale_with_width needs the PSF widths per integration.")
        per_integration = np.minimum(scaled_radii(radii.radius, *widths), radii.radius_inner)
        log.info(
            "Radius scaled with the PSF width: %.2f-%.2f px",
            per_integration.min(),
            per_integration.max(),
        )
    if options.centering == "fixed":
        x, y = np.full(nints, radii.x), np.full(nints, radii.y)
    return aperture_series(
        data,
        x,
        y,
        per_integration,
        radii.radius_inner,
        radii.radius_outer,
        variance=variance,
        mask=mask,
        template=template if options.fill_masked else None,
        clip_sigma=options.clip_sigma,
        statistic=options.annulus_statistic,
    )


def median_template(data, mask):
    """The median frame the radii and the masked-pixel fill are taken from."""
    return median_frame(data, mask if mask is None or mask.ndim == 3 else None)
