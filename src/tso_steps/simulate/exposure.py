"""The integration loop: ramps, slopes and their variances, one integration at a time.

Only one integration's frames exist at a time; the 4-D ramp is kept only when asked for, so a
rateints-only simulation never holds a ramp-sized array.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from .ramp import sample_integration, slope

__all__ = ["ExposureArrays", "add_rate_effect", "run_integrations"]

log = logging.getLogger("stpipe.tso_steps.simulate")


@dataclass
class ExposureArrays:
    """Arrays produced by :func:`run_integrations` (None when not requested)."""

    ramp: np.ndarray | None = None
    groupdq: np.ndarray | None = None
    data: np.ndarray | None = None
    dq: np.ndarray | None = None
    var_poisson: np.ndarray | None = None
    var_rnoise: np.ndarray | None = None
    one_over_f: np.ndarray | None = None
    group_noise: np.ndarray | None = None
    preamp: np.ndarray | None = None
    odd_even: np.ndarray | None = None


def add_rate_effect(cosmic_rays, plan):
    """Add the column ``rate_effect``: what each hit adds to the least-squares slope, DN/s.

    Parameters
    ----------
    cosmic_rays : `~astropy.table.Table`
        From :func:`~.noise.draw_cosmic_rays`; modified in place.
    plan : ReadPlan
    """
    weights = plan.weights(plan.ngroups)
    reads = np.arange(plan.ngroups * plan.nframes)
    first = np.asarray(cosmic_rays["first_read"], int)
    reached = (reads[None, :] >= first[:, None]).reshape(len(first), plan.ngroups, plan.nframes)
    effect = reached.mean(axis=2) @ weights * np.asarray(cosmic_rays["amplitude"], float)
    cosmic_rays["rate_effect"] = effect
    cosmic_rays["rate_effect"].unit = "DN / s"


def _nvalid(groupdq):
    """Leading unsaturated groups per pixel."""
    saturated = (groupdq & dqflags.group["SATURATED"]) > 0
    return np.where(saturated.any(axis=0), saturated.argmax(axis=0), groupdq.shape[0])


def run_integrations(
    scene,
    background,
    shifts,
    cosmic_rays,
    correlated,
    plan,
    *,
    gain,
    rng_photon,
    rng_read,
    read_noise,
    frame_variance,
    full_well,
    bias,
    flag_jumps,
    want_ramp,
    want_cube,
    keep_group_noise,
    ipc=None,
):
    """Simulate and fit every integration.

    Parameters
    ----------
    scene : Scene
    background : ndarray
        Background rate, electrons/s.
    shifts : ndarray, shape ``(nints, 2)``
        Pointing offsets ``(dx, dy)``, pixels.
    cosmic_rays : `~astropy.table.Table`
        Hits sorted by integration, with ``rate_effect`` (see :func:`add_rate_effect`).
    correlated : CorrelatedNoise or None
    plan : ReadPlan
    gain : float
        Electrons per DN.
    rng_photon : `numpy.random.Generator` or None
        None: no photon noise.
    rng_read : `numpy.random.Generator`
    read_noise : float
        DN per frame.
    frame_variance : float
        White noise variance per frame (read noise and correlated noise), DN^2.
    full_well : float or None
        Saturation level, DN.
    bias : float
        DN added to every group.
    flag_jumps : bool
        Flag hits as JUMP_DET and remove them from the slopes.
    want_ramp, want_cube : bool
        Keep the 4-D ramp; compute the rateints arrays.
    keep_group_noise : bool
        Keep the correlated noise of every group.
    ipc : ndarray, shape ``(3, 3)``, optional
        Inter-pixel capacitance kernel applied to the read frames.

    Returns
    -------
    ExposureArrays
    """
    nints, ngroups, nframes = len(shifts), plan.ngroups, plan.nframes
    ny, nx = scene.shape
    nread = ngroups * nframes
    out = ExposureArrays()
    if want_ramp:
        out.ramp = np.zeros((nints, ngroups, ny, nx), np.float32)
        out.groupdq = np.zeros((nints, ngroups, ny, nx), np.uint8)
    if want_cube:
        out.data, out.var_poisson, out.var_rnoise = (
            np.zeros((nints, ny, nx), np.float32) for _ in range(3)
        )
        out.dq = np.zeros((nints, ny, nx), np.uint32)
    if correlated is not None:
        out.one_over_f = np.zeros((nints, ny, nx), np.float32)
        out.preamp = np.zeros((nints, correlated.noutputs))
        out.odd_even = np.zeros((nints, nread, correlated.noutputs, 2))
        if keep_group_noise:
            out.group_noise = np.zeros((nints, ngroups, ny, nx), np.float32)
    weights = plan.weights(ngroups)
    coeffs = np.array([plan.variance_coefficients(n) for n in range(ngroups + 1)])
    bounds = np.searchsorted(cosmic_rays["integration"], np.arange(nints + 1))
    cr = {
        name: np.asarray(cosmic_rays[name])
        for name in ("first_read", "group", "y", "x", "amplitude", "rate_effect")
    }
    # IPC rows (a hit's leak into its neighbours) are added like hits but not flagged
    direct = np.asarray(cosmic_rays["kind"]) != "ipc"

    for i in range(nints):
        rate = scene.source(i, shifts[i]) + background
        noise = None
        if correlated is not None:
            noise, out.preamp[i], out.odd_even[i] = correlated.integration(nread)
            noise_groups = noise.reshape(ngroups, nframes, ny, nx).mean(axis=1)
            out.one_over_f[i] = np.tensordot(weights, noise_groups, axes=(0, 0))
            if out.group_noise is not None:
                out.group_noise[i] = noise_groups
            white = correlated.white_part(nread)  # in the frames, not in the truth
            if white is not None:
                noise = noise + white
        rows = slice(bounds[i], bounds[i + 1])
        hits = zip(
            cr["first_read"][rows], cr["y"][rows], cr["x"][rows], cr["amplitude"][rows], strict=True
        )
        groups, gdq = sample_integration(
            rate,
            plan,
            gain,
            rng_photon=rng_photon,
            rng_read=rng_read,
            read_noise=read_noise,
            correlated=noise,
            hits=hits,
            full_well=full_well,
            ipc=ipc,
        )
        groups = (groups + bias).astype(np.float32)
        jumps = np.arange(bounds[i], bounds[i + 1])
        jumps = jumps[cr["group"][jumps] >= 1] if flag_jumps else jumps[:0]
        flagged = jumps[direct[jumps]]
        gdq[cr["group"][flagged], cr["y"][flagged], cr["x"][flagged]] |= dqflags.group["JUMP_DET"]
        if want_ramp:
            out.ramp[i] = groups
            out.groupdq[i] = gdq
        if not want_cube:
            continue
        nvalid = _nvalid(gdq) if full_well is not None else None
        n_used = ngroups if nvalid is None else nvalid
        out.data[i] = slope(groups.astype(np.float64), plan, nvalid)
        if rng_photon is not None:
            out.var_poisson[i] = rate / gain**2 * coeffs[n_used, 0]
        out.var_rnoise[i] = frame_variance * coeffs[n_used, 1]
        if nvalid is not None:
            out.dq[i][nvalid < ngroups] |= dqflags.pixel["SATURATED"]
            out.dq[i][nvalid < 2] |= dqflags.pixel["DO_NOT_USE"]
        np.subtract.at(out.data[i], (cr["y"][jumps], cr["x"][jumps]), cr["rate_effect"][jumps])
        out.dq[i, cr["y"][flagged], cr["x"][flagged]] |= dqflags.pixel["JUMP_DET"]
    return out
