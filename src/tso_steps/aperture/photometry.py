"""Per-integration circular-aperture photometry with a clipped annulus (plain numpy).

Every integration gets its own aperture centre (and, optionally, radius).  The aperture sum
uses photutils' exact sub-pixel overlap of a circle with the pixel grid, so a centre that
moves by a fraction of a pixel changes the sum smoothly; the background is the
sigma-clipped median of the annulus pixels (whole pixels whose centres fall inside it).
"""

from __future__ import annotations

import logging

import numpy as np
from photutils.aperture import CircularAnnulus, CircularAperture

from tso_steps.centroid.window import find_window

__all__ = [
    "FLAG_BITS",
    "MEDIAN_VARIANCE_FACTOR",
    "aperture_series",
    "blank_lost",
    "clipped_median",
    "covers_array",
    "default_radii",
    "local_centre",
    "flag_counts",
    "scale_fluxes",
    "scaled_radii",
]

log = logging.getLogger("stpipe.tso_steps.aperture")

#: Bits of the per-integration ``flags`` column.
FLAG_BITS = {
    "MASKED_PIXELS": 1,  # the aperture held DO_NOT_USE or NaN pixels
    "OFF_ARRAY": 2,  # part of the aperture falls outside the array
    "CENTROID_FALLBACK": 4,  # no input centroid: a local centre of mass (or the median) was used
    "FEW_ANNULUS_PIXELS": 8,  # fewer than MIN_ANNULUS_PIXELS usable: no background
}

#: Variance of the median of n Gaussian samples is pi/2 times that of their mean.
MEDIAN_VARIANCE_FACTOR = np.pi / 2.0

MIN_ANNULUS_PIXELS = 10
_MAD_TO_SIGMA = 1.482602218505602


def clipped_median(values, clip_sigma=3.0, max_iters=10):
    """Sigma-clipped median of a 1-D sample (median centre, MAD scale).

    Parameters
    ----------
    values : ndarray, 1-D
        Finite values.
    clip_sigma : float
        Reject values further than this many robust sigma from the median; 0 disables.
    max_iters : int
        Maximum clipping iterations.

    Returns
    -------
    median : float
        NaN for an empty sample.
    keep : ndarray of bool
        The values used for the final median.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.ones(values.shape, dtype=bool)
    if values.size == 0:
        return np.nan, keep
    median = float(np.median(values))
    if clip_sigma <= 0:
        return median, keep
    for _ in range(max_iters):
        sigma = _MAD_TO_SIGMA * np.median(np.abs(values[keep] - median))
        if not sigma > 0:
            break
        new = np.abs(values - median) <= clip_sigma * sigma
        if np.array_equal(new, keep) or not new.any():
            break
        keep = new
        median = float(np.median(values[keep]))
    return median, keep


def default_radii(
    template,
    x,
    y,
    *,
    radius=None,
    radius_inner=None,
    radius_outer=None,
    gap=2.0,
    annulus_area_ratio=3.0,
):
    """Aperture and annulus radii that fit the PSF of a median frame.

    The aperture radius is the radius of the centroid fit window
    (:func:`tso_steps.centroid.find_window`): where the azimuthal mean profile of the median
    frame drops below 1 % of its peak, plus 3 pixels (room for jitter and the faint wings).
    The annulus starts ``gap`` pixels further out and, by default, has
    ``annulus_area_ratio`` times the aperture's area (parts that fall off the array are
    simply not used).

    Parameters
    ----------
    template : ndarray, shape ``(ny, nx)``
        Median frame, data units; NaN where unknown.
    x, y : float
        Source position, 0-based pixels.
    radius, radius_inner, radius_outer : float, optional
        Values to keep instead of the defaults, pixels.
    gap : float
        Pixels between the aperture and the annulus.
    annulus_area_ratio : float
        Annulus area over aperture area when ``radius_outer`` is not given.

    Returns
    -------
    radius, radius_inner, radius_outer : float
        Pixels.

    Raises
    ------
    ValueError
        If the radii are not increasing.
    """
    if radius is None:
        radius = find_window(template, center=(x, y)).radius
    if radius_inner is None:
        radius_inner = radius + gap
    if radius_outer is None:
        radius_outer = np.sqrt(radius_inner**2 + annulus_area_ratio * radius**2)
    if not 0 < radius <= radius_inner < radius_outer:
        raise ValueError(
            f"Need 0 < radius <= radius_inner < radius_outer, got {radius}, {radius_inner}, "
            f"{radius_outer}."
        )
    return float(radius), float(radius_inner), float(radius_outer)


def local_centre(image, bad, x, y, radius, n_iter=30):
    """Centre of mass inside a circle that follows it (mean shift), from ``(x, y)``.

    A fallback for integrations whose centroid is missing (e.g. the pointing moved further
    than the centroid fit allows).  The image median is subtracted and only positive pixels
    count.

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
    bad : ndarray of bool, shape ``(ny, nx)``
        Pixels not to use.
    x, y : float
        Start, 0-based pixels.
    radius : float
        Circle radius, pixels.
    n_iter : int
        Maximum iterations.

    Returns
    -------
    x, y : float
        The start position if no positive flux is found.
    """
    good = ~bad & np.isfinite(image)
    if not good.any():
        return float(x), float(y)
    sub = np.where(good, image - np.median(image[good]), 0.0)
    sub = np.clip(sub, 0.0, None)
    yy, xx = np.indices(image.shape)
    cx, cy = float(x), float(y)
    for _ in range(n_iter):
        w = sub * ((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)
        total = w.sum()
        if not total > 0:
            return float(x), float(y)
        nx_, ny_ = float((w * xx).sum() / total), float((w * yy).sum() / total)
        moved = np.hypot(nx_ - cx, ny_ - cy)
        cx, cy = nx_, ny_
        if moved < 1e-3:
            break
    return cx, cy


def _cut(mask_obj, shape):
    """Overlap slices of a photutils ApertureMask with an array, or None if disjoint."""
    big, small = mask_obj.get_overlap_slices(shape)
    if big is None:
        return None
    return big, mask_obj.data[small]


def aperture_series(
    data,
    x,
    y,
    radius,
    radius_inner,
    radius_outer,
    *,
    variance=None,
    mask=None,
    template=None,
    clip_sigma=3.0,
    statistic="median",
):
    """Aperture photometry of every integration at its own centre.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Images, any linear unit (DN/s, MJy/sr).
    x, y : array-like, shape ``(nints,)``
        Aperture centres, 0-based pixels; NaN entries are replaced by
        :func:`local_centre` started at the median centre (flag ``CENTROID_FALLBACK``).
    radius : float or array-like of shape ``(nints,)``
        Aperture radius per integration, pixels.
    radius_inner, radius_outer : float
        Annulus radii, pixels (the same for every integration).
    variance : ndarray, shape ``(nints, ny, nx)``, optional
        Per-pixel variance, data units squared (e.g. VAR_POISSON + VAR_RNOISE); without it
        the errors are NaN.
    mask : ndarray of bool, shape ``(nints, ny, nx)`` or ``(ny, nx)``, optional
        True for samples not to use (DO_NOT_USE); non-finite samples are always masked.
    template : ndarray, shape ``(ny, nx)``, optional
        Median frame.  When given, masked pixels inside the aperture are filled with the
        template (background-matched and scaled to the integration's unmasked aperture
        flux) instead of being dropped, so a bad pixel does not bias the light curve.
    clip_sigma : float
        Annulus clipping threshold, robust sigma; 0 disables.
    statistic : {"median", "mean"}
        Background per pixel: the median or the mean of the annulus pixels kept by the
        clipping (the mean has 2/pi of the median's variance for Gaussian noise).

    Returns
    -------
    dict of str to ndarray
        One value per integration: ``aperture_x``, ``aperture_y``, ``radius`` (px),
        ``aperture_sum``, ``aperture_sum_err``, ``aperture_area`` (px, exact overlap of the
        used pixels), ``annulus_sum``, ``annulus_sum_err`` (sum of the usable annulus
        pixels), ``annulus_area`` (number of usable annulus pixels), ``annulus_median``,
        ``annulus_median_err`` (clipped median per pixel), ``annulus_clipped`` (pixels
        rejected), ``aperture_bkg``, ``aperture_bkg_err``, ``net_aperture_sum``,
        ``net_aperture_sum_err`` (data units), ``n_masked`` (masked pixels overlapping the
        aperture) and ``flags`` (bits of :data:`FLAG_BITS`).
    """
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}.")
    var_factor = MEDIAN_VARIANCE_FACTOR if statistic == "median" else 1.0
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"data must be (nints, ny, nx), got shape {data.shape}.")
    nints, ny, nx = data.shape
    x = np.array(x, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (nints,))
    flags = np.zeros(nints, dtype=np.int32)
    missing = ~(np.isfinite(x) & np.isfinite(y))
    if missing.all():
        raise ValueError("No integration has a centroid.")
    x0, y0 = np.median(x[~missing]), np.median(y[~missing])
    for i in np.nonzero(missing)[0]:
        bad = (
            ~np.isfinite(data[i])
            if mask is None
            else ~np.isfinite(data[i]) | (mask if mask.ndim == 2 else mask[i])
        )
        x[i], y[i] = local_centre(data[i], bad, x0, y0, radius[i])
    flags[missing] |= FLAG_BITS["CENTROID_FALLBACK"]

    names = (
        "aperture_sum aperture_sum_err aperture_area annulus_sum annulus_sum_err annulus_area "
        "annulus_median annulus_median_err annulus_clipped aperture_bkg aperture_bkg_err"
    ).split()
    out = {name: np.full(nints, np.nan) for name in names}
    n_masked = np.zeros(nints, dtype=np.int32)

    tpl_bkg = None
    for i in range(nints):
        image = data[i]
        bad = ~np.isfinite(image)
        if mask is not None:
            bad = bad | (mask if mask.ndim == 2 else mask[i])
        var = None if variance is None else variance[i]

        # background: clipped median of whole annulus pixels
        ann = _cut(
            CircularAnnulus((x[i], y[i]), radius_inner, radius_outer).to_mask(method="center"),
            (ny, nx),
        )
        bkg, bkg_var = np.nan, np.nan
        if ann is not None:
            big, w = ann
            use = (w > 0) & ~bad[big]
            values = image[big][use]
            out["annulus_area"][i] = values.size
            out["annulus_sum"][i] = values.sum()
            if var is not None:
                out["annulus_sum_err"][i] = np.sqrt(np.sum(var[big][use]))
            if values.size >= MIN_ANNULUS_PIXELS:
                bkg, keep = clipped_median(values, clip_sigma)
                if statistic == "mean":
                    bkg = float(np.mean(values[keep]))
                out["annulus_clipped"][i] = values.size - keep.sum()
                if var is not None:
                    used_var = var[big][use][keep]
                    bkg_var = var_factor * np.mean(used_var) / keep.sum()
        if not np.isfinite(bkg):
            flags[i] |= FLAG_BITS["FEW_ANNULUS_PIXELS"]
        out["annulus_median"][i] = bkg
        out["annulus_median_err"][i] = np.sqrt(bkg_var)

        # aperture: exact overlap weights
        ap_mask = CircularAperture((x[i], y[i]), radius[i]).to_mask(method="exact")
        ap = _cut(ap_mask, (ny, nx))
        if ap is None:
            flags[i] |= FLAG_BITS["OFF_ARRAY"]
            continue
        big, w = ap
        if w.sum() < ap_mask.data.sum() - 1e-6:
            flags[i] |= FLAG_BITS["OFF_ARRAY"]
        d = np.array(image[big], dtype=np.float64)
        b = bad[big] & (w > 0)
        n_masked[i] = b.sum()
        v = None if var is None else np.array(var[big], dtype=np.float64)
        if n_masked[i]:
            flags[i] |= FLAG_BITS["MASKED_PIXELS"]
            if template is not None and np.isfinite(bkg):
                if tpl_bkg is None:
                    tpl_bkg = float(np.nanmedian(template))
                d, b, v = _fill(d, b, v, w, template[big] - tpl_bkg, bkg)
            w = np.where(b, 0.0, w)
            d = np.where(b, 0.0, d)
        # pixels outside the aperture (w = 0) may be NaN: keep them out of the sums
        d = np.where(w > 0, d, 0.0)
        if v is not None:
            v = np.where(w > 0, v, 0.0)
        out["aperture_sum"][i] = np.sum(w * d)
        out["aperture_area"][i] = w.sum()
        if v is not None:
            out["aperture_sum_err"][i] = np.sqrt(np.sum(w**2 * np.where(b, 0.0, v)))
        out["aperture_bkg"][i] = bkg * out["aperture_area"][i]
        out["aperture_bkg_err"][i] = np.sqrt(bkg_var) * out["aperture_area"][i]

    out["net_aperture_sum"] = out["aperture_sum"] - out["aperture_bkg"]
    out["net_aperture_sum_err"] = np.hypot(out["aperture_sum_err"], out["aperture_bkg_err"])
    out.update(aperture_x=x, aperture_y=y, radius=np.array(radius), n_masked=n_masked, flags=flags)
    return out


def _fill(d, b, v, w, source_template, bkg):
    """Replace masked aperture pixels by the background plus the scaled source template."""
    good = (w > 0) & ~b & np.isfinite(source_template)
    num = np.sum(w[good] * (d[good] - bkg))
    den = np.sum(w[good] * source_template[good])
    fillable = b & np.isfinite(source_template)
    if not (den > 0 and num > 0) or not fillable.any():
        return d, b, v
    d = d.copy()
    d[fillable] = bkg + (num / den) * source_template[fillable]
    if v is not None:
        # an interpolated value: give it the median variance of its unmasked neighbours
        v = v.copy()
        v[fillable] = np.nanmedian(v[good]) if good.any() else 0.0
    return d, b & ~fillable, v


def scaled_radii(radius, width_x, width_y):
    """Per-integration radii that follow the PSF size.

    ``radius_i = radius * s_i / median(s)`` with ``s_i = sqrt(width_x_i * width_y_i)``;
    integrations with no finite width keep ``radius``.

    Parameters
    ----------
    radius : float
        Radius at the median PSF size, pixels.
    width_x, width_y : array-like, shape ``(nints,)``
        PSF widths per integration (any consistent measure, e.g. the FWHM-equivalent
        ``psf_width_x`` / ``psf_width_y`` of ``tso_centroid``), pixels.

    Returns
    -------
    ndarray, shape ``(nints,)``
    """
    size = np.sqrt(np.asarray(width_x, dtype=np.float64) * np.asarray(width_y, dtype=np.float64))
    ok = np.isfinite(size) & (size > 0)
    out = np.full(size.shape, float(radius))
    if ok.any():
        out[ok] = radius * size[ok] / np.median(size[ok])
    return out


def covers_array(shape, x, y, radius):
    """True when a circle of ``radius`` at ``(x, y)`` holds every pixel centre of ``shape``."""
    ny, nx = shape
    corners = np.hypot(np.array([0, nx - 1]) - x, np.array([[0], [ny - 1]]) - y)
    return bool(radius >= corners.max())


def blank_lost(results, lost):
    """NaN the per-integration float columns of ``lost`` integrations; flag them MASKED_PIXELS.

    Parameters
    ----------
    results : dict of ndarray
        :func:`aperture_series` output (changed in place).
    lost : ndarray of bool, shape ``(nints,)``
    """
    for name, values in results.items():
        if name not in ("flags", "n_masked", "radius") and np.ndim(values) == 1:
            if np.asarray(values).dtype.kind == "f":
                results[name] = np.where(lost, np.nan, values)
    if np.any(lost):
        results["flags"] = np.where(
            lost, results["flags"] | FLAG_BITS["MASKED_PIXELS"], results["flags"]
        )


def scale_fluxes(results, factor):
    """Multiply the flux columns (sums, backgrounds, net fluxes) of ``results`` in place."""
    for name in results:
        if name.startswith(("aperture_sum", "annulus_sum", "annulus_median", "aperture_bkg")):
            results[name] = results[name] * factor
        elif name.startswith("net_"):
            results[name] = results[name] * factor


def flag_counts(flags, names=("OFF_ARRAY", "FEW_ANNULUS_PIXELS")):
    """How many integrations carry each of the ``names`` flags."""
    flags = np.asarray(flags)
    return {name: int(np.sum((flags & FLAG_BITS[name]) != 0)) for name in names}
