"""Tracing a spectral cube on arrays: the reference trace and every integration's shift.

The algorithm of ``tso_trace`` without a datamodel: :func:`trace_cube` takes the cube, its
variance and its bad-sample mask (dispersion along the last axis) and one
:class:`TraceOptions`; :func:`tso_steps.trace.measure_trace` is its model adapter.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from tso_steps.stats import nanmedian_last
from tso_steps.trace.pixel_profile import fit_pixel_profiles
from tso_steps.trace.positions import integration_positions
from tso_steps.trace.reference import fill_bad, reference_trace

__all__ = ["NoTraceError", "TraceOptions", "trace_cube"]

log = logging.getLogger("stpipe.tso_steps.trace")


class NoTraceError(ValueError):
    """No spectral trace was found on the array."""


@dataclass(frozen=True)
class TraceOptions:
    """Settings of :func:`trace_cube` (the ``tso_trace`` spec, see the step).

    Attributes
    ----------
    norders : int
        Orders to trace.
    degree : int or None
        Reference trace along the dispersion: None for a robust penalised spline (stiffness
        by generalised cross-validation), an integer for a robust polynomial of that degree.
    segment : int
        Dispersion pixels sharing one empirical profile template.
    min_snr : float
        Columns whose profile is less significant are not traced.
    clip_sigma : float
        Per-integration fit: reject samples beyond this many sigma (0: none).
    undersampled_fwhm : float
        Orders with a narrower FWHM (px) are moved with a pixel-integrated profile model.
    priors : tuple of `~tso_steps.trace.soss_prior.SossTracePrior` or None, optional
        Per-order model traces whose wheel angle and offset are fitted instead of a free
        curve (None entries: free curve for that order).
    """

    norders: int = 1
    degree: int | None = None
    segment: int = 128
    min_snr: float = 5.0
    clip_sigma: float = 5.0
    undersampled_fwhm: float = 2.5
    priors: tuple | None = None


def trace_cube(cube, variance, bad, options):
    """Reference trace and per-integration shifts of a spectral cube.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, n_cross, n_disp)``
        Integrations, dispersion along the last axis.
    variance : ndarray, same shape
        Per-sample variance (or any object with ``shape``, ``ndim`` and numpy indexing,
        such as :class:`~tso_steps.inputs.VarianceFrames`: only slabs are read).
    bad : ndarray of bool, same shape
        Samples not to use.
    options : TraceOptions

    Returns
    -------
    ref : `~tso_steps.trace.reference.ReferenceTrace`
    positions : `~tso_steps.trace.positions.TracePositions`
        NaN for integrations without a usable sample.
    found : ndarray of bool, shape ``(norders,)``
        Orders found on the array.

    Raises
    ------
    ValueError
        If every sample is bad.
    NoTraceError
        If the first order is not found.
    """
    if bad.all():
        raise ValueError("tso_trace: every sample is NaN or DO_NOT_USE: nothing to trace.")
    lost = bad.reshape(bad.shape[0], -1).all(axis=1)
    mean, mean_var = _stack(cube, variance, bad)
    ref = reference_trace(
        mean,
        mean_var,
        norders=options.norders,
        degree=options.degree,
        min_snr=options.min_snr,
        segment=options.segment,
        priors=options.priors,
        undersampled_fwhm=options.undersampled_fwhm,
    )
    for prior in options.priors or ():
        if prior is not None and prior.last is not None:
            log.info(
                "Order %d: pastasoss trace fitted with PWCPOS %+.4f deg, offset %+.3f px "
                "(%d columns kept)",
                prior.order,
                prior.last.dpwcpos,
                prior.last.dy,
                prior.last.used.sum(),
            )
    found = np.isfinite(ref.center).any(axis=1)
    if not found[0]:
        raise NoTraceError("No spectral trace found on the array.")
    for k in np.flatnonzero(~found):
        log.warning("Order %d not found on the array: its trace_center row is NaN.", k + 1)
    filled = fill_bad(mean, np.isfinite(mean))
    profiles = _pixel_profiles(filled, mean_var, ref, found, options.undersampled_fwhm)
    positions = integration_positions(
        cube,
        variance,
        filled,
        ref.center[found],
        ref.halfwidth[found],
        bad=bad,
        profiles=profiles,
        reference_variance=mean_var,
        clip=options.clip_sigma,
    )
    for values in (positions.shift, positions.shift_error, positions.width_scale):
        values[lost] = np.nan  # nothing to measure in a lost integration
    log.info(
        "Shifts measured with the %s shift model (the pixel model unless the band-limited "
        "one's residuals vary significantly less between integrations)",
        positions.shift_model,
    )
    return ref, positions, found


def _pixel_profiles(mean, variance, ref, found, max_fwhm):
    """Pixel-integrated profile models for the undersampled orders (None for the others)."""
    weight = np.where(np.isfinite(variance) & (variance > 0), 1.0 / variance, 0.0)
    profiles = []
    for k in np.flatnonzero(found):
        if ref.fwhm[k] < max_fwhm:
            profiles.append(fit_pixel_profiles(mean, weight, ref.center[k], ref.halfwidth[k]))
            log.info(
                "Order %d is undersampled (FWHM %.2f px): a pixel-integrated model competes "
                "with the band-limited interpolation for its shifts",
                k + 1,
                ref.fwhm[k],
            )
        else:
            profiles.append(None)
    return profiles


def _stack(cube, variance, bad, clip=5.0, samples=1_000_000):
    """Clipped mean frame and its variance.

    A clipped mean rather than a median: the template's noise enters every integration's
    fit, and a mean has pi/2 times less of it; samples more than ``clip`` sigma from the
    median (cosmic rays) are left out.  Computed on slabs of cross-dispersion rows of about
    ``samples`` samples (every pixel's statistics are over integrations only), so the
    float64 temporaries stay small whatever the length of the segment.
    """
    nints, n_cross, n_disp = cube.shape
    mean = np.empty((n_cross, n_disp))
    mean_var = np.empty((n_cross, n_disp))
    step = max(1, samples // max(nints * n_disp, 1))
    for y0 in range(0, n_cross, step):
        rows = slice(y0, y0 + step)
        mean[rows], mean_var[rows] = _stack_rows(
            np.asarray(cube[:, rows], dtype=np.float64),
            np.asarray(variance[:, rows], dtype=np.float64),
            bad[:, rows],
            clip,
        )
    return mean, mean_var


def _stack_rows(cube, variance, bad, clip):
    """:func:`_stack` on one slab of rows."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # one sort along a contiguous last axis: the same medians as np.nanmedian, faster
        clean = np.where(bad, np.nan, cube).transpose(1, 2, 0).copy()
        median = nanmedian_last(clean)
        keep = ~bad & (np.abs(cube - median) <= clip * np.sqrt(variance))
        count = keep.sum(axis=0)
        mean = np.where(count > 0, np.sum(np.where(keep, cube, 0.0), axis=0) / count, median)
        mean_var = np.sum(np.where(keep, variance, 0.0), axis=0) / np.maximum(count, 1) ** 2
    mean_var = np.where(count > 0, mean_var, np.nan)
    return mean, mean_var
