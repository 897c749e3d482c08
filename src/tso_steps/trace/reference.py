"""The exposure's reference trace: order finding, empirical profile template, smooth centres.

All functions work on images oriented ``(n_cross, n_disp)`` (cross-dispersion rows,
dispersion columns; see :func:`~tso_steps.trace.geometry.to_dispersion_last`).

The cross-dispersion profile is not modelled by a Gaussian: every column of the median frame
is resampled by a cubic spline onto a fine grid around a first guess of its centre and the
columns are median-combined into an empirical template.  A curved trace samples every pixel
phase, so the template is effectively oversampled (the "effective PSF" idea of Anderson &
King 2000 applied to one dimension); the template keeps SOSS's two horns and wide wings and
NIRCam's undersampled core.  The template's centre is the midpoint of its half-maximum edges
(the centre of symmetry of a symmetric profile; on SOSS's two-horned profile it does not move
with the horns' changing heights), or, when a shape model is given as a prior, that model's
own centre convention (pastasoss's for SOSS, :mod:`~tso_steps.trace.soss_centre`), so that
the model's fitted offset measures the source's position, not a difference between centre
definitions.  Each column is then fitted
with ``a * T(y - c) + b`` (Gauss-Newton in ``c``, weights ``1/variance``, samples beyond
``clip`` sigma rejected, so bad pixels and cosmic rays do not pull the centre), and the
centres are smoothed along the dispersion.

The smooth trace is not one global low-order polynomial (a cubic is off by 2-7 px on a real
SOSS order 1): it is a penalised cubic smoothing spline through the per-column centres,
weighted by their errors, its stiffness chosen by generalised cross-validation (so the data's
S/N sets how much structure it follows) and outlying columns rejected iteratively.  When a
physical shape model is given (``prior``: pastasoss's SOSS traces for the header's pupil-wheel
position, see :mod:`~tso_steps.trace.soss_prior`), the windows are centred on it from the
start and the smooth trace is that model with its wheel angle and offset fitted to the data
(for SOSS one angle and one offset shared by both orders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial

from tso_steps.stats import MAD_TO_SIGMA
from tso_steps.trace.column_fit import centroid_offset, fit_columns
from tso_steps.trace.orders import find_orders
from tso_steps.trace.smoothing import penalised_spline
from tso_steps.trace.template import Template, build_template, fill_bad, spline_coefficients

__all__ = ["ReferenceTrace", "Template", "fill_bad", "fit_columns", "reference_trace"]


@dataclass
class ReferenceTrace:
    """Reference trace of an exposure.

    Attributes
    ----------
    center : ndarray, shape ``(norders, n_disp)``
        Smoothed 0-based cross-dispersion centre at every dispersion pixel; NaN where the
        order is not detected or its centre is off the array.
    column_center, column_error : ndarray, shape ``(norders, n_disp)``
        Unsmoothed per-column centre and its 1-sigma error, pixels.
    fwhm : ndarray, shape ``(norders,)``
        Profile FWHM per order, pixels (pixel box removed).
    halfwidth : ndarray, shape ``(norders,)``
        Half-width of the fitting window per order, pixels.
    templates : list of list of Template
        Per order, the templates of its segments of columns.
    """

    center: np.ndarray
    column_center: np.ndarray
    column_error: np.ndarray
    fwhm: np.ndarray
    halfwidth: np.ndarray
    templates: list


def _smooth(columns, centers, errors, degree, clip=4.0, iterations=4):
    """Robust weighted polynomial through per-column centres; returns the Polynomial."""
    good = np.isfinite(centers) & np.isfinite(errors) & (errors > 0)
    # Cap the weights: a few very bright columns must not decide the shape alone.
    floor = np.nanpercentile(errors[good], 10) if good.any() else 1.0
    weight = 1.0 / np.maximum(errors, floor)
    poly = None
    for _ in range(iterations):
        deg = min(degree, max(int(good.sum()) - 1, 0))
        poly = Polynomial.fit(columns[good], centers[good], deg, w=weight[good])
        norm = (centers - poly(columns)) * weight
        scatter = MAD_TO_SIGMA * np.nanmedian(np.abs(norm[good]))
        new = good & (np.abs(norm) <= clip * max(scatter, 1.0))
        if new.sum() == good.sum() or new.sum() <= deg + 1:
            break
        good = new
    return poly, good


def _smooth_trace(columns, centers, errors, degree, prior):
    """Smooth trace of one order: fitted prior, spline, or (``degree`` given) polynomial."""
    if prior is not None:
        fitted = prior(centers, errors)
        return fitted.center, fitted.used
    if degree is None:
        fitted = penalised_spline(columns, centers, errors)
        return fitted.curve, fitted.used
    poly, good = _smooth(columns, centers, errors, degree)
    return poly(columns), good


def _fit_segments(
    filled, good, weight, centers, halfwidth, segment, undersampled_fwhm, centre, coeffs
):
    """Template build + column fit + centroid zero point, per segment of columns.

    Templates are local because the profile width changes along the dispersion (by ~40 %
    across a NIRCam grism spectrum).  The centre-of-mass zero point is applied only to
    undersampled templates (FWHM below ``undersampled_fwhm``), the case it exists for; on a
    well-sampled profile the spline template is already symmetric about its centre, and a
    centre of mass over the wide window of a SOSS order would pull the trace towards any
    neighbouring order or field-star spectrum inside it.  ``coeffs`` are the spline
    coefficients of ``filled`` (:func:`~tso_steps.trace.template.spline_coefficients`),
    computed once for every segment, pass and order.
    """
    n_disp = filled.shape[1]
    fit, error, snr = (np.full(n_disp, np.nan) for _ in range(3))
    templates = []
    cols = np.flatnonzero(np.isfinite(centers))
    nseg = max(int(round(cols.size / segment)), 1)
    for part in np.array_split(cols, nseg):
        local = np.full(n_disp, np.nan)
        local[part] = centers[part]
        template = build_template(filled, local, halfwidth, centre, coeffs)
        if template is None:  # no flux in these columns
            continue
        c, e, _, s = fit_columns(filled * good, weight, local, template, halfwidth)
        lit = np.isfinite(c) & (s > 3.0)
        if lit.any() and template.fwhm < undersampled_fwhm:
            with np.errstate(all="ignore"):
                colweight = np.where(lit, 1.0 / e**2, 0.0)
            delta = centroid_offset(filled, np.where(lit, c, np.nan), halfwidth, colweight)
            template.u = template.u - delta
            c = c + delta
        fit[part], error[part], snr[part] = c[part], e[part], s[part]
        templates.append(template)
    return fit, error, snr, templates


def _halfwidth(templates):
    """Fitting half-window: 1.5 FWHM + 1 px, but no wider than the profile's lobe + 2 px.

    The second bound only bites on wide flat-topped profiles (SOSS), whose lobe ends well
    inside 1.5 FWHM; a wider window only adds neighbouring orders and contaminants.
    """
    fwhm = np.median([t.fwhm_pixelated for t in templates])
    support = np.median([t.support for t in templates])
    return min(max(1.5 * fwhm, 3.0) + 1.0, max(support + 2.0, 3.0))


def _initial_centres(found, k, prior, columns):
    """First guess of order ``k``'s centres and FWHM: the prior, or the coarse order path."""
    if prior is not None:
        fwhm = found[min(k, len(found) - 1)][2] if found else 10.0
        return prior.initial(columns.size), fwhm
    if k >= len(found):
        return None, None
    cols, coarse, fwhm = found[k]
    # Piecewise-linear through the block positions: no global polynomial to be off by pixels.
    centers = np.interp(columns, cols, coarse)
    centers[(columns < cols.min() - 8) | (columns > cols.max() + 8)] = np.nan
    return centers, fwhm


def _on_span(smooth, lit, n_cross):
    """The smooth curve over the span of lit columns and on the array; NaN elsewhere."""
    columns = np.arange(lit.size)
    span = np.flatnonzero(lit)
    centers = np.array(smooth, dtype=np.float64)
    centers[(columns < span[0]) | (columns > span[-1])] = np.nan
    centers[(centers < -0.5) | (centers > n_cross - 0.5)] = np.nan
    return centers


def _refit_priors(result, priors, n_cross):
    """Fit every order's prior again once all orders are measured.

    A prior may tie orders together (SOSS: one pupil-wheel angle and one pointing for both
    orders), so an order's last fit, made before the next order was measured, is superseded.
    """
    for k, prior in enumerate(priors[: result.center.shape[0]]):
        lit = np.isfinite(result.column_center[k])
        if prior is not None and lit.sum() >= 3:
            fitted = prior.fit(result.column_center[k], result.column_error[k])
            result.center[k] = _on_span(fitted.center, lit, n_cross)


def reference_trace(
    image,
    variance=None,
    bad=None,
    norders=1,
    degree=None,
    min_snr=5.0,
    segment=128,
    priors=None,
    undersampled_fwhm=2.5,
):
    """Measure the reference trace of an exposure from its median frame.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Median frame (data units); NaN or ``bad`` marks pixels not to use.
    variance : ndarray, optional
        Per-pixel variance of ``image``; default uniform.
    bad : ndarray of bool, optional
        Pixels not to use.
    norders : int
        Orders to trace (brightest first).
    degree : int, optional
        Smooth the centres with a robust polynomial of this degree instead of the default
        penalised spline (for orders without a prior).
    min_snr : float
        Columns whose profile amplitude is below this significance are not lit.
    segment : int
        Columns sharing one empirical template, pixels.
    priors : list, optional
        Per order, ``None`` or a shape model with ``initial(n_disp)`` (first-guess centres)
        and ``fit(centers, errors)`` (returns an object with ``center`` and ``used``), and
        optionally ``profile_centre(u, value)`` (the model's centre convention, see
        :func:`~tso_steps.trace.template.build_template`), e.g.
        :class:`~tso_steps.trace.soss_prior.SossTracePrior`.  Priors are fitted again once
        every order is measured, so priors sharing parameters across orders see them all.
    undersampled_fwhm : float
        Templates narrower than this FWHM (pixels) get a centre-of-mass zero point.

    Returns
    -------
    ReferenceTrace
    """
    image = np.asarray(image, dtype=np.float64)
    n_cross, n_disp = image.shape
    good = np.isfinite(image)
    if bad is not None:
        good &= ~bad
    if variance is not None:
        variance = np.asarray(variance, dtype=np.float64)
        good &= np.isfinite(variance) & (variance > 0)
        weight = np.where(good, 1.0 / np.where(good, variance, 1.0), 0.0)
    else:
        weight = good.astype(np.float64)
    filled = fill_bad(image, good)
    coeffs = spline_coefficients(filled)
    shape = (norders, n_disp)
    result = ReferenceTrace(
        np.full(shape, np.nan),
        np.full(shape, np.nan),
        np.full(shape, np.nan),
        np.full(norders, np.nan),
        np.full(norders, np.nan),
        [None] * norders,
    )
    columns = np.arange(n_disp, dtype=np.float64)
    priors = list(priors) if priors is not None else [None] * norders
    found = find_orders(np.where(good, image, np.nan), norders)
    for k in range(norders):
        prior = priors[k] if k < len(priors) else None
        centers, fwhm = _initial_centres(found, k, prior, columns)
        if centers is None:
            continue
        centers[(centers < -0.5) | (centers > n_cross - 0.5)] = np.nan
        halfwidth = max(1.5 * fwhm, 3.0) + 1.0
        centre = getattr(prior, "profile_centre", None)  # the model's own centre convention
        templates, lit, fit, error = [], np.zeros(n_disp, dtype=bool), None, None
        for _ in range(3):
            fit, error, snr, templates = _fit_segments(
                filled, good, weight, centers, halfwidth, segment, undersampled_fwhm, centre, coeffs
            )
            lit = np.isfinite(fit) & (snr > min_snr)
            if lit.sum() < 3:
                break
            halfwidth = _halfwidth(templates)
            smooth, _ = _smooth_trace(
                columns, np.where(lit, fit, np.nan), error, degree, prior and prior.fit
            )
            centers = _on_span(smooth, lit, n_cross)
        if lit.sum() < 3 or not templates:
            continue
        result.center[k] = centers
        result.column_center[k] = np.where(lit, fit, np.nan)
        result.column_error[k] = np.where(lit, error, np.nan)
        result.fwhm[k] = np.median([t.fwhm for t in templates])
        result.halfwidth[k] = halfwidth
        result.templates[k] = templates
    _refit_priors(result, priors, n_cross)
    return result
