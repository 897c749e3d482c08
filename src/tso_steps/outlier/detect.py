"""Outlier detection in time: each pixel's series against a flux- and motion-aware model.

Model of pixel ``p`` in integration ``t`` (``f`` the relative flux of the integration,
``X`` the per-integration motion regressors, ``o`` an additive offset shared by the pixels
of one detector line and output)::

    data[t, p] = f[t] * (baseline[t, p] + X[t] @ coef[p] + o[t, line(p)]) + noise

``baseline`` is a running median over integrations of ``data / f`` after removing the
motion and common-mode terms, so a transit, eclipse or ramp (in ``f``) and a slow drift (in
the running median) are not outliers; ``coef`` is a per-pixel linear regression of the
residual on the motion regressors (the first- and second-order Taylor terms of the image in
the shift), so a pixel on the steep flank of a trace that moves during jitter or a tilt
event is not an outlier either; ``o`` is the median residual of each line segment (1/f
noise and amplifier offsets, which move whole lines together).  A sample is an outlier
when its residual, divided by its expected noise (the smoothed ERR), exceeds ``threshold``
times the pixel's own robust scatter of that ratio (floored at ``floor``).  Flagged and
DO_NOT_USE samples are excluded from every statistic, and the fit is repeated until the set
of flags stops changing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.outlier.timeseries import (
    fill_masked,
    fit_regressors,
    group_median,
    masked_median,
    regressor_leverage,
    robust_scale,
    sampled_rolling_median,
)

__all__ = [
    "OutlierOptions",
    "detect_series_outliers",
    "fast_regressors",
    "flag_block",
    "flag_series",
    "motion_sensitive",
    "noise_and_floor",
    "series_relative_flux",
]

log = logging.getLogger("stpipe.tso_steps.outlier")


def flag_block(
    y,
    bad0,
    flux,
    design,
    noise,
    floor,
    threshold,
    window,
    step,
    iterations,
    groups=(),
    motion_rows=None,
    neighbor_threshold=None,
):
    """Flag outliers in a block of pixel time series (see the module docstring).

    Parameters
    ----------
    y : ndarray, shape ``(npix, nints)``
        Data, one row per pixel.
    bad0 : ndarray of bool, same shape
        Samples never used nor flagged.
    flux : ndarray, shape ``(nints,)``
        Relative flux.
    design : ndarray, shape ``(nints, k)``
        Motion regressors (``k`` may be 0).
    noise : ndarray, same shape as ``y``, or float
        Expected noise of each sample divided by the relative flux (e.g. the smoothed ERR),
        or 1: residuals are divided by it before the per-pixel scatter is measured, so a
        pixel whose photon noise changes (a trace moving onto it) keeps a fair threshold.
    floor : ndarray, shape ``(npix,)``, or float
        Smallest allowed scatter of ``residual / noise``.
    threshold : float
    window, step : int
        Running-median window and the spacing of its centres.
    iterations : int
        Maximum number of passes.
    groups : sequence of ndarray of int
        Rows sharing a common-mode offset (see :func:`timeseries.group_median`); empty for
        none.
    motion_rows : ndarray of bool, shape ``(npix,)``, optional
        Rows that get the motion regression (default all); the others have no motion term
        (see :func:`motion_sensitive`).
    neighbor_threshold : float, optional
        Also return the unflagged samples beyond this many times the scatter: they are
        flagged where they touch a flagged sample
        (see :func:`~tso_steps.outlier.cube.grow_flags`).

    Returns
    -------
    flags : ndarray of bool, shape ``(npix, nints)``
    model : ndarray of float64, shape ``(npix, nints)``
        The model of every sample in data units.
    iterations : int
        Passes run.
    candidates : ndarray of bool, shape ``(npix, nints)``, or None
        With ``neighbor_threshold``: unflagged usable samples beyond it.
    """
    npix, nints = y.shape
    # Work in the block's precision (float32 halves memory traffic; residuals of a few
    # hundred sigma at most need no more).
    norm = y / flux.astype(y.dtype)
    if np.ndim(noise):
        noise = noise.astype(y.dtype, copy=False)
    bad0 = bad0 | ~np.isfinite(norm)
    regressors = fast_regressors(design, window)
    ncoef = regressors.shape[1]
    # Sampled running medians are refined where they jump by more than about two sigma
    # (the median absolute difference of consecutive samples is 0.95 sigma for white noise).
    tol = 2.0 * masked_median(np.abs(np.diff(norm, axis=1)), bad0[:, 1:] | bad0[:, :-1])
    mask = bad0
    flags = np.zeros_like(bad0)
    baseline = np.empty_like(norm)
    motion = np.zeros_like(norm) if ncoef else 0.0
    leverage = np.zeros(norm.shape) if ncoef else None
    common = 0.0
    sigma = np.zeros(npix)
    rows = np.arange(npix)
    done = 0
    for done in range(1, iterations + 1):
        # After the second pass only the pixels whose mask changed need a new baseline,
        # regression and scatter, and the common mode (fitted on all pixels in the first
        # two passes) is kept.
        sub_mask = mask[rows]
        sub_norm = norm[rows]
        sub_common = common[rows] if np.ndim(common) else common
        if ncoef:
            # Start each refit from no motion: a motion term fitted before an outlier was
            # masked carries that outlier, and would pass it on through the baseline.
            motion[rows] = 0.0
            filled = fill_masked(sub_norm - motion[rows] - sub_common, sub_mask)
        else:
            filled = fill_masked(sub_norm - sub_common, sub_mask)
        baseline[rows] = sampled_rolling_median(filled, window, step, tol=tol[rows])
        if ncoef:
            # only the motion rows are fitted: the others keep no motion term and no leverage
            fit = rows if motion_rows is None else rows[motion_rows[rows]]
            if fit.size:
                fit_mask = mask[fit]
                fast = norm[fit] - baseline[fit] - (common[fit] if np.ndim(common) else common)
                coef = fit_regressors(np.where(fit_mask, 0.0, fast), ~fit_mask, regressors)
                motion[fit] = coef @ regressors.T
                # A sample's own regression takes h of its value: studentize, so an outlier
                # in an integration of extreme measured motion is not absorbed by the fit
                leverage[fit] = regressor_leverage(~fit_mask, regressors)
        if done <= 2:
            residual = norm - baseline - motion
            if groups:
                common = group_median(residual, mask, groups)
            residual = _scaled_residual(residual, None, common, noise, leverage, motion_rows)
            sigma[:] = robust_scale(residual, mask)
            with np.errstate(invalid="ignore"):
                new_flags = (np.abs(residual) > threshold * np.fmax(sigma, floor)[:, None]) & ~bad0
            if done > 1 and np.array_equal(new_flags, flags):
                break
            rows = np.flatnonzero((new_flags != flags).any(axis=1)) if done > 1 else rows
            flags = new_flags
        else:
            # the common mode is kept from the second pass, so a row not refitted keeps its
            # residual, scatter and flags: only the refitted rows are evaluated again
            residual = norm[rows] - baseline[rows] - (motion[rows] if ncoef else motion)
            residual = _scaled_residual(residual, rows, common, noise, leverage, motion_rows)
            sigma[rows] = robust_scale(residual, sub_mask)
            row_floor = floor[rows] if np.ndim(floor) else floor
            with np.errstate(invalid="ignore"):
                limit = threshold * np.fmax(sigma[rows], row_floor)[:, None]
                new_rows = (np.abs(residual) > limit) & ~bad0[rows]
            changed = (new_rows != flags[rows]).any(axis=1)
            if not changed.any():
                break
            flags[rows] = new_rows
            rows = rows[changed]
        mask = bad0 | flags
    model = (baseline + motion + common) * flux
    candidates = None
    if neighbor_threshold:
        residual = norm - baseline - motion
        residual = _scaled_residual(residual, None, common, noise, leverage, motion_rows)
        with np.errstate(invalid="ignore"):
            limit = neighbor_threshold * np.fmax(sigma, floor)[:, None]
            candidates = (np.abs(residual) > limit) & ~bad0 & ~flags
    return flags, model, done, candidates


def _scaled_residual(residual, rows, common, noise, leverage, motion_rows):
    """``(residual - common) / noise``, studentized by the leverage of the motion fit.

    ``residual`` holds the block's ``rows`` (all rows when None); it is changed in place.
    Rows without a motion fit have no leverage (a division by one is skipped).
    """

    def pick(array):
        return array if rows is None or not np.ndim(array) else array[rows]

    residual -= pick(common)
    residual /= pick(noise)
    if leverage is not None:
        studentize = slice(None) if motion_rows is None else pick(motion_rows)
        lev = pick(leverage)[studentize]
        residual[studentize] /= np.sqrt(1.0 - np.minimum(lev, 0.99)).astype(residual.dtype)
    return residual


def motion_sensitive(reference, noise, motion_rms, nterms, nints):
    """Pixels whose motion signal is worth a regression (Mallows' Cp / Akaike criterion).

    A motion regression of ``nterms`` coefficients fitted to ``nints`` samples costs
    ``nterms / nints`` of the noise variance (it also fits noise, and absorbs part of any
    outlier); it pays where the expected motion signal, ``|grad R| s + |laplacian R| s^2 / 2``
    for an image ``R`` moved by ``s`` pixels rms, has a larger variance than that.  Faint
    pixels away from the source (snowball halos, showers in the background) get no
    regression, so a pixel hit several times is not fitted with motion terms it cannot have.

    Parameters
    ----------
    reference : ndarray, shape ``(ny, nx)``
        Median frame (NaN where unknown).
    noise : ndarray, shape ``(ny, nx)``
        Noise of one sample (e.g. the median ERR).
    motion_rms : float
        Root-sum-square of the motion regressors' rms, pixels.
    nterms, nints : int

    Returns
    -------
    ndarray of bool, shape ``(ny, nx)``
    """
    image = np.where(np.isfinite(reference), reference, 0.0)
    gradients = np.gradient(image)
    slope = np.sqrt(sum(g * g for g in gradients))
    curvature = np.abs(sum(np.gradient(g, axis=k) for k, g in enumerate(gradients)))
    signal = slope * motion_rms + 0.5 * curvature * motion_rms**2
    with np.errstate(invalid="ignore"):
        return ~(signal**2 <= nterms / nints * noise**2)


def fast_regressors(design, window, rcond=1e-3):
    """The part of the motion regressors that a running median cannot follow.

    Slow motion (drifts) and steps (tilt events) are absorbed by the running median of each
    pixel; what is left for the regression is each regressor minus its own running median,
    re-orthonormalised (directions with no power are dropped).

    Parameters
    ----------
    design : ndarray, shape ``(nints, k)``
    window : int
    rcond : float

    Returns
    -------
    ndarray, shape ``(nints, k')``
    """
    if design.shape[1] == 0:
        return design
    fast = design - sampled_rolling_median(np.ascontiguousarray(design.T), window).T
    u, s, _ = np.linalg.svd(fast, full_matrices=False)
    # Compared with the full regressors (unit RMS): fast parts below rcond of that are noise.
    keep = s > rcond * np.sqrt(design.shape[0])
    return u[:, keep] * np.sqrt(design.shape[0])


def series_relative_flux(y, bad):
    """Flux of each time relative to the median, from the brighter half of the series.

    Parameters
    ----------
    y : ndarray, shape ``(npix, nints)``
    bad : ndarray of bool, same shape

    Returns
    -------
    ndarray of float64, shape ``(nints,)``
        Median 1; 1 where nothing could be measured.
    """
    level = masked_median(y, bad)
    positive = np.isfinite(level) & (level > 0)
    if not positive.any():
        return np.ones(y.shape[1])
    bright = positive & (level >= np.median(level[positive]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = masked_median((y[bright] / level[bright, None]).T, bad[bright].T)
    norm = np.nanmedian(ratio)
    if not np.isfinite(norm) or norm <= 0:
        return np.ones(y.shape[1])
    ratio = ratio / norm
    return np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)


def noise_and_floor(err, bad, flux, fraction, window, step):
    """Relative noise of every sample and the floor of the scatter in those units.

    Without ERR the noise is 1 everywhere and there is no floor.  With ERR the noise is a
    running median in time of ``ERR / flux`` (so a cosmic ray inflating its own ERR does not
    hide itself) and the floor is ``fraction``: the empirical scatter may not fall below
    that fraction of the pipeline's ERR.

    Parameters
    ----------
    err : ndarray, shape ``(npix, nints)``, or None
    bad : ndarray of bool, same shape
    flux : ndarray, shape ``(nints,)``
    fraction : float
    window, step : int

    Returns
    -------
    noise : ndarray or float
    floor : ndarray or float
    """
    if err is None:
        return 1.0, 0.0
    err = np.asarray(err)
    err = err / flux.astype(err.dtype if err.dtype == np.float32 else np.float64)
    unusable = bad | ~np.isfinite(err) | (err <= 0)
    noise = sampled_rolling_median(fill_masked(err, unusable), window, step)
    # Pixels with no usable ERR at all fall back to unit noise and no floor.
    missing = ~np.isfinite(noise) | (noise <= 0)
    noise[missing] = 1.0
    floor = np.where(missing.all(axis=1), 0.0, fraction)
    return noise, floor


@dataclass(frozen=True)
class OutlierOptions:
    """Settings of the outlier search (the ``tso_outlier`` spec; see the step).

    Attributes
    ----------
    rejection_threshold : float
        Flag where ``|residual| > rejection_threshold * scatter``.
    rolling_window_width : int
        Integrations in the running median.
    max_iterations : int
        Maximum number of fit-and-flag iterations (stops early once the flags are stable).
    err_floor : float
        Fraction of the median ERR used as the floor of the scatter.
    neighbor_threshold : float
        A sample next to a flagged one in the same integration (8 neighbours) is flagged
        where ``|residual| > neighbor_threshold * scatter``; 0 turns this off (cubes only).
    step : int, optional
        Spacing of the running-median windows; default ``rolling_window_width // 5``.
    """

    rejection_threshold: float = 4.5
    rolling_window_width: int = 25
    max_iterations: int = 4
    err_floor: float = 1.0
    neighbor_threshold: float = 3.5
    step: int | None = None

    @property
    def median_step(self):
        """int : Spacing of the running-median windows actually used."""
        return max(1, self.rolling_window_width // 5) if self.step is None else self.step


def detect_series_outliers(
    series, err=None, mask=None, *, design=None, relative_flux=None, options=None
):
    """Flag outliers in a set of time series (time along the first axis).

    Parameters
    ----------
    series : ndarray, shape ``(nints, ...)``
        e.g. a spectrum's FLUX ``(nints, nwave)`` or a cube ``(nints, ny, nx)``.
    err : ndarray, optional
        Same shape; its per-pixel median (divided by the relative flux) times
        ``options.err_floor`` is the smallest scatter a series may have.
    mask : ndarray of bool, optional
        True where a sample must not be used (never flagged, never in a statistic).
    design : ndarray, shape ``(nints, k)``, optional
        Motion regressors (:func:`tso_steps.motion.motion_design_matrix`).
    relative_flux : ndarray, shape ``(nints,)``, optional
        Default: measured from ``series`` with :func:`series_relative_flux`.
    options : OutlierOptions, optional
        Settings; default ``OutlierOptions()``.

    Returns
    -------
    flags : ndarray of bool
        Same shape as ``series``, True at outliers.
    model : ndarray of float64
        The model of every sample, in the units of ``series``.
    """
    series = np.asarray(series)
    nints = series.shape[0]
    block = np.ascontiguousarray(series.reshape(nints, -1).T, dtype=np.float64)
    bad = ~np.isfinite(block)
    if mask is not None:
        bad |= np.asarray(mask).reshape(nints, -1).T
    if relative_flux is None:
        relative_flux = series_relative_flux(block, bad)
    flux = np.asarray(relative_flux, dtype=np.float64)
    design = np.zeros((nints, 0)) if design is None else np.asarray(design, dtype=np.float64)
    err_block = None if err is None else np.asarray(err).reshape(nints, -1).T
    flags, model, _, _ = flag_series(block, bad, flux, design, err_block, options)
    return flags.T.reshape(series.shape), model.T.reshape(series.shape)


def flag_series(
    block, bad, flux, design, err=None, options=None, groups=(), motion_rows=None, neighbors=False
):
    """Noise model, floor and fit-and-flag passes of a block of series (see :func:`flag_block`).

    Parameters
    ----------
    block, bad, flux, design, groups, motion_rows
        As in :func:`flag_block`.
    neighbors : bool
        Return the candidates of ``options.neighbor_threshold`` (see :func:`flag_block`).
    err : ndarray, shape like ``block``, optional
        The pipeline's ERR of every sample (see :func:`noise_and_floor`).
    options : OutlierOptions, optional
        Settings; default ``OutlierOptions()``.

    Returns
    -------
    flags, model, iterations, candidates
        As :func:`flag_block`.
    """
    o = OutlierOptions() if options is None else options
    window, step = o.rolling_window_width, o.median_step
    noise, floor_values = noise_and_floor(err, bad, flux, o.err_floor, window, step)
    return flag_block(
        block,
        bad,
        flux,
        design,
        noise,
        floor_values,
        o.rejection_threshold,
        window,
        step,
        o.max_iterations,
        groups,
        motion_rows,
        o.neighbor_threshold if neighbors else None,
    )
