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
with the horns' changing heights).  Each column is then fitted with ``a * T(y - c) + b``
(Gauss-Newton in ``c``, weights ``1/variance``, samples beyond ``clip`` sigma rejected, so bad
pixels and cosmic rays do not pull the centre), and the centres are smoothed along the
dispersion.

The smooth trace is not one global low-order polynomial (a cubic is off by 2-7 px on a real
SOSS order 1): it is a penalised cubic smoothing spline through the per-column centres,
weighted by their errors, its stiffness chosen by generalised cross-validation (so the data's
S/N sets how much structure it follows) and outlying columns rejected iteratively.  When a
physical shape model is given (``prior``: pastasoss's SOSS traces for the header's pupil-wheel
position, see :mod:`~tso_steps.trace.soss_prior`), the windows are centred on it from the
start and the smooth trace is that model with its wheel angle and offset fitted to the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial
from scipy import ndimage

from tso_steps.stats import FWHM_PER_SIGMA, MAD_TO_SIGMA
from tso_steps.trace.orders import _fwhm, find_orders
from tso_steps.trace.smoothing import penalised_spline

__all__ = ["ReferenceTrace", "Template", "fill_bad", "fit_columns", "reference_trace"]

# FWHM^2 of a one-pixel box (for a Gaussian core): removed from the pixelated profile's FWHM.
_PIXEL_FWHM2 = FWHM_PER_SIGMA**2 / 12.0
_STEP = 0.05  # template grid spacing, pixels


@dataclass
class Template:
    """Empirical cross-dispersion profile of one order (unit integral, centred on 0).

    Attributes
    ----------
    u : ndarray
        Offsets from the centre, pixels (grid step 0.05 px).
    value, slope : ndarray
        Profile and its derivative on ``u``.
    fwhm_pixelated : float
        FWHM of the pixel-integrated profile, pixels.
    support : float
        Half-extent of the profile's main lobe (down to 1 % of its peak), pixels.
    """

    u: np.ndarray
    value: np.ndarray
    slope: np.ndarray
    fwhm_pixelated: float
    support: float = np.inf

    @property
    def fwhm(self):
        """float : FWHM with the one-pixel box removed in quadrature (exact for a Gaussian)."""
        return float(np.sqrt(max(self.fwhm_pixelated**2 - _PIXEL_FWHM2, 0.25)))

    def __call__(self, u, derivative=False):
        """Profile (or its derivative) at offsets ``u``; zero outside the grid."""
        table = self.slope if derivative else self.value
        return np.interp(u, self.u, table, left=0.0, right=0.0)


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


def fill_bad(image, good):
    """Replace bad pixels by linear interpolation along the dispersion (for splines only).

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
    good : ndarray of bool, same shape

    Returns
    -------
    ndarray
        A copy; rows without a good pixel are 0.
    """
    filled = np.where(good, image, np.nan)
    cols = np.arange(image.shape[1])
    for row in np.flatnonzero((~good).any(axis=1)):
        ok = good[row]
        filled[row] = np.interp(cols, cols[ok], image[row, ok]) if ok.any() else 0.0
    return filled


def _gather(image, weight, centers, halfwidth):
    """Pixels within ``halfwidth`` of each column's centre: rows, data and weights."""
    n_cross = image.shape[0]
    cols = np.flatnonzero(np.isfinite(centers))
    nrow = 2 * int(np.ceil(halfwidth)) + 1
    start = np.round(centers[cols]).astype(int) - nrow // 2
    rows = start[:, None] + np.arange(nrow)[None, :]
    inside = (rows >= 0) & (rows < n_cross)
    clipped = np.clip(rows, 0, n_cross - 1)
    data = image[clipped, cols[:, None]]
    w = np.where(inside, weight[clipped, cols[:, None]], 0.0)
    w = np.where(np.abs(rows - centers[cols][:, None]) <= halfwidth, w, 0.0)
    data = np.where(w > 0, data, 0.0)
    return cols, rows.astype(np.float64), data, w


def _solve(basis, data, weight):
    """Weighted least squares per column: ``data[c] ~ basis[c] @ x[c]``."""
    wb = basis * weight[..., None]
    gram = np.einsum("cnk,cnl->ckl", wb, basis)
    rhs = np.einsum("cnk,cn->ck", wb, data)
    gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(gram.shape[-1])
    inverse = np.linalg.pinv(gram)
    return np.einsum("ckl,cl->ck", inverse, rhs), inverse


def fit_columns(image, weight, centers, template, halfwidth, iterations=5, clip=5.0):
    """Fit every column with ``a * T(y - c) + b``: centre, amplitude and their errors.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
    weight : ndarray, shape ``(n_cross, n_disp)``
        Inverse variance per pixel; 0 for bad pixels.
    centers : ndarray, shape ``(n_disp,)``
        Starting centres; NaN columns are skipped.
    template : Template
    halfwidth : float
        Pixels within this distance of the centre are fitted.
    iterations : int
        Gauss-Newton iterations.
    clip : float
        Samples whose normalised residual exceeds this are rejected (after the second
        iteration).

    Returns
    -------
    center, error, amplitude, snr : ndarray, shape ``(n_disp,)``
        NaN where not fitted.  ``amplitude`` is the profile's integral (data units), ``snr``
        its significance.
    """
    n_disp = image.shape[1]
    out = [np.full(n_disp, np.nan) for _ in range(4)]
    cols, rows, data, w = _gather(image, weight, centers, halfwidth)
    if cols.size == 0:
        return tuple(out)
    c = centers[cols].astype(np.float64)
    for iteration in range(iterations):
        u = rows - c[:, None]
        basis = np.stack([template(u), -template(u, derivative=True), np.ones_like(u)], axis=-1)
        solution, inverse = _solve(basis, data, w)
        if iteration == 1 and clip:
            # Allow 20 % template mismatch: bright undersampled columns must keep their core.
            model = np.einsum("cnk,ck->cn", basis, solution)
            with np.errstate(all="ignore"):
                norm = (data - model) / np.sqrt(1.0 / w + (0.2 * model) ** 2)
            w = np.where(np.abs(norm) > clip, 0.0, w)
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            step = solution[:, 1] / solution[:, 0]
        c = c + np.clip(np.where(np.isfinite(step), step, 0.0), -0.5, 0.5)
    residual = (data - np.einsum("cnk,ck->cn", basis, solution)) * np.sqrt(w)
    dof = np.maximum((w > 0).sum(axis=1) - 3, 1)
    chi2 = np.maximum((residual**2).sum(axis=1) / dof, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.sqrt(inverse[:, 1, 1] * chi2) / np.abs(solution[:, 0])
        snr = solution[:, 0] / np.sqrt(inverse[:, 0, 0] * chi2)
    ok = (w > 0).sum(axis=1) > 4
    for array, values in zip(out, (c, error, solution[:, 0], snr), strict=True):
        array[cols[ok]] = values[ok]
    return tuple(out)


def build_template(image, centers, halfwidth):
    """Empirical profile: columns spline-resampled around their centres and median-combined.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Bad pixels already filled (no NaN).
    centers : ndarray, shape ``(n_disp,)``
        Current centre per column (NaN: column not used).
    halfwidth : float
        Half-extent of the template, pixels.

    Returns
    -------
    Template or None
        None when the columns hold no positive flux.
    """
    cols = np.flatnonzero(np.isfinite(centers))
    u = np.arange(-halfwidth - 2.0, halfwidth + 2.0 + _STEP / 2, _STEP)
    coeffs = ndimage.spline_filter(image, order=3)
    yy = centers[cols][:, None] + u[None, :]
    xx = np.broadcast_to(cols[:, None].astype(np.float64), yy.shape)
    samples = ndimage.map_coordinates(
        coeffs, [yy.ravel(), xx.ravel()], order=3, mode="mirror", prefilter=False
    )
    samples = samples.reshape(yy.shape)
    inside = (yy >= 0) & (yy <= image.shape[0] - 1)
    edge = np.abs(u) > halfwidth
    with np.errstate(all="ignore"):
        background = np.nanmedian(np.where(edge[None, :] & inside, samples, np.nan), axis=1)
    samples = samples - np.where(np.isfinite(background), background, 0.0)[:, None]
    norm = np.sum(np.where(edge, 0.0, samples), axis=1) * _STEP
    keep = norm > 0
    samples = np.where(inside, samples / np.where(keep, norm, 1.0)[:, None], np.nan)[keep]
    if not keep.any():
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = np.nanmedian(samples, axis=0)
    value = np.where(np.isfinite(value) & ~edge, value, 0.0)
    if not value.max() > 0:
        return None
    # Centre: midpoint of the half-maximum edges of the main lobe.  For a symmetric profile
    # this is its centre of symmetry; for SOSS's two-horned profile, whose horn heights change
    # along the order, it does not follow the horns (a centroid in a window does, by up to
    # 1 px on the real program 1512 frame), and a neighbouring order or contaminant inside
    # the fitting window does not enter it.
    centre = _edge_centre(u, value)
    if not np.isfinite(centre):
        return None
    shifted = np.interp(u, u - centre, value, left=0.0, right=0.0)
    shifted /= shifted.sum() * _STEP
    return Template(
        u, shifted, np.gradient(shifted, _STEP), _fwhm(shifted, _STEP), _support(u, shifted)
    )


def _edge_centre(u, value):
    """Midpoint of the outermost half-maximum crossings of the profile's main lobe."""
    peak = int(np.argmax(value))
    half = value[peak] / 2.0
    labels, _ = ndimage.label(value >= 0.2 * value[peak])
    lobe = np.flatnonzero((labels == labels[peak]) & (value >= half))
    lo, hi = lobe[0], lobe[-1]
    if lo == 0 or hi == value.size - 1:
        return np.nan
    left = u[lo - 1] + (half - value[lo - 1]) / (value[lo] - value[lo - 1]) * _STEP
    right = u[hi] + (value[hi] - half) / (value[hi] - value[hi + 1]) * _STEP
    return 0.5 * (left + right)


def _support(u, value, level=0.01):
    """Half-extent about 0 of the samples of ``value`` above ``level`` x peak.

    The outermost samples, not the run holding the peak: a profile whose middle dips below
    the level (an obscured or two-horned pupil image) keeps both of its sides in the window.
    """
    above = u[value >= level * value.max()]
    return float(max(-above.min(), above.max()))


def centroid_offset(image, centers, halfwidth, weights=None):
    """Median offset of column centres of mass from given centres.

    The centre of mass of pixel-integrated samples of a smooth symmetric profile, in a window
    symmetric about the centre, is unbiased up to aliasing terms that fall off like the
    profile's Fourier transform at one cycle per pixel (negligible even for NIRCam's
    undersampled core), whereas a spline through undersampled samples is not symmetric.  This
    offset therefore fixes the zero point of the template.

    Parameters
    ----------
    image : ndarray, shape ``(n_cross, n_disp)``
        Bad pixels filled.
    centers : ndarray, shape ``(n_disp,)``
        Fitted centres (NaN: skipped).
    halfwidth : float
        Half-width of the centroid window, pixels; the background is the median of the 4
        pixels beyond it on each side.
    weights : ndarray, optional
        Per-column weights of the median (e.g. inverse error squared).

    Returns
    -------
    float
        Median ``centre of mass - centers``, pixels.
    """
    cols = np.flatnonzero(np.isfinite(centers))
    rows = np.arange(image.shape[0], dtype=np.float64)[:, None]
    dist = rows - centers[cols][None, :]
    values = image[:, cols]
    ring = (np.abs(dist) > halfwidth + 0.5) & (np.abs(dist) <= halfwidth + 4.5)
    with np.errstate(all="ignore"):
        background = np.nanmedian(np.where(ring, values, np.nan), axis=0)
    values = values - np.where(np.isfinite(background), background, 0.0)
    # Fractional weight of each pixel inside [c - h, c + h].
    frac = np.clip(halfwidth + 0.5 - np.abs(dist), 0.0, 1.0)
    inside = (centers[cols] - halfwidth >= -0.5) & (
        centers[cols] + halfwidth <= image.shape[0] - 0.5
    )
    with np.errstate(all="ignore"):
        com = np.sum(frac * values * dist, axis=0) / np.sum(frac * values, axis=0)
    ok = inside & np.isfinite(com) & (np.abs(com) < halfwidth)
    if not ok.any():
        return 0.0
    if weights is None:
        return float(np.median(com[ok]))
    order = np.argsort(com[ok])
    cumulative = np.cumsum(weights[cols][ok][order])
    return float(com[ok][order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


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


def _fit_segments(filled, good, weight, centers, halfwidth, segment, undersampled_fwhm):
    """Template build + column fit + centroid zero point, per segment of columns.

    Templates are local because the profile width changes along the dispersion (by ~40 %
    across a NIRCam grism spectrum).  The centre-of-mass zero point is applied only to
    undersampled templates (FWHM below ``undersampled_fwhm``), the case it exists for; on a
    well-sampled profile the spline template is already symmetric about its centre, and a
    centre of mass over the wide window of a SOSS order would pull the trace towards any
    neighbouring order or field-star spectrum inside it.
    """
    n_disp = filled.shape[1]
    fit, error, snr = (np.full(n_disp, np.nan) for _ in range(3))
    templates = []
    cols = np.flatnonzero(np.isfinite(centers))
    nseg = max(int(round(cols.size / segment)), 1)
    for part in np.array_split(cols, nseg):
        local = np.full(n_disp, np.nan)
        local[part] = centers[part]
        template = build_template(filled, local, halfwidth)
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
        and ``fit(centers, errors)`` (returns an object with ``center`` and ``used``), e.g.
        :class:`~tso_steps.trace.soss_prior.SossTracePrior`.
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
        templates, lit, fit, error = [], np.zeros(n_disp, dtype=bool), None, None
        for _ in range(3):
            fit, error, snr, templates = _fit_segments(
                filled, good, weight, centers, halfwidth, segment, undersampled_fwhm
            )
            lit = np.isfinite(fit) & (snr > min_snr)
            if lit.sum() < 3:
                break
            halfwidth = _halfwidth(templates)
            smooth, _ = _smooth_trace(
                columns, np.where(lit, fit, np.nan), error, degree, prior and prior.fit
            )
            span = np.flatnonzero(lit)
            centers = np.array(smooth, dtype=np.float64)
            centers[(columns < span[0]) | (columns > span[-1])] = np.nan
            centers[(centers < -0.5) | (centers > n_cross - 0.5)] = np.nan
        if lit.sum() < 3 or not templates:
            continue
        result.center[k] = centers
        result.column_center[k] = np.where(lit, fit, np.nan)
        result.column_error[k] = np.where(lit, error, np.nan)
        result.fwhm[k] = np.median([t.fwhm for t in templates])
        result.halfwidth[k] = halfwidth
        result.templates[k] = templates
    return result
