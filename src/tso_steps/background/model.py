"""Background of a TSO cube: a shape fitted to the mean image, a level fitted per integration.

A per-integration fit of many background parameters puts the noise of every parameter
into every integration's extracted flux.  The default (``per_integration='scale'``) fits the
background *shape* (line polynomials, a 2-D surface or a scaled template) once, to the
time-averaged image, where the noise is ``sqrt(nints)`` times lower, and then one factor per
integration: the background can brighten and fade, and each integration pays for a single
parameter.  ``'full'`` refits the whole model in every integration; ``'none'`` subtracts the
mean-image shape from every integration unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tso_steps.background.fitting import (
    fit_basis,
    fit_lines,
    fit_scales,
    side_masks,
    surface_basis,
    template_basis,
)
from tso_steps.stats import nanmedian_last, robust_std, robust_std_last

__all__ = [
    "BackgroundFit",
    "BackgroundOptions",
    "choose_template",
    "clipped_mean",
    "find_image_discontinuity",
    "find_template_discontinuity",
    "fit_background",
    "time_median",
]

log = logging.getLogger("stpipe.tso_steps.background")

#: Integrations fitted together in ``per_integration='full'`` (bounds the temporary arrays).
_CHUNK = 16


@dataclass
class BackgroundFit:
    """A fitted background.

    Attributes
    ----------
    shape : ndarray, shape ``(ny, nx)``
        Background of the mean image (``'scale'``/``'none'``) or the mean of the
        per-integration models (``'full'``), data units.
    scales : ndarray, shape ``(nints,)``
        Per-integration factor on ``shape`` (least-squares projection of each model on
        ``shape`` for ``'full'``).
    cube : ndarray or None
        ``(nints, ny, nx)`` per-integration models (``'full'`` only; otherwise
        ``scales[:, None, None] * shape``).
    used : ndarray of bool, shape ``(ny, nx)``
        Pixels used in the mean-image fit (after clipping).
    n_filled : int
        Cross-dispersion lines without enough usable pixels, interpolated (line method).
    """

    shape: np.ndarray
    scales: np.ndarray
    cube: np.ndarray | None
    used: np.ndarray
    n_filled: int = 0

    def model(self, integration):
        """Background of one integration, ``(ny, nx)``."""
        if self.cube is not None:
            return self.cube[integration]
        return self.scales[integration] * self.shape

    def levels(self):
        """Mean background per integration over the array, data units (``(nints,)``)."""
        if self.cube is not None:
            return np.nanmean(self.cube, axis=(1, 2))
        return self.scales * np.nanmean(self.shape)


def _row_blocks(ny, nx, nints, budget=1_000_000):
    """Row slices whose ``(nints, rows, nx)`` blocks hold about ``budget`` samples."""
    rows = max(1, budget // max(nints * nx, 1))
    return [slice(y, min(y + rows, ny)) for y in range(0, ny, rows)]


def time_median(cube, bad):
    """Per-pixel median over integrations of the good samples (NaN where none), by row blocks.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, ny, nx)``
    bad : ndarray of bool, same shape

    Returns
    -------
    ndarray, shape ``(ny, nx)``, float64
    """
    nints, ny, nx = cube.shape
    out = np.empty((ny, nx))
    for rows in _row_blocks(ny, nx, nints):
        block = np.where(bad[:, rows], np.nan, cube[:, rows]).astype(np.float64)
        out[rows] = nanmedian_last(np.moveaxis(block, 0, -1))
    return out


def clipped_mean(cube, usable, clip=5.0):
    """Per-pixel mean over integrations after rejecting outliers in time.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, ny, nx)``
    usable : ndarray of bool, same shape
        Samples that may be used.
    clip : float
        Reject samples beyond ``clip`` robust sigma of the pixel's median.

    Returns
    -------
    mean : ndarray, shape ``(ny, nx)``
        NaN where a pixel has no usable sample.
    fraction : ndarray, shape ``(ny, nx)``
        Fraction of integrations kept.
    """
    nints, ny, nx = cube.shape
    mean = np.empty((ny, nx))
    fraction = np.empty((ny, nx))
    for rows in _row_blocks(ny, nx, nints):  # bounded temporaries for long segments
        values = np.where(usable[:, rows], cube[:, rows], np.nan).astype(np.float64)
        stacked = np.moveaxis(values, 0, -1)
        median = nanmedian_last(stacked)
        sigma = robust_std_last(stacked, min_count=3)
        with np.errstate(invalid="ignore"):
            values[np.abs(values - median[None]) > clip * sigma[None]] = np.nan
        count = np.isfinite(values).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[rows] = np.where(count > 0, np.nansum(values, axis=0) / count, np.nan)
        fraction[rows] = count / nints
    return mean, fraction


def find_template_discontinuity(template, min_contrast=5.0, half_window=10):
    """Locate the sharp step of a background template along x, row by row.

    The template is smoothed (Gaussian, 2 px) and differenced along x; the column of the
    largest median |difference| over rows is the step; each row then takes the position of
    its own largest |difference| (unsmoothed) within ``half_window`` of that.

    Parameters
    ----------
    template : ndarray, shape ``(ny, nx)``
    min_contrast : float
        The peak of the median |gradient| must exceed this many times its median over x;
        otherwise the template has no discontinuity.
    half_window : int
        Columns searched around the global position in each row.

    Returns
    -------
    ndarray of float, shape ``(ny,)``, or None
        First column right of the step in each row; None when there is no step.
    """
    template = np.nan_to_num(np.asarray(template, dtype=np.float64))
    smoothed = ndimage.gaussian_filter(template, 2.0)
    # forward differences: the step between columns x and x+1 peaks at x
    profile = np.median(np.abs(np.diff(smoothed, axis=1)), axis=0)
    peak = int(np.argmax(profile))
    if not profile[peak] > min_contrast * max(np.median(profile), 1e-30):
        return None
    lo, hi = max(peak - half_window, 0), min(peak + half_window + 1, profile.size)
    columns = lo + np.argmax(np.abs(np.diff(template, axis=1))[:, lo:hi], axis=1)
    return ndimage.median_filter(columns.astype(float), size=9, mode="nearest") + 1.0


def find_image_discontinuity(image, usable, half_window=10, min_sigma=8.0):
    """Locate a vertical step of the background in an image (e.g. the mean frame).

    Column medians of the usable pixels are compared ``half_window`` columns left and right
    of every column; the largest difference is a step if it exceeds ``min_sigma`` times its
    noise and three times the typical difference (a smooth gradient).

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
    usable : ndarray of bool
    half_window : int
    min_sigma : float

    Returns
    -------
    float or None
        First column right of the step, or None.
    """
    values = np.where(usable, image, np.nan)
    enough = np.isfinite(values).sum(axis=0) >= 5
    with np.errstate(all="ignore"):
        columns = np.where(enough, np.nanmedian(values, axis=0), np.nan)
    n = columns.size
    if np.isfinite(columns).sum() < 4 * half_window:
        return None
    diffs = np.full(n, np.nan)
    for x in range(half_window, n - half_window + 1):
        left, right = columns[x - half_window : x], columns[x : x + half_window]
        if np.isfinite(left).sum() >= 3 and np.isfinite(right).sum() >= 3:
            diffs[x] = np.nanmedian(right) - np.nanmedian(left)
    if not np.isfinite(diffs).any():
        return None
    noise = robust_std(np.diff(columns)) / np.sqrt(2.0) * 1.25 * np.sqrt(2.0 / half_window)
    best = int(np.nanargmax(np.abs(diffs)))
    typical = np.nanmedian(np.abs(diffs))
    if not (abs(diffs[best]) > min_sigma * noise and abs(diffs[best]) > 3.0 * typical):
        return None
    # the windowed medians plateau around a sharp step: take the plateau's centre
    high = np.nan_to_num(np.abs(diffs)) >= 0.9 * abs(diffs[best])
    lo, hi = best, best
    while lo > 0 and high[lo - 1]:
        lo -= 1
    while hi < n - 1 and high[hi + 1]:
        hi += 1
    return float(np.ceil((lo + hi) / 2.0))


def choose_template(mean, usable, templates, sides=None, clip=4.0):
    """Index of the template (of several) whose scaled fit leaves the smallest residual.

    Parameters
    ----------
    mean : ndarray, shape ``(ny, nx)``
    usable : ndarray of bool
    templates : ndarray, shape ``(ntemplates, ny, nx)``
    sides : list of ndarray of bool, optional
    clip : float

    Returns
    -------
    int
    """
    rms = []
    for template in templates:
        basis = template_basis(template, sides)
        coeffs, kept = fit_basis(mean[None], usable[None], basis, clip=clip)
        model = np.tensordot(np.nan_to_num(coeffs[0]), basis, axes=1)
        rms.append(np.sqrt(np.mean((mean - model)[kept[0]] ** 2)))
    return int(np.argmin(rms))


@dataclass(frozen=True)
class BackgroundOptions:
    """Settings of :func:`fit_background` (the ``tso_background`` spec; see the step).

    Attributes
    ----------
    method : {'line', 'surface', 'template'}
        Line polynomials across the dispersion, a 2-D Legendre surface, or a scaled template
        (the step resolves ``'auto'``).
    per_integration : {'scale', 'full', 'none'}
        What is fitted to each integration (see the module docstring).
    dispersion_axis : int
        1: the spectrum runs along x (lines across the dispersion are columns); 0: along y.
    line_degree, line_window : int
        Line method: polynomial degree, and adjacent lines fitted together.
    surface_degree : int
        Surface method: total Legendre degree.
    """

    method: str = "surface"
    per_integration: str = "scale"
    dispersion_axis: int = 1
    line_degree: int = 1
    line_window: int = 1
    surface_degree: int = 2


def _fitter(method, dispersion_axis, line_order, line_window, surface_order, template, sides):
    """A function ``f(images, usable) -> (models, kept, n_filled)`` for the chosen method."""
    if method == "line":

        def fit(images, usable):
            if dispersion_axis == 0:  # lines across the dispersion are rows: work transposed
                images, usable = images.transpose(0, 2, 1), usable.transpose(0, 2, 1)
            models, kept, filled = fit_lines(images, usable, line_order, line_window)
            if dispersion_axis == 0:
                models, kept = models.transpose(0, 2, 1), kept.transpose(0, 2, 1)
            return models, kept, filled

        return fit
    basis = None

    def fit(images, usable):
        nonlocal basis
        if basis is None:
            shape = images.shape[1:]
            basis = (
                template_basis(template, sides)
                if method == "template"
                else surface_basis(shape, surface_order, sides)
            )
        coeffs, kept = fit_basis(images, usable, basis)
        return np.tensordot(np.nan_to_num(coeffs), basis, axes=1), kept, 0

    return fit


def fit_background(cube, usable, options, *, template=None, discontinuity=None):
    """Fit the background of every integration of a cube.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, ny, nx)``
        Images, any units (DN/s for rateints).
    usable : ndarray of bool, same shape
        Off-source, finite, good samples.
    options : BackgroundOptions
    template : ndarray, shape ``(ny, nx)``, optional
        Template method: the background template.
    discontinuity : float or ndarray, optional
        Column(s) of a step in the background: surface and template get separate
        coefficients on each side (the line method is unaffected: a vertical step falls
        between its lines when the dispersion is along x).

    Returns
    -------
    BackgroundFit
    """
    nints = cube.shape[0]
    shape2d = cube.shape[1:]
    method, per_integration = options.method, options.per_integration
    if method == "template" and template is None:
        raise ValueError("method='template' needs a template.")
    sides = None if discontinuity is None else side_masks(shape2d, discontinuity)
    fit = _fitter(
        method,
        options.dispersion_axis,
        options.line_degree,
        options.line_window,
        options.surface_degree,
        template,
        sides,
    )

    mean, fraction = clipped_mean(cube, usable)
    mean_usable = (fraction >= 0.5) & np.isfinite(mean)
    if not mean_usable.any():
        raise ValueError("No unilluminated pixel is usable in at least half the integrations.")
    models, kept, n_filled = fit(mean[None], mean_usable[None])
    shape = models[0]
    if per_integration == "full":
        out = np.empty(cube.shape, dtype=np.float64)
        for start in range(0, nints, _CHUNK):
            stop = min(start + _CHUNK, nints)
            out[start:stop] = fit(cube[start:stop], usable[start:stop])[0]
        shape = out.mean(axis=0)
        norm = np.sum(shape * shape)
        scales = np.tensordot(out, shape, axes=([1, 2], [0, 1])) / norm if norm > 0 else None
        scales = np.ones(nints) if scales is None else scales
        return BackgroundFit(shape, scales, out, kept[0], n_filled)
    if per_integration == "scale":
        scales, _ = fit_scales(cube, usable, shape, keep=False)
        bad = ~np.isfinite(scales)
        if bad.all():
            raise ValueError("No integration has usable pixels to scale the background.")
        if bad.any():
            log.warning("%d integrations without usable background pixels: scale 1", bad.sum())
            scales[bad] = 1.0
    else:
        scales = np.ones(nints)
    return BackgroundFit(shape, scales, None, kept[0], n_filled)
