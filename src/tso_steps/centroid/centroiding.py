"""Per-integration centroids and PSF widths of an imaging time series (plain numpy)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace

import numpy as np
from astropy.table import Table
from photutils.centroids import centroid_2dg, centroid_com
from scipy import ndimage

from tso_steps.centroid.superres import fit_super_template
from tso_steps.centroid.template import SPLINE_ORDER, fit_template_shifts
from tso_steps.centroid.window import (
    FitWindow,
    fill_nans,
    find_window,
    median_frame,
    symmetric_com,
    window_background,
)
from tso_steps.stats import FWHM_PER_SIGMA, MAD_TO_SIGMA, robust_std

__all__ = [
    "FWHM_PER_SIGMA",
    "METHODS",
    "CentroidOptions",
    "measure_centroids",
    "registered_template",
    "second_moment_widths",
]

log = logging.getLogger("stpipe.tso_steps.centroid")

METHODS = ("template", "gaussian", "com")
#: the size-nuisance refinement runs only when positions spread over less than this (px)
_MAX_REFINE_SPREAD = 2.0


def _empirical_variance(data, bad, template):
    """Per-pixel variance ``alpha * max(template, 0) + beta`` fitted to the data's scatter.

    The scatter of each pixel is the robust spread of the differences between consecutive
    integrations (so a tilt event counts once, not for half the series).  Fitting a
    photon-plus-read-noise law to it, rejecting pixels whose scatter is inflated by motion
    (steep PSF edges), gives weights that do not down-weight the most informative pixels.
    """
    cube = np.where(bad, np.nan, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diff = np.diff(cube, axis=0)
        med = np.nanmedian(diff, axis=0)
        scatter = (MAD_TO_SIGMA * np.nanmedian(np.abs(diff - med), axis=0)) ** 2 / 2.0
    signal = np.clip(template, 0.0, None)
    keep = np.isfinite(scatter) & np.isfinite(signal) & (scatter > 0)
    if keep.sum() < 3:
        return np.ones(template.shape)
    alpha, beta = 0.0, float(np.median(scatter[keep]))
    for _ in range(5):
        design = np.stack([signal[keep], np.ones(keep.sum())], axis=1)
        alpha, beta = np.linalg.lstsq(design, scatter[keep], rcond=None)[0]
        alpha, beta = max(alpha, 0.0), max(beta, 1e-12)
        model = alpha * signal + beta
        keep &= scatter < 2.0 * model
    return alpha * signal + beta


def second_moment_widths(image, inside, x, y):
    """FWHM-equivalent widths from the second moments of an image about a centre.

    ``width = 2 sqrt(2 ln 2) sqrt(sum(I (x - xc)^2) / sum(I))`` over the window: the FWHM of
    a Gaussian with the same second moment.  For a defocused (ring) PSF it is a size measure,
    not a literal FWHM.

    Parameters
    ----------
    image : ndarray, 2-D
        Background-subtracted image, finite inside the window.
    inside : ndarray of bool
        Window.
    x, y : float
        Centre, 0-based pixels.

    Returns
    -------
    width_x, width_y : float
        Pixels; NaN if the window holds no positive flux or a moment is negative.
    """
    yy, xx = np.indices(image.shape)
    w = image[inside]
    total = w.sum()
    if not total > 0:
        return np.nan, np.nan
    mxx = (w * (xx[inside] - x) ** 2).sum() / total
    myy = (w * (yy[inside] - y) ** 2).sum() / total
    wx = FWHM_PER_SIGMA * np.sqrt(mxx) if mxx > 0 else np.nan
    wy = FWHM_PER_SIGMA * np.sqrt(myy) if myy > 0 else np.nan
    return float(wx), float(wy)


def _filled_cutouts(data, bad, template, inside, grown, box):
    """Background-subtracted cut-outs with bad pixels replaced by the scaled template.

    The background of each integration is the median outside the (grown) window over the
    whole array; only the box is returned, to keep memory at the size of the window.
    """
    nints = data.shape[0]
    cut_shape = template[box].shape
    out = np.empty((nints, *cut_shape), dtype=np.float64)
    t_box, in_box = template[box], inside[box]
    for i in range(nints):
        good = ~bad[i]
        bkg = window_background(np.where(good, data[i], np.nan), grown)
        sub = data[i][box] - bkg
        use = in_box & good[box]
        t_sum = t_box[use].sum()
        scale = sub[use].sum() / t_sum if t_sum > 0 else 1.0
        out[i] = np.where(good[box], sub, scale * t_box)
    return out


def registered_template(cutouts, shift_x, shift_y):
    """Median of cut-outs shifted to a common position (the median shift).

    Parameters
    ----------
    cutouts : ndarray, shape ``(nints, ny, nx)``
        Finite, background-subtracted images.
    shift_x, shift_y : ndarray
        Shift of each image, pixels (NaN: not used).

    Returns
    -------
    tuple or None
        ``(template, (ref_x, ref_y))``: the sharp template and the shift it sits at (the
        median of the inputs); None if fewer than 2 shifts are finite.
    """
    ok = np.flatnonzero(np.isfinite(shift_x) & np.isfinite(shift_y))
    if ok.size < 2:
        return None
    ref_x, ref_y = np.median(shift_x[ok]), np.median(shift_y[ok])
    moved = np.empty((ok.size, *cutouts.shape[1:]))
    for k, i in enumerate(ok):
        offset = (ref_y - shift_y[i], ref_x - shift_x[i])
        moved[k] = ndimage.shift(cutouts[i], offset, order=SPLINE_ORDER, mode="mirror")
    return np.median(moved, axis=0), (ref_x, ref_y)


@dataclass(frozen=True)
class CentroidOptions:
    """Settings of :func:`measure_centroids` (the ``tso_centroid`` spec; see the step).

    Attributes
    ----------
    method : {"template", "gaussian", "com"}
        ``template``: weighted least-squares shift against the median frame (best for any PSF
        shape, including defocused ones); ``gaussian``: photutils ``centroid_2dg`` (2-D
        Gaussian plus constant); ``com``: photutils ``centroid_com`` (centre of mass).
    center : tuple of float, optional
        ``(x, y)`` 0-based starting position, pixels; default the source found in the median
        frame.
    window_radius : float, optional
        Radius of the circular window, pixels; default from the median frame's profile.
    clip_sigma : float
        Template fit: residual clip in robust sigma (0 disables).
    max_iterations : int
        Template fit: Gauss-Newton iterations.
    fit_width : bool
        Template: refine against a least-squares template built from all integrations, with
        a size scale per integration about the template's light centroid fitted as a
        nuisance (PSF breathing then does not move the centroid), see
        :func:`~tso_steps.centroid.superres.fit_super_template`.
    """

    method: str = "template"
    center: tuple | None = None
    window_radius: float | None = None
    clip_sigma: float = 5.0
    max_iterations: int = 10
    fit_width: bool = True


def measure_centroids(data, *, variance=None, mask=None, options=None, **settings):
    """Centroid and width of the source in every integration of an imaging time series.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Images, any linear unit (DN/s, MJy/sr).
    variance : ndarray, shape ``(ny, nx)`` or ``(nints, ny, nx)``, optional
        Per-pixel variance, data units squared (weights of the template fit, errors of the
        Gaussian fit).  Default (template only): a photon-plus-read-noise law
        ``alpha * template + beta`` fitted to the robust scatter of consecutive-integration
        differences.
    mask : ndarray of bool, shape ``(nints, ny, nx)`` or ``(ny, nx)``, optional
        True for samples not to use.  Non-finite samples are always masked.
    options : CentroidOptions, optional
        Method and fit settings; default ``CentroidOptions()``.
    **settings
        Fields of :class:`CentroidOptions` given as keywords (``method="com"``); they
        override ``options``.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``centroid_x``, ``centroid_y`` (0-based pixels of the array),
        ``psf_width_x``, ``psf_width_y`` (FWHM-equivalent from second moments, pixels) and,
        for ``template``, ``centroid_x_err``, ``centroid_y_err`` (formal 1-sigma, pixels).
        ``meta`` holds the window (``window_x``, ``window_y``, ``window_radius``), the
        ``method`` and the number of clipped pixels (``n_clipped``); with ``fit_width``
        also ``psf_scale`` (size relative to the template).

    Raises
    ------
    ValueError
        For an unknown method, fewer than 2 integrations, or data without a source.
    """
    o = replace(options or CentroidOptions(), **settings)
    method, center, window_radius = o.method, o.center, o.window_radius
    clip_sigma, max_iterations, fit_width = o.clip_sigma, o.max_iterations, o.fit_width
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"data must be (nints, ny, nx), got shape {data.shape}.")
    nints = data.shape[0]
    if nints < 2:
        raise ValueError("Centroiding against a median frame needs at least 2 integrations.")
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= np.broadcast_to(np.asarray(mask, dtype=bool), data.shape)
    if bad.all():
        raise ValueError("Every sample is NaN or masked.")

    median = median_frame(data, bad)
    window = find_window(median, center=center, radius=window_radius)
    box = window.box(median.shape, pad=3)
    oy, ox = box[0].start, box[1].start
    shape = median.shape
    inside = window.mask(shape)[box]
    grown = FitWindow(window.x, window.y, window.radius + 2.0, 0.0).mask(shape)
    template_full = fill_nans(median) - window.background
    template = template_full[box]
    log.info(
        "Source at x=%.3f, y=%.3f in the median frame; window radius %.1f px (%d pixels)",
        window.x,
        window.y,
        window.radius,
        int(inside.sum()),
    )

    filled = _filled_cutouts(data, bad, template_full, window.mask(shape), grown, box)
    cx = np.full(nints, np.nan)
    cy = np.full(nints, np.nan)
    columns = {}
    n_clipped = 0
    if method == "template":
        if variance is None:
            variance = _empirical_variance(data, bad, template_full)
        var = np.broadcast_to(np.asarray(variance, dtype=np.float64), data.shape)
        args = (var[:, box[0], box[1]], bad[:, box[0], box[1]], inside)
        kwargs = {"clip_sigma": clip_sigma, "max_iter": max_iterations}
        fit = fit_template_shifts(data[:, box[0], box[1]], template, *args, **kwargs)
        # The median frame is blurred by the motion it averages over (a tilt event makes it
        # a blend of two positions): register the integrations on the first-pass shifts,
        # take their median as a sharp template and fit again against it.
        sharp = registered_template(filled, fit.shift_x, fit.shift_y)
        if sharp is not None:
            template, (ref_x, ref_y) = sharp
            kwargs.update(start_x=fit.shift_x - ref_x, start_y=fit.shift_y - ref_y)
            fit = fit_template_shifts(data[:, box[0], box[1]], template, *args, **kwargs)
        # absolute position: the template's centre of mass in the window plus the shift
        missing = ~np.isfinite(median[box])
        tx, ty = symmetric_com(template, missing, inside, window.x - ox, window.y - oy)
        cx, cy = ox + tx + fit.shift_x, oy + ty + fit.shift_y
        columns = {"centroid_x_err": fit.shift_x_err, "centroid_y_err": fit.shift_y_err}
        n_clipped = int(fit.n_clipped.sum())
        if fit_width:
            cx, cy, columns, n_clipped = _refine_with_width(
                filled,
                var[:, box[0], box[1]],
                bad[:, box[0], box[1]],
                inside,
                cx - ox,
                cy - oy,
                clip_sigma,
                max_iterations,
                (ox, oy),
                columns,
                n_clipped,
            )
    else:
        error = None
        if variance is not None and method == "gaussian":
            error = np.broadcast_to(np.asarray(variance, dtype=np.float64), data.shape)
        for i in range(nints):
            cut = filled[i]
            try:
                if method == "com":
                    xy = centroid_com(cut, mask=~inside)
                else:
                    err = None
                    if error is not None:
                        err = np.sqrt(np.where(error[i][box] > 0, error[i][box], np.nan))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        xy = centroid_2dg(
                            np.where(bad[i][box], np.nan, cut), error=err, mask=~inside
                        )
            except ValueError as exc:
                log.debug("Integration %d: centroid failed (%s)", i, exc)
                continue
            cx[i], cy[i] = xy[0] + ox, xy[1] + oy

    wx = np.full(nints, np.nan)
    wy = np.full(nints, np.nan)
    for i in range(nints):
        if np.isfinite(cx[i]) and np.isfinite(cy[i]):
            wx[i], wy[i] = second_moment_widths(filled[i], inside, cx[i] - ox, cy[i] - oy)

    failed = int((~np.isfinite(cx)).sum())
    if failed == nints:
        raise ValueError(f"The {method} centroid failed in every integration.")
    if failed:
        log.warning("Centroid failed in %d of %d integrations (NaN)", failed, nints)
    table = Table(
        {"centroid_x": cx, "centroid_y": cy, "psf_width_x": wx, "psf_width_y": wy, **columns}
    )
    table.meta.update(
        method=method,
        window_x=window.x,
        window_y=window.y,
        window_radius=window.radius,
        n_clipped=n_clipped,
    )
    return table


def _refine_with_width(
    cutouts, var, bad, inside, x0, y0, clip_sigma, max_iter, origin, columns, n_clipped
):
    """Refit every integration against a least-squares template with a size nuisance.

    Runs only when the centres of mass spread over less than 2 px (larger motions
    carry samples out of the template's window).  Integrations the first pass lost start
    from their centre of mass.  Falls back to the
    centres of mass (with a warning) if the refined positions do not track them at unit
    slope or change 25 % more from one integration to the next than they do (beyond the
    sampling noise of that comparison over tens of integrations): a template on the
    pixel grid cannot follow the sub-pixel shifts of a strongly undersampled PSF.
    """
    com = np.array(
        [centroid_com(np.where(inside & ~bad[i], c, 0.0)) for i, c in enumerate(cutouts)]
    )
    lost = ~(np.isfinite(x0) & np.isfinite(y0))
    x0, y0 = np.where(lost, com[:, 0], x0), np.where(lost, com[:, 1], y0)
    spread = max(np.nanmax(com, axis=0) - np.nanmin(com, axis=0))  # centres of mass: robust
    if spread > _MAX_REFINE_SPREAD:
        # samples shifted this far leave the template's window; keep the first pass
        log.info("Positions spread over %.2f px: no size-nuisance refinement", spread)
        ox, oy = origin
        return ox + x0, oy + y0, columns, n_clipped
    fit = fit_super_template(
        cutouts,
        var,
        bad,
        inside,
        x0,
        y0,
        oversample=1,
        clip_sigma=clip_sigma,
        max_iter=max_iter,
    )
    ox, oy = origin
    ok = np.isfinite(fit.x) & np.isfinite(fit.y)
    if ok.sum() >= 5 and (
        not _tracks(fit.x[ok], fit.y[ok], com[ok])
        or _jumpiness(fit.x, fit.y) > 1.25 * _jumpiness(com[:, 0], com[:, 1])
    ):
        log.warning(
            "The template positions scatter more than the centres of mass or do not follow "
            "them at unit slope (a PSF too undersampled for a pixel-grid template?); using "
            "centres of mass instead"
        )
        return ox + com[:, 0], oy + com[:, 1], {}, n_clipped
    x, y = np.where(ok, fit.x, x0), np.where(ok, fit.y, y0)
    refined = {"centroid_x_err": fit.x_err, "centroid_y_err": fit.y_err}
    for name, values in refined.items():
        first = columns.get(name)
        refined[name] = values if first is None else np.where(ok, values, first)
    if not ok.all():
        # a refit that does not converge (e.g. too few distinct sub-pixel positions to fix
        # the size) keeps that integration's first-pass position
        log.info(
            "Size-nuisance refit did not converge in %d of %d integrations: their first-pass "
            "positions are kept (psf_scale NaN)",
            int((~ok).sum()),
            ok.size,
        )
    return ox + x, oy + y, {**refined, "psf_scale": fit.scale}, n_clipped + fit.n_clipped


def _jumpiness(x, y):
    """Robust scatter of the integration-to-integration position changes, pixels."""
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.hypot(robust_std(np.diff(x[ok])), robust_std(np.diff(y[ok]))))


def _tracks(x, y, com):
    """True unless centres of mass regressed on positions leave unit slope by > 10 sigma."""
    design = np.stack([x - x.mean(), y - y.mean(), np.ones_like(x)], axis=1)
    for axis in range(2):
        coef, *_ = np.linalg.lstsq(design, com[:, axis], rcond=None)
        resid = com[:, axis] - design @ coef
        dof = max(len(x) - 3, 1)
        cov = np.linalg.pinv(design.T @ design) * (resid @ resid) / dof
        err = np.sqrt(np.diag(cov))[:2]
        target = np.eye(2)[axis]
        if np.any(np.abs(coef[:2] - target) > np.maximum(10.0 * err, 0.05)):
            return False
    return True
