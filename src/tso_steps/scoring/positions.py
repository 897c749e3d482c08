"""Position scores against a simulation's truth: Cramer-Rao bounds and trace-shift recovery.

Part of :mod:`tso_steps.scoring`.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

__all__ = [
    "flux_weighted_trace_positions",
    "pointing_cramer_rao",
    "score_trace_shifts",
    "shift_cramer_rao",
    "simulate_trace_case",
]


def shift_cramer_rao(truth, rateints, integration, shift_axis, step=1e-3):
    """Cramer-Rao bound of one integration's position along one axis, pixels.

    ``sigma^-2 = sum over pixels of (dI/ds)^2 / var``, with the derivative of the noiseless
    source image with respect to the pointing shift taken by central differences, and the
    white-noise variance ``var_poisson + var_rnoise`` of the rateints.

    Parameters
    ----------
    truth : `~tso_steps.simulate.SimulationTruth`
    rateints : `~stdatamodels.jwst.datamodels.CubeModel`
    integration : int
        0-based integration.
    shift_axis : int
        Column of ``truth.shifts``: 0 for a shift along x, 1 along y.
    step : float
        Finite-difference step, pixels.

    Returns
    -------
    float
    """
    images = []
    for sign in (1, -1):
        shifts = truth.shifts.copy()
        shifts[integration, shift_axis] += sign * step
        images.append(dataclasses.replace(truth, shifts=shifts).source_image(integration))
    derivative = (images[0] - images[1]) / (2 * step)
    var = rateints.var_poisson[integration] + rateints.var_rnoise[integration]
    return float(1.0 / np.sqrt(np.sum(derivative**2 / var)))


def flux_weighted_trace_positions(cube, variance, centers, halfwidth, bad=None, clip=5.0):
    """The simple baseline tracer: a flux-weighted centre per column, averaged over columns.

    Per integration and column: the centre of mass of the pixels within ``halfwidth`` of the
    reference centre after subtracting the median of the 4 pixels just outside on each side;
    its variance from the per-pixel variance; the integration's position is the
    inverse-variance weighted mean of the column centres minus their reference centres
    (columns more than ``clip`` robust sigma from the median are left out).

    Parameters
    ----------
    cube, variance : ndarray, shape ``(nints, n_cross, n_disp)``
        Dispersion along the last axis.
    centers : ndarray, shape ``(n_disp,)``
        Reference centre per column (NaN: not traced).
    halfwidth : float
        Window half-width, px.
    bad : ndarray of bool, optional
        Same shape as ``cube``: samples not to use.
    clip : float
        Column rejection threshold.

    Returns
    -------
    ndarray, shape ``(nints,)``
        Mean offset of the column centres from ``centers``, px.
    """
    nints, n_cross, _ = cube.shape
    cols = np.flatnonzero(np.isfinite(centers))
    rows = np.arange(n_cross, dtype=float)[:, None]
    dist = np.abs(rows - centers[cols][None, :])
    inside = dist <= halfwidth
    ring = (dist > halfwidth) & (dist <= halfwidth + 4)
    positions = np.full(nints, np.nan)
    for i in range(nints):
        d, v = cube[i][:, cols], variance[i][:, cols]
        good = np.isfinite(d) & np.isfinite(v) & (v > 0)
        if bad is not None:
            good &= ~bad[i][:, cols]
        d = np.where(good, d, 0.0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bkg = np.nanmedian(np.where(ring & good, d, np.nan), axis=0)
            bkg = np.where(np.isfinite(bkg), bkg, 0.0)
            use = inside & good
            flux = np.sum(np.where(use, d - bkg, 0.0), axis=0)
            com = np.sum(np.where(use, (d - bkg) * rows, 0.0), axis=0) / flux
            err2 = np.sum(np.where(use, v * (rows - com) ** 2, 0.0), axis=0) / flux**2
        dev = com - centers[cols]
        ok = np.isfinite(dev) & np.isfinite(err2) & (err2 > 0) & (flux > 0)
        if not ok.any():
            continue
        mad = 1.4826 * np.median(np.abs(dev[ok] - np.median(dev[ok])))
        ok &= np.abs(dev - np.median(dev[ok])) <= clip * mad + 1e-9
        positions[i] = np.sum(dev[ok] / err2[ok]) / np.sum(1.0 / err2[ok])
    return positions


def simulate_trace_case(mode, family, breathing, *, seed, nints, crop):
    """One cell of the tracing matrix: mode x PSF family x breathing (rateints only).

    0.03 px cross-dispersion random walk plus a 0.02 px tilt at mid-exposure, no cosmic
    rays, no 1/f, 3 groups; ``breathing`` True gives the default
    :class:`~tso_steps.simulate.psf_families.Breathing` (2 % drift, 0.5 % step).

    Returns
    -------
    `~tso_steps.simulate.SimulationResult`
    """
    from tso_steps.simulate import Jitter, simulate_tso
    from tso_steps.simulate.psf_families import Breathing

    along_x = mode != "MIR_LRS-SLITLESS"
    rms = (0.0, 0.03) if along_x else (0.03, 0.0)
    tilt = (0.0, 0.02) if along_x else (0.02, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(
            mode,
            nints=nints,
            ngroups=3,
            seed=seed,
            crop=crop,
            products=("rateints",),
            jitter=Jitter(rms=rms, tilt_integration=nints // 2, tilt=tilt),
            cosmic_rays=False,
            one_over_f=False,
            psf_family=family,
            breathing=Breathing() if breathing else False,
        )


def score_trace_shifts(sim, shift, center, halfwidth, every=10):
    """RMS errors of a tracer and of the flux-weighted centre, and the Cramer-Rao bound.

    Parameters
    ----------
    sim : `~tso_steps.simulate.SimulationResult`
        With rateints and cross-dispersion jitter only.
    shift : ndarray, shape ``(nints,)``
        The tracer's per-integration cross-dispersion positions, px.
    center : ndarray, shape ``(n_disp,)``
        Reference centre for the flux-weighted centre's window.
    halfwidth : float
        Its half-width, px.
    every : int
        The bound is averaged (in quadrature) over every ``every``-th integration.

    Returns
    -------
    dict
        ``trace`` and ``com``: RMS errors (means removed), px; ``crb``: the bound, px.
    """
    truth = sim.truth.shift_cross_dispersion
    truth = truth - truth.mean()
    cube = np.asarray(sim.rateints.data, float)
    var = np.asarray(sim.rateints.var_poisson + sim.rateints.var_rnoise, float)
    if sim.truth.dispersion_axis == 0:
        cube, var = np.swapaxes(cube, 1, 2), np.swapaxes(var, 1, 2)
    com = flux_weighted_trace_positions(cube, var, center, halfwidth)
    column = 1 if sim.truth.dispersion_axis == 1 else 0
    bounds = [
        shift_cramer_rao(sim.truth, sim.rateints, i, column)
        for i in range(0, sim.truth.nints, every)
    ]

    def rms(x):
        return float(np.sqrt(np.mean((x - x.mean() - truth) ** 2)))

    return {"trace": rms(shift), "com": rms(com), "crb": float(np.sqrt(np.mean(np.square(bounds))))}


def pointing_cramer_rao(sim, step=1e-3):
    """Cramer-Rao bound (px) on the x and y pointing shift of one integration, on average.

    ``sigma^-2 = sum (dI/ds)^2 / var`` with ``I`` the noiseless source rate image and ``var``
    the per-pixel median (over integrations) of ``var_poisson + var_rnoise``; derivatives by
    moving the simulated source by +-``step`` (the simulator's scene renders any pointing),
    Fisher information averaged over integrations.

    Parameters
    ----------
    sim : `~tso_steps.simulate.SimulationResult`
        A simulation with a ``rateints`` product.
    step : float
        Finite-difference step, pixels.

    Returns
    -------
    ndarray, shape (2,)
        Bounds along x and y.
    """
    truth, cube = sim.truth, sim.rateints
    var = np.median(cube.var_poisson + cube.var_rnoise, axis=0)
    info = np.zeros(2)
    for i in range(truth.nints):
        sx, sy = truth.shifts[i]
        for axis, (ex, ey) in enumerate(((step, 0.0), (0.0, step))):
            plus = truth._scene.source(i, (sx + ex, sy + ey))
            minus = truth._scene.source(i, (sx - ex, sy - ey))
            derivative = (plus - minus) / (2 * step) / truth.gain
            info[axis] += np.sum(derivative**2 / var)
    return np.sqrt(truth.nints / info)
