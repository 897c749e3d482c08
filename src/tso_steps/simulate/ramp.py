"""Up-the-ramp sampling of one integration, and the least-squares slope with its variances.

Timing convention: an integration is one reset frame followed by
``ngroups * (nframes + groupgap) - groupgap`` frames; group ``g`` averages the ``nframes``
frames starting at frame ``g * (nframes + groupgap)`` (the ``groupgap`` frames after them are
dropped).  Every pixel is reset and read at the same offset within a frame, so relative to
its own reset a pixel's science frame ``f`` (0-based) is read ``(f + 1) * frame_time`` later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from stdatamodels.jwst.datamodels import dqflags

__all__ = ["ReadPlan", "sample_integration", "slope"]

log = logging.getLogger("stpipe.tso_steps.simulate")

SATURATED = dqflags.group["SATURATED"]


@dataclass(frozen=True)
class ReadPlan:
    """Which frames are read, when, and how they are averaged into groups.

    Parameters
    ----------
    ngroups, nframes, groupgap : int
        NGROUPS, NFRAMES, GROUPGAP.
    frame_time : float
        TFRAME, seconds.
    """

    ngroups: int
    nframes: int
    groupgap: int
    frame_time: float

    @property
    def read_frames(self):
        """ndarray : 0-based science frame index of each read (kept) frame."""
        g, j = np.divmod(np.arange(self.ngroups * self.nframes), self.nframes)
        return g * (self.nframes + self.groupgap) + j

    @property
    def read_times(self):
        """ndarray : Seconds from a pixel's reset to each of its reads."""
        return (self.read_frames + 1) * self.frame_time

    @property
    def group_of_read(self):
        """ndarray : Group of each read frame."""
        return np.arange(self.ngroups * self.nframes) // self.nframes

    @property
    def group_times(self):
        """ndarray : Mean read time of each group, seconds after reset."""
        return self.read_times.reshape(self.ngroups, self.nframes).mean(axis=1)

    @property
    def frames_per_integration(self):
        """int : Frames of one integration, the reset frame included."""
        return self.ngroups * (self.nframes + self.groupgap) - self.groupgap + 1

    @property
    def integration_duration(self):
        """float : Seconds from the start of one integration to the start of the next."""
        return self.frames_per_integration * self.frame_time

    def weights(self, n):
        """Ordinary least-squares slope weights using the first ``n`` groups.

        Returns
        -------
        ndarray, shape ``(ngroups,)``
            ``slope = sum(weights * group_values)``; zero beyond ``n``, NaN if ``n < 2``.
        """
        w = np.zeros(self.ngroups)
        if n < 2:
            return np.full(self.ngroups, np.nan)
        t = self.group_times[:n]
        dt = t - t.mean()
        w[:n] = dt / np.sum(dt**2)
        return w

    def variance_coefficients(self, n):
        """Slope variance per unit Poisson rate and per unit frame variance.

        The variance of the least-squares slope over the first ``n`` groups is
        ``cp * rate / gain + cr * sigma_frame**2`` (rate in DN/s, gain in e-/DN, ``sigma_frame``
        the white noise of one frame in DN), with the covariance of the accumulated charge
        ``min(t_i, t_j)`` between reads and group averaging taken into account.

        Returns
        -------
        cp, cr : float
        """
        w = self.weights(n)
        if not np.all(np.isfinite(w)):
            return np.nan, np.nan
        average = np.zeros((self.ngroups, self.ngroups * self.nframes))
        average[self.group_of_read, np.arange(average.shape[1])] = 1.0 / self.nframes
        t = self.read_times
        wa = w @ average
        return float(wa @ np.minimum.outer(t, t) @ wa), float(wa @ wa)


def slope(groups, plan, nvalid=None):
    """Least-squares slope of group values (what the simulator puts in its rateints).

    Parameters
    ----------
    groups : ndarray, shape ``(ngroups, ny, nx)``
        DN.
    plan : ReadPlan
    nvalid : ndarray of int, shape ``(ny, nx)``, optional
        Number of leading groups to use per pixel (default all); fewer than 2 gives NaN.

    Returns
    -------
    ndarray, shape ``(ny, nx)``
        DN/s.
    """
    if nvalid is None:
        return np.tensordot(plan.weights(plan.ngroups), groups, axes=(0, 0))
    table = np.stack([plan.weights(n) for n in range(plan.ngroups + 1)])
    per_pixel = np.moveaxis(table[nvalid], -1, 0)
    with np.errstate(invalid="ignore"):
        return np.sum(np.nan_to_num(per_pixel) * groups, axis=0) + np.where(nvalid < 2, np.nan, 0.0)


def sample_integration(
    rate,
    plan,
    gain,
    *,
    rng_photon=None,
    rng_read=None,
    read_noise=0.0,
    correlated=None,
    hits=(),
    full_well=None,
    ipc=None,
):
    """Read frames of one integration and average them into groups.

    Parameters
    ----------
    rate : ndarray, shape ``(ny, nx)``
        Noiseless photo-current, electrons/s.
    plan : ReadPlan
    gain : float
        Electrons per DN.
    rng_photon : `numpy.random.Generator` or None
        Draws the Poisson increments between reads (None: the expected charge, no noise).
    rng_read : `numpy.random.Generator` or None
        Draws the read noise.
    read_noise : float
        White noise per frame, DN (0: none).
    correlated : ndarray, shape ``(nread, ny, nx)``, optional
        Correlated detector noise per read frame, DN.
    hits : iterable of tuple
        ``(first_read, y, x, amplitude)`` cosmic rays, DN.
    full_well : float or None
        Saturation level, DN: frames clip there and groups reaching it are flagged.
    ipc : ndarray, shape ``(3, 3)``, optional
        Inter-pixel capacitance kernel: the photo-charge is read convolved with it (the
        ``hits`` carry their own coupling, as rows of their neighbours).

    Returns
    -------
    groups : ndarray, shape ``(ngroups, ny, nx)``
        DN.
    groupdq : ndarray of uint8, shape ``(ngroups, ny, nx)``
    """
    times = plan.read_times
    if rng_photon is not None:
        lam = np.clip(rate, 0, None)[None] * np.diff(times, prepend=0.0)[:, None, None]
        counts = rng_photon.poisson(lam)
        np.cumsum(counts, axis=0, out=counts)
        frames = counts / gain
    else:
        frames = rate[None] * times[:, None, None] / gain
    if ipc is not None:  # edges: the pixels beyond read like the edge pixel
        frames = ndimage.convolve(frames, ipc[None], mode="nearest")
    for first, y, x, amplitude in hits:
        frames[first:, y, x] += amplitude
    shape = (plan.ngroups, plan.nframes, *rate.shape)
    groupdq = np.zeros((plan.ngroups, *rate.shape), dtype=np.uint8)
    if full_well is not None:
        saturated = frames >= full_well
        np.minimum(frames, full_well, out=frames)
        groupdq[saturated.reshape(shape).any(axis=1)] = SATURATED
    if read_noise:
        frames += read_noise * rng_read.standard_normal(frames.shape, dtype=np.float32)
    if correlated is not None:
        frames += correlated
    return frames.reshape(shape).mean(axis=1), groupdq
