"""Horne (1986) optimal extraction with a model variance and iterative outlier rejection.

For one column of one integration with data ``D_k``, normalised profile ``P_k`` and variance
``V_k``, the flux is ``f = sum(P D / V) / sum(P^2 / V)`` and its variance
``1 / sum(P^2 / V)``.  The variance is a model, not the data's own:
``V = var_rnoise + kappa * max(f P + B, 0)`` with ``B`` the subtracted background and
``kappa`` the Poisson variance per unit of signal (the data's ``var_poisson / data``
ratio), so a low pixel does not get a high weight (the bias of data-derived weights).
``f`` and ``V`` are iterated; in every iteration the worst pixel of each column is rejected
if it lies more than ``clip`` sigma from ``f P`` (cosmic rays, bad pixels the DQ missed).
Everything is vectorised over integrations and columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tso_steps.stats import nanmedian_last

__all__ = ["Extraction", "box_extract", "horne_extract", "poisson_scale"]


@dataclass
class Extraction:
    """Per-integration, per-column results (arrays of shape ``(nints, n_disp)``).

    Attributes
    ----------
    flux, var_poisson, var_rnoise : ndarray
        Flux and the two parts of its variance (data units and their square).
    npixels : ndarray
        Aperture pixels used (after rejection); fractional for the box.
    rejected : ndarray of int
        Pixels rejected as outliers inside the extraction.
    used : ndarray of bool, shape ``(nints, nrow, n_disp)`` or None
        Pixels that entered the final fit (optimal extraction only).
    """

    flux: np.ndarray
    var_poisson: np.ndarray
    var_rnoise: np.ndarray
    npixels: np.ndarray
    rejected: np.ndarray
    used: np.ndarray | None = None

    @property
    def error(self):
        """ndarray : 1-sigma flux error."""
        return np.sqrt(self.var_poisson + self.var_rnoise)


def poisson_scale(data, var_poisson, good):
    """Poisson variance per unit of signal, ``median(var_poisson / data)`` over bright pixels.

    Parameters
    ----------
    data, var_poisson : ndarray
        Same shapes.
    good : ndarray of bool

    Returns
    -------
    float
        0 when no pixel is bright enough (read-noise-limited data).
    """
    with np.errstate(all="ignore"):
        use = good & np.isfinite(var_poisson) & (var_poisson > 0) & (data > 0)
        if use.sum() < 10:
            return 0.0
        level = np.percentile(data[use], 75)
        bright = use & (data >= level)
        return float(np.median(var_poisson[bright] / data[bright]))


def horne_extract(data, profile, var_rnoise, kappa, good, clip=5.0, iterations=4, sky=None):
    """Optimal extraction of every column of every integration.

    Parameters
    ----------
    data : ndarray, shape ``(nints, nrow, n_disp)``
        Background-subtracted band pixels.
    profile : ndarray, shape ``(nints, nrow, n_disp)``
        Normalised profile (unit column sums, zero outside the aperture, NaN columns skipped).
    var_rnoise : ndarray, shape ``(nints, nrow, n_disp)``
        Read-noise variance of each pixel.
    kappa : float or ndarray
        Poisson variance per unit signal (see :func:`poisson_scale`).
    good : ndarray of bool, shape ``(nints, nrow, n_disp)``
        Usable pixels (not NaN, not DO_NOT_USE).
    clip : float
        Rejection threshold, sigma (0: no rejection).
    iterations : int
        Maximum rejection iterations (one pixel per column each).
    sky : ndarray, shape ``(nints, n_disp)``, optional
        Background that was subtracted from ``data``: its Poisson variance is part of the
        model variance.

    Returns
    -------
    Extraction
    """
    sky = None if sky is None or not np.any(sky) else np.asarray(sky)[:, None, :]
    prof = np.nan_to_num(profile)
    use = good & (prof > 0)
    prof_full = np.broadcast_to(prof, use.shape)
    d = np.where(use, data, 0.0)
    vr = np.where(use, var_rnoise, 1.0).astype(np.float64, copy=False)  # exact; converted once
    # the profile zeroed where unused (like ``d``): the weights and residuals of those pixels
    # are then zero without masking them in every iteration (their variance is >= 1)
    p = np.where(use, prof, 0.0)
    with np.errstate(all="ignore"):
        flux = np.sum(prof * d, axis=1) / np.sum(np.where(use, prof**2, 0.0), axis=1)
    flux = np.nan_to_num(flux)
    rejected = np.zeros(flux.shape, int)
    # the same arithmetic as the formulas in the comments, in four reused buffers
    vp, var, w, tmp = (np.empty(use.shape) for _ in range(4))
    for it in range(iterations + 2):
        # vp = kappa * max(flux P + sky, 0); var = vr + vp (a zero sky adds nothing)
        np.multiply(flux[:, None, :], p, out=vp)
        if sky is not None:
            vp += sky
        np.maximum(vp, 0.0, out=vp)  # max(., 0), as np.clip does it
        np.multiply(kappa, vp, out=vp)
        np.add(vr, vp, out=var)
        # w = P / var where used, else 0
        np.divide(p, var, out=w)
        den = np.sum(np.multiply(w, p, out=tmp), axis=1)
        with np.errstate(all="ignore"):
            flux = np.nan_to_num(np.sum(np.multiply(w, d, out=tmp), axis=1) / den)
        if clip <= 0 or it >= iterations:
            continue
        # z2 = (d - flux P)^2 / var where used, else 0
        z2 = np.multiply(flux[:, None, :], p, out=tmp)
        np.subtract(d, z2, out=z2)
        z2 **= 2
        z2 /= var
        # the largest residual of every column; where (argmax) only for the columns it rejects
        hit = np.max(z2, axis=1) > clip**2
        if not hit.any():
            continue
        ii, xx = np.nonzero(hit)
        worst = np.argmax(z2[ii, :, xx], axis=1)
        # The pixel to reject is the worst against a robust flux: one extreme sample (a
        # huge negative pixel) drags the weighted flux so far that the largest residual is
        # elsewhere; against the median the two choices agree for ordinary outliers.
        rows = _worst_against_median(
            d[ii, :, xx],
            prof_full[ii, :, xx],
            var[ii, :, xx],
            use[ii, :, xx],
        )
        rows = np.where(rows < 0, worst, rows)
        use[ii, rows, xx] = False
        d[ii, rows, xx] = 0.0
        p[ii, rows, xx] = 0.0
        rejected += hit
    del tmp
    with np.errstate(all="ignore"):
        w2 = w**2
        var_rn = np.sum(w2 * vr, axis=1) / den**2
        var_p = np.sum(w2 * vp, axis=1) / den**2
    dead = ~(den > 0) | ~np.isfinite(profile).any(axis=1)
    flux = np.where(dead, np.nan, flux)
    return Extraction(
        flux=flux,
        var_poisson=np.where(dead, np.nan, var_p),
        var_rnoise=np.where(dead, np.nan, var_rn),
        npixels=use.sum(axis=1),
        rejected=rejected,
        used=use,
    )


def _worst_against_median(d, prof, var, use):
    """Row of the largest residual against the median flux estimate of each column.

    Parameters
    ----------
    d, prof, var, use : ndarray, shape ``(ncolumns, nrow)``
        Data, profile, model variance and usable pixels of the columns with an outlier.

    Returns
    -------
    ndarray of int, shape ``(ncolumns,)``
        -1 where a column has no core pixel.
    """
    core = use & (prof > 0)
    # medians by one partition per row (nanmedian_last: np.nanmedian's values, a fraction of
    # its cost on many short rows); every value is finite or NaN
    with np.errstate(all="ignore"):
        level = nanmedian_last(np.where(core, prof, np.nan), overwrite=True)[:, None]
        core &= prof >= level  # the upper half of the profile: well-defined ratios
        ratio = np.where(core, d / np.where(core, prof, 1.0), np.nan)
        flux = nanmedian_last(ratio, overwrite=True)[:, None]
        score = np.where(use, (d - flux * prof) ** 2 / var, -np.inf)
    rows = np.argmax(np.where(np.isfinite(score), score, -np.inf), axis=1)
    return np.where(np.isfinite(flux[:, 0]), rows, -1)


def box_extract(data, var_poisson, var_rnoise, good, offset, shifts, halfwidth, profile=None):
    """Box aperture that follows the trace, with fractional edge pixels.

    Pixel ``k`` of column ``x`` gets the weight of its overlap with ``[s_i - h, s_i + h]``
    in offset from the reference trace.  Unusable pixels inside the aperture are replaced by
    the profile times the column's ratio estimate ``sum(w D) / sum(w P)`` over usable pixels
    (with no ``profile``, by the mean of the usable pixels).

    Parameters
    ----------
    data, var_poisson, var_rnoise : ndarray, shape ``(nints, nrow, n_disp)``
    good : ndarray of bool, shape ``(nints, nrow, n_disp)``
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels.
    shifts : ndarray, shape ``(nints,)``
        Trace shift per integration, pixels.
    halfwidth : float
        Half-width ``h`` of the aperture, pixels.
    profile : ndarray, shape ``(nints, nrow, n_disp)``, optional

    Returns
    -------
    Extraction
    """
    centre = np.asarray(shifts, float)[:, None, None]
    lo = np.maximum(offset[None] - 0.5, centre - halfwidth)
    hi = np.minimum(offset[None] + 0.5, centre + halfwidth)
    weight = np.nan_to_num(np.clip(hi - lo, 0.0, 1.0))
    ok = good & (weight > 0)
    fill_shape = np.ones_like(data) if profile is None else np.nan_to_num(profile)
    with np.errstate(all="ignore"):
        ratio = np.sum(np.where(ok, weight * data, 0.0), axis=1) / np.sum(
            np.where(ok, weight * fill_shape, 0.0), axis=1
        )
        filled = np.where(ok, data, fill_shape * ratio[:, None, :])
        flux = np.sum(weight * np.nan_to_num(filled), axis=1)
        frac = np.sum(weight, axis=1) / np.sum(np.where(ok, weight, 0.0), axis=1)
        var_p = np.sum(np.where(ok, weight**2 * var_poisson, 0.0), axis=1) * frac
        var_rn = np.sum(np.where(ok, weight**2 * var_rnoise, 0.0), axis=1) * frac
    dead = ~ok.any(axis=1)
    return Extraction(
        flux=np.where(dead, np.nan, flux),
        var_poisson=np.where(dead, np.nan, var_p),
        var_rnoise=np.where(dead, np.nan, var_rn),
        npixels=np.sum(np.where(ok, weight, 0.0), axis=1),
        rejected=np.zeros(flux.shape, int),
    )
