"""Detector-level scores against a simulation's truth: jump and outlier flags, 1/f residuals.

Part of :mod:`tso_steps.scoring`.
"""

from __future__ import annotations

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.stats import robust_std_last

from .light_curves import fit_transit_scale

__all__ = [
    "background_noise_ratio",
    "channel_sums",
    "correlated_noise_ratio",
    "cosmic_ray_rate_effect",
    "depth_recovery",
    "group_difference_noise",
    "line_level_oracle",
    "score_jump_flags",
    "score_outlier_flags",
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
    i, g, y, x, amp = _jumps_per_sample(cosmic_rays, groupdq.shape)
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


def _jumps_per_sample(cosmic_rays, shape):
    """``(integration, group, y, x, amplitude)`` with the rows of one sample summed.

    A pixel can take several rows in one group (a snowball pixel that also receives another
    hit's IPC leak, the negative IPC row of a hit): the step in its ramp is their sum.
    """
    columns = [np.asarray(cosmic_rays[k]) for k in ("integration", "group", "y", "x")]
    amp = np.asarray(cosmic_rays["amplitude"], dtype=float)
    if amp.size == 0:
        return (*columns, amp)
    nints, ngroups, ny, nx = shape
    flat = np.ravel_multi_index(columns, (nints, ngroups, ny, nx))
    unique, inverse = np.unique(flat, return_inverse=True)
    total = np.bincount(inverse, weights=amp)
    return (*np.unravel_index(unique, (nints, ngroups, ny, nx)), total)


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
