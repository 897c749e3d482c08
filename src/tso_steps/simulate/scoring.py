"""Score a reduction against a simulation's truth (flags, noise, transit depth).

Used by the tests, the benchmarks and the demo, and public so that users can score their
own reductions of simulated data the same way.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.stats import robust_std_last

__all__ = [
    "TransitFit",
    "background_noise_ratio",
    "depth_recovery",
    "line_level_oracle",
    "channel_sums",
    "correlated_noise_ratio",
    "cosmic_ray_rate_effect",
    "fit_transit_scale",
    "flux_weighted_trace_positions",
    "pointing_cramer_rao",
    "group_difference_noise",
    "score_jump_flags",
    "score_outlier_flags",
    "score_trace_shifts",
    "shift_cramer_rao",
    "simulate_trace_case",
    "truth_aperture",
]

JUMP_DET = dqflags.group["JUMP_DET"]


def group_difference_noise(sim, nsample=10):
    """Expected noise of one group difference of every pixel, DN.

    Photon noise of the median noiseless rate over one group time plus the white read noise
    of two group averages.

    Parameters
    ----------
    sim : `~tso_steps.simulate.SimulationResult`
        A simulation with a ramp.
    nsample : int
        Integrations sampled for the median rate.

    Returns
    -------
    ndarray, shape ``(ny, nx)``
    """
    truth, ramp = sim.truth, sim.ramp
    tgroup, nframes = ramp.meta.exposure.group_time, ramp.meta.exposure.nframes
    sample = range(0, truth.nints, max(1, truth.nints // nsample))
    rate = np.median([truth.rate_image(i) for i in sample], axis=0)
    return np.sqrt(np.abs(rate) * tgroup / truth.gain + 2.0 * truth.frame_variance / nframes)


def score_jump_flags(groupdq, cosmic_rays, sigma, min_sigma=6.0):
    """Recall of injected jumps and false-flag rates of a JUMP_DET map.

    Parameters
    ----------
    groupdq : ndarray, shape ``(nints, ngroups, ny, nx)``
        GROUPDQ after jump detection.
    cosmic_rays : `~astropy.table.Table`
        ``truth.cosmic_rays`` of the simulation.
    sigma : ndarray, shape ``(ny, nx)``
        Group-difference noise (:func:`group_difference_noise`), DN.
    min_sigma : float
        Hits at least this many sigma count for the recall.

    Returns
    -------
    dict
        ``n_hits`` (hits >= ``min_sigma``), ``recall``, ``fp_rate`` (flags without a hit, per
        pixel-group difference), ``fp_isolated`` (the same, excluding the 8 neighbours of a
        hit), ``flagged`` (all flags).
    """
    i, g, y, x, amp = (
        np.asarray(cosmic_rays[k]) for k in ("integration", "group", "y", "x", "amplitude")
    )
    flags = (groupdq[:, 1:] & JUMP_DET) != 0  # group 0 cannot carry a detectable jump
    visible = g >= 1  # a hit before the first read leaves no step
    true = np.zeros(flags.shape, bool)
    true[i[visible], g[visible] - 1, y[visible], x[visible]] = True
    near = true.copy()
    ny, nx = flags.shape[-2:]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy, xx = np.clip(y + dy, 0, ny - 1), np.clip(x + dx, 0, nx - 1)
            near[i[visible], g[visible] - 1, yy[visible], xx[visible]] = True
    big = visible & (amp / sigma[y, x] >= min_sigma)
    recall = flags[i[big], g[big] - 1, y[big], x[big]].mean() if big.any() else np.nan
    return {
        "n_hits": int(big.sum()),
        "recall": float(recall),
        "fp_rate": float((flags & ~true).sum() / flags.size),
        "fp_isolated": float((flags & ~near).sum() / flags.size),
        "flagged": int(flags.sum()),
    }


def cosmic_ray_rate_effect(shape, cosmic_rays):
    """What the injected hits add to each rateints sample, DN/s.

    Parameters
    ----------
    shape : tuple of int
        ``(nints, ny, nx)`` of the rateints.
    cosmic_rays : `~astropy.table.Table`
        ``truth.cosmic_rays`` of the simulation.

    Returns
    -------
    ndarray of float32, shape ``shape``
    """
    effect = np.zeros(shape, dtype=np.float32)
    index = tuple(np.asarray(cosmic_rays[name]) for name in ("integration", "y", "x"))
    np.add.at(effect, index, np.asarray(cosmic_rays["rate_effect"], dtype=np.float32))
    return effect


def score_outlier_flags(flags, rate_effect, noise, level=None, min_sigma=6.0):
    """Recall of injected hits and false-flag rate of a per-sample outlier map.

    Parameters
    ----------
    flags : ndarray of bool, shape ``(nints, ny, nx)``
        True where a sample was flagged.
    rate_effect : ndarray, shape ``(nints, ny, nx)``
        :func:`cosmic_ray_rate_effect`.
    noise : ndarray, shape ``(ny, nx)``
        Per-pixel noise of one sample (e.g. the median ERR over integrations), DN/s.
    level : ndarray, shape ``(ny, nx)``, optional
        Per-pixel median rate; with it, false flags on source pixels (level above 10 times
        the noise) are counted too.
    min_sigma : float
        Hits whose effect is at least this many sigma count for the recall.

    Returns
    -------
    dict
        ``n_hits``, ``recall``, ``fp_rate`` (flags on samples without a hit, per
        pixel-integration) and, with ``level``, ``fp_source``.
    """
    hits = rate_effect >= min_sigma * noise[None]
    false = flags & (rate_effect == 0)
    result = {
        "n_hits": int(hits.sum()),
        "recall": float(flags[hits].mean()) if hits.any() else float("nan"),
        "fp_rate": float(false.sum() / flags.size),
    }
    if level is not None:
        source = np.broadcast_to(level > 10.0 * noise, flags.shape)
        result["fp_source"] = int((false & source).sum())
    return result


def truth_aperture(truth, shape, halfwidth=4.0):
    """A box around the true trace (spectra) or a disk around the true PSF (imaging).

    Parameters
    ----------
    truth : `~tso_steps.simulate.SimulationTruth`
    shape : tuple of int
        ``(ny, nx)`` of the images.
    halfwidth : float
        Half-height of the box across the dispersion, pixels (spectra).

    Returns
    -------
    axis : int or None
        Dispersion axis (1 = x, 0 = y), None for imaging.
    aperture : ndarray of bool, shape ``shape``
    """
    if truth.dispersion_axis is None:
        yc, xc = truth.psf_center
        yy, xx = np.indices(shape)
        return None, (yy - yc) ** 2 + (xx - xc) ** 2 <= (1.5 * truth.psf_width) ** 2
    axis = truth.dispersion_axis
    center = truth.trace_center[0]
    cross = np.arange(shape[0] if axis == 1 else shape[1])[:, None]
    band = (np.abs(cross - center[None, :]) <= halfwidth) & np.isfinite(center)[None, :]
    return axis, band if axis == 1 else band.T


def channel_sums(cube, axis, aperture, width=16):
    """Aperture sums of each integration in spectral channels of ``width`` pixels.

    Parameters
    ----------
    cube : ndarray, shape ``(nints, ny, nx)``
    axis : int or None
        Dispersion axis from :func:`truth_aperture` (None: one sum, imaging).
    aperture : ndarray of bool
    width : int or None
        Dispersion pixels per channel; None sums the whole spectrum (white light).

    Returns
    -------
    ndarray, shape ``(nints, nchannels)``
    """
    if axis is None:
        return np.where(aperture, cube, 0).sum(axis=(1, 2))[:, None]
    columns = np.where(aperture, cube, 0).sum(axis=1 if axis == 1 else 2)
    lit = np.flatnonzero(aperture.any(axis=0 if axis == 1 else 1))
    if width is None:
        return columns[:, lit].sum(axis=1, keepdims=True)
    lit = lit[: lit.size // width * width]
    return columns[:, lit].reshape(cube.shape[0], -1, width).sum(axis=2)


def correlated_noise_ratio(data, floor, noiseless, truth, width=16):
    """Scatter of aperture channel sums relative to the white-noise floor (1.0: no excess).

    The robust scatter over integrations of the channel sums of ``data - noiseless``,
    divided by the same for ``floor - noiseless``, as an RMS over channels.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Corrected (or raw) rates.
    floor : ndarray
        The same simulation without the correlated noise (e.g. ``rateints.data -
        truth.one_over_f``): the same white-noise realisation.
    noiseless : ndarray
        The noiseless rates of the same scene.
    truth : `~tso_steps.simulate.SimulationTruth`
    width : int or None
        Channel width in dispersion pixels (None: white light).

    Returns
    -------
    float
    """
    axis, aperture = truth_aperture(truth, data.shape[1:])
    test = channel_sums(data - noiseless, axis, aperture, width)
    reference = channel_sums(floor - noiseless, axis, aperture, width)
    test_scatter = robust_std_last(np.moveaxis(test, 0, -1), min_count=1)
    reference_scatter = robust_std_last(np.moveaxis(reference, 0, -1), min_count=1)
    return float(np.sqrt(np.mean(test_scatter**2) / np.mean(reference_scatter**2)))


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
    from .core import simulate_tso
    from .effects import Jitter
    from .psf_families import Breathing

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


@dataclasses.dataclass(frozen=True)
class TransitFit:
    """Result of :func:`fit_transit_scale`.

    Attributes
    ----------
    scale, scale_error : float
        Recovered depth in units of the injected one (1 = unbiased), and its 1-sigma error
        (NaN when nothing was injected).
    baseline : float
        Out-of-transit level of the measured flux.
    residual_rms : float
        Scatter of the measured relative flux about the fit.
    """

    scale: float
    scale_error: float
    baseline: float
    residual_rms: float

    @property
    def pull(self):
        """float : Deviation of the scale from 1 in units of its error."""
        return (self.scale - 1.0) / self.scale_error

    @property
    def scatter_ppm(self):
        """float : ``residual_rms`` in parts per million."""
        return 1e6 * self.residual_rms


def fit_transit_scale(flux, light_curve):
    """Fit a measured light curve with the injected one, scaled in depth.

    Model: ``flux = baseline * (1 - scale * (1 - light_curve))``, linear least squares in
    ``baseline`` and ``baseline * scale`` over the finite samples.  ``scale`` is 1 when the
    injected depth is recovered without bias.

    Parameters
    ----------
    flux : array-like, shape (nints,)
        Measured flux per integration (any unit).
    light_curve : array-like, shape (nints,)
        The injected relative flux (e.g. ``truth.light_curve`` or one channel of
        ``truth.spectral_light_curves``).

    Returns
    -------
    TransitFit
        Without an injected transit (``light_curve`` all 1) only the baseline and the
        scatter are fitted; the scale and its error are NaN.
    """
    flux = np.asarray(flux, dtype=np.float64)
    dip = 1.0 - np.asarray(light_curve, dtype=np.float64)
    good = np.isfinite(flux) & np.isfinite(dip)
    if good.sum() < 3:
        raise ValueError("fit_transit_scale needs at least 3 finite samples.")
    flux, dip = flux[good], dip[good]
    if not np.any(dip != 0):
        baseline = float(np.mean(flux))
        rms = float(np.std(flux, ddof=1)) / abs(baseline)
        return TransitFit(np.nan, np.nan, baseline, rms)
    design = np.stack([np.ones(flux.size), -dip], axis=1)
    coeffs, *_ = np.linalg.lstsq(design, flux, rcond=None)
    residual = flux - design @ coeffs
    sigma2 = float(residual @ residual) / max(flux.size - 2, 1)
    cov = sigma2 * np.linalg.inv(design.T @ design)
    baseline, product = coeffs
    scale = product / baseline
    # first-order error of the ratio product / baseline, with their covariance
    variance = (
        cov[1, 1] / baseline**2
        + product**2 * cov[0, 0] / baseline**4
        - 2.0 * product * cov[0, 1] / baseline**3
    )
    return TransitFit(
        scale=float(scale),
        scale_error=float(np.sqrt(max(variance, 0.0))),
        baseline=float(baseline),
        residual_rms=float(np.sqrt(sigma2) / abs(baseline)),
    )


def background_noise_ratio(data, floor, noiseless, background):
    """Frame-level noise of background pixels relative to the white-noise floor.

    ``sqrt(mean (x - <x>_t)**2 / mean (y - <y>_t)**2)`` over the background pixels and all
    frames, with ``x = data - noiseless``, ``y = floor - noiseless`` and ``<.>_t`` each
    pixel's mean over frames (static offsets are not time-variable noise). 1: no correlated
    noise left.

    Parameters
    ----------
    data, floor, noiseless : ndarray, shape ``(nframes, ny, nx)``
        As in :func:`correlated_noise_ratio` (any frames: integrations, group differences).
    background : ndarray of bool, shape ``(ny, nx)``
        Pixels to score (e.g. the simulator's truth of where the source is negligible).

    Returns
    -------
    float
    """

    def power(cube):
        x = (cube - noiseless)[:, background].astype(np.float64)
        x -= x.mean(axis=0)
        return np.mean(x * x)

    return float(np.sqrt(power(data) / power(floor)))


def line_level_oracle(data, injected, layout):
    """``data`` minus the TRUE mean correlated noise of every fast line and output.

    The best any one-level-per-line-and-output correction can do (what stays is the 1/f
    within a line): per frame, the mean of ``injected`` over each even/odd column group of
    each output, then over each (line, output) cell of what that leaves, subtracted.

    Parameters
    ----------
    data, injected : ndarray, shape ``(nframes, ny, nx)``
        Data and the correlated noise injected in it (``truth.one_over_f``).
    layout : `~tso_steps.readout.LineLayout`

    Returns
    -------
    ndarray of float32
    """
    from tso_steps.one_over_f.stripes import fit_stripes, stripe_image

    lines = layout.to_lines(np.asarray(injected, dtype=np.float32))
    weights = np.ones(lines.shape[1:], dtype=np.float32)
    fit = fit_stripes(lines, weights, layout, odd_even=True, min_pixels=1, kappa=1e9, raw=True)
    fit.levels = np.nan_to_num(fit.levels)
    return (data - stripe_image(fit, layout, smooth=False)).astype(np.float32)


def depth_recovery(data, noiseless, truth, width=None):
    """Transit depth recovered from aperture sums of ``data``, against the injected one.

    The injected light curve of each channel is the noiseless channel sum over its median
    (same scene, transit and jitter), so a fit of ``data`` with it
    (:func:`fit_transit_scale`) gives the depth in units of the injected one.

    Parameters
    ----------
    data, noiseless : ndarray, shape ``(nints, ny, nx)``
    truth : `~tso_steps.simulate.SimulationTruth`
    width : int or None
        Channel width (None: white light).

    Returns
    -------
    dict
        ``pull`` (largest ``|scale - 1| / error`` over channels, signed), ``bias`` (the
        largest ``|scale - 1| * depth``, relative flux, signed), ``pull_rms``, and per
        channel ``pulls`` and ``biases`` (arrays).
    """
    axis, aperture = truth_aperture(truth, data.shape[1:])
    measured = channel_sums(data, axis, aperture, width)
    model = channel_sums(noiseless, axis, aperture, width)
    pulls, biases = [], []
    for channel in range(measured.shape[1]):
        curve = model[:, channel] / np.median(model[:, channel])
        fit = fit_transit_scale(measured[:, channel], curve)
        if not np.isfinite(fit.scale):
            continue
        pulls.append(fit.pull)
        biases.append((fit.scale - 1.0) * float(np.max(1.0 - curve)))
    pulls, biases = np.array(pulls), np.array(biases)
    if pulls.size == 0:
        return {
            "pull": np.nan,
            "bias": np.nan,
            "pull_rms": np.nan,
            "pulls": pulls,
            "biases": biases,
        }
    return {
        "pull": float(pulls[np.argmax(np.abs(pulls))]),
        "bias": float(biases[np.argmax(np.abs(biases))]),
        "pull_rms": float(np.sqrt(np.mean(pulls**2))),
        "pulls": pulls,
        "biases": biases,
    }
