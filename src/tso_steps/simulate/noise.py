"""Random effects: pointing jitter, cosmic rays and read-order correlated detector noise."""

from __future__ import annotations

import logging

import numpy as np
import scipy.fft
from astropy.table import Table

from .events import draw_large_events, ipc_rows

__all__ = ["CorrelatedNoise", "draw_cosmic_rays", "jitter_offsets"]

log = logging.getLogger("stpipe.tso_steps.simulate")


def jitter_offsets(config, nints, rng):
    """Pointing offsets per integration: a scaled random walk plus a tilt step.

    Parameters
    ----------
    config : Jitter or None
        None gives zero offsets.
    nints : int
    rng : `numpy.random.Generator`

    Returns
    -------
    ndarray, shape ``(nints, 2)``
        ``(dx, dy)`` per integration, pixels.  Without a tilt the offsets have zero mean and
        the requested RMS along each axis exactly.
    """
    shifts = np.zeros((nints, 2))
    if config is None:
        return shifts
    rms = np.broadcast_to(np.asarray(config.rms, float), (2,))
    if nints > 1:
        walk = np.cumsum(rng.standard_normal((nints, 2)), axis=0)
        walk -= walk.mean(axis=0)
        std = walk.std(axis=0)
        shifts = walk * np.where(std > 0, rms / np.where(std > 0, std, 1), 0.0)
    if config.tilt_integration is not None:
        shifts[int(config.tilt_integration) :] += np.asarray(config.tilt, float)
    return shifts


def draw_cosmic_rays(config, nints, shape, plan, rng, ipc=None):
    """Cosmic-ray hits of an exposure.

    A hit at time ``t`` after a pixel's reset adds its amplitude to every frame read after
    ``t``, so it appears in the ramp from group ``group`` on (a hit before the first read
    raises every group and leaves the slope unchanged; with NFRAMES > 1 the first group it
    reaches sees only part of it).

    Parameters
    ----------
    config : CosmicRays or None
    nints : int
    shape : tuple of int
        ``(ny, nx)`` of the array.
    plan : ReadPlan
        Frame read times of an integration.
    rng : `numpy.random.Generator`
    ipc : ndarray, shape ``(3, 3)``, optional
        IPC kernel of the frames: every hit's leak into its neighbours is listed too.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``integration``, ``group``, ``y``, ``x`` (0-based), ``amplitude`` (DN),
        ``time`` (s after the integration's reset), ``first_read`` (index of the first
        read frame that includes the hit) and ``kind`` (``hit``, ``snowball``, ``shower``,
        or ``ipc``: what a hit leaks into a neighbour through the IPC kernel, and a negative
        row at the hit itself for what it loses; leaks below 0.5 DN are neglected), sorted
        by integration.
    """
    names = ("integration", "group", "y", "x", "amplitude", "time", "first_read", "kind")
    dtypes = (np.int32, np.int32, np.int32, np.int32, np.float64, np.float64, np.int32, "U8")
    if config is None:
        return Table(names=names, dtype=dtypes)
    ny, nx = shape
    active = plan.read_times[-1]
    n = rng.poisson(config.rate * ny * nx * nints * active)
    lo, hi = np.log(config.amplitude_range[0]), np.log(config.amplitude_range[1])
    integ = rng.integers(0, nints, n)
    y = rng.integers(0, ny, n)
    x = rng.integers(0, nx, n)
    time = rng.uniform(0.0, active, n)
    amplitude = np.exp(rng.uniform(lo, hi, n))
    first_read = np.searchsorted(plan.read_times, time, side="right")
    if config.events is not None:
        events = np.array([tuple(row)[:5] for row in config.events], dtype=float).reshape(-1, 5)
        index = events[:, :4].astype(int)
        for column, size, name in zip(range(4), (nints, plan.ngroups, ny, nx), names, strict=False):
            if np.any((index[:, column] < 0) | (index[:, column] >= size)):
                raise ValueError(f"cosmic-ray events: {name} outside 0..{size - 1}")
        group = index[:, 1]
        first = group * plan.nframes
        integ = np.concatenate([integ, events[:, 0].astype(int)])
        y = np.concatenate([y, events[:, 2].astype(int)])
        x = np.concatenate([x, events[:, 3].astype(int)])
        amplitude = np.concatenate([amplitude, events[:, 4]])
        time = np.concatenate([time, plan.read_times[first] - 0.5 * plan.frame_time])
        first_read = np.concatenate([first_read, first])
    kind = np.full(integ.size, "hit", dtype="U8")
    kinds, large = draw_large_events(config, nints, shape, active, rng)
    for name, (li, ly, lx, la, lt) in zip(kinds, large, strict=True):
        integ, y, x = np.concatenate([integ, li]), np.concatenate([y, ly]), np.concatenate([x, lx])
        amplitude, time = np.concatenate([amplitude, la]), np.concatenate([time, lt])
        first_read = np.concatenate([first_read, np.searchsorted(plan.read_times, lt, "right")])
        kind = np.concatenate([kind, np.full(li.size, name, dtype="U8")])
    if ipc is not None and integ.size:
        source, iy, ix, ia = ipc_rows(ipc, integ, y, x, amplitude, shape)
        own = amplitude * (ipc[1, 1] - 1.0)  # what each hit's own pixel loses
        source = np.concatenate([source, np.arange(integ.size)])
        iy, ix, ia = np.concatenate([iy, y]), np.concatenate([ix, x]), np.concatenate([ia, own])
        integ, y, x = (
            np.concatenate([integ, integ[source]]),
            np.concatenate([y, iy]),
            np.concatenate([x, ix]),
        )
        amplitude, time = np.concatenate([amplitude, ia]), np.concatenate([time, time[source]])
        first_read = np.concatenate([first_read, first_read[source]])
        kind = np.concatenate([kind, np.full(source.size, "ipc", dtype="U8")])
    order = np.argsort(integ, kind="stable")
    table = Table(
        [
            integ[order],
            plan.group_of_read[first_read[order]],
            y[order],
            x[order],
            amplitude[order],
            time[order],
            first_read[order],
            kind[order],
        ],
        names=names,
        dtype=dtypes,
    )
    table["amplitude"].unit = "DN"
    table["time"].unit = "s"
    log.info(
        "Cosmic rays: %d hits (%s) in %d integrations",
        int(np.sum(kind == "hit")),
        ", ".join(f"{np.sum(kind == k)} {k} rows" for k in ("snowball", "shower", "ipc")),
        nints,
    )
    return table


class CorrelatedNoise:
    """1/f noise, pre-amplifier offsets and odd/even offsets, sampled in pixel read order.

    For every frame a pink time series is drawn at every pixel-clock tick of the whole frame
    readout (overheads included): one series shared by all outputs and one per output.  Each
    pixel takes the value at its own tick (:attr:`DetectorClock.ticks`) on its own output
    (:attr:`DetectorClock.outputs`), so amplifier bands, alternating read directions and
    MIRI's interleaved outputs follow from the simulator's own read schedule.

    Parameters
    ----------
    config : DetectorNoise
    clock : `~tso_steps.simulate.clocking.DetectorClock`
    rng : `numpy.random.Generator`
    """

    def __init__(self, config, clock, rng):
        self.config = config
        self.rng = rng
        self.shape = clock.shape
        self.noutputs = clock.noutputs
        self.n_ticks = clock.frame_ticks
        ticks = clock.ticks.ravel()
        amps = clock.outputs.ravel()
        self._ticks = ticks
        self._amps = amps
        self._out_index = amps * self.n_ticks + ticks
        self._oe_index = amps * 2 + clock.positions.ravel() % 2
        self._pixel_time = clock.sample_time
        # a fast FFT length at least one frame long; the series is cut to the frame
        self._n_fft = scipy.fft.next_fast_len(self.n_ticks, real=True)
        k = np.arange(self._n_fft // 2 + 1, dtype=float)
        amp = np.zeros_like(k)
        if config.knee:
            amp[1:] = np.sqrt(self.power(k[1:] / (self._n_fft * self._pixel_time)))
        else:  # the pure power law in units of the lowest FFT frequency
            amp[1:] = k[1:] ** (-0.5 * config.alpha)
        if self._n_fft % 2 == 0:
            amp[-1] = 0.0  # keep the Nyquist term out: it would not be Gaussian-complex
        self._spectrum_amp = amp
        self._norm = 2.0 / self._n_fft * np.sqrt(np.sum(amp**2))

    def power(self, frequency):
        """Shape of the 1/f power spectrum (arbitrary normalisation) at ``frequency`` (Hz).

        ``f**-alpha``, or ``(f**2 + knee**2)**(-alpha / 2)`` with a low-frequency knee; the
        white fraction is drawn apart (:meth:`white_part`) and is not in this shape.
        """
        frequency = np.asarray(frequency, dtype=float)
        alpha, knee = self.config.alpha, self.config.knee
        return (frequency**2 + knee**2) ** (-0.5 * alpha)

    @property
    def _colored_fraction(self):
        return np.sqrt(1.0 - self.config.white)

    def white_part(self, nread):
        """White (in read time) part of the common and per-output noise, or None.

        Drawn per pixel tick: the common part at the same tick of every output, the
        per-output part independently, with variances ``white * common**2`` and
        ``white * per_output**2``.

        Parameters
        ----------
        nread : int

        Returns
        -------
        ndarray, shape ``(nread, ny, nx)``, or None when ``white`` is 0.
        """
        cfg = self.config
        white = cfg.white
        if not white:
            return None
        out = np.zeros((nread, self._ticks.size))
        for f in range(nread):
            if cfg.common:
                out[f] += cfg.common * self.rng.standard_normal(self.n_ticks)[self._ticks]
            if cfg.per_output:
                series = self.rng.standard_normal(self.noutputs * self.n_ticks)
                out[f] += cfg.per_output * series[self._out_index]
        return np.sqrt(white) * out.reshape(nread, *self.shape)

    def _pink(self, count):
        """``count`` unit-RMS pink series of ``n_ticks`` samples."""
        shape = (count, self._spectrum_amp.size)
        coeffs = self.rng.standard_normal(shape) + 1j * self.rng.standard_normal(shape)
        coeffs *= self._spectrum_amp
        series = scipy.fft.irfft(coeffs, n=self._n_fft, axis=-1)[:, : self.n_ticks]
        series /= self._norm
        if self.config.white:
            series *= self._colored_fraction
        return series

    def integration(self, nread):
        """Correlated noise of the read frames of one integration.

        Parameters
        ----------
        nread : int
            Number of frames read (kept) in the integration.

        Returns
        -------
        noise : ndarray, shape ``(nread, ny, nx)``
            DN.
        preamp : ndarray, shape ``(noutputs,)``
            Pre-amplifier offset of each output for this integration, DN.
        odd_even : ndarray, shape ``(nread, noutputs, 2)``
            Offsets of even (``[..., 0]``) and odd (``[..., 1]``) fast-axis pixels, DN.
        """
        cfg = self.config
        npix = self._ticks.size
        noise = np.zeros((nread, npix))
        preamp = (
            self.rng.normal(0.0, cfg.preamp, self.noutputs)
            if cfg.preamp
            else np.zeros(self.noutputs)
        )
        odd_even = (
            self.rng.normal(0.0, cfg.odd_even, (nread, self.noutputs, 2))
            if cfg.odd_even
            else np.zeros((nread, self.noutputs, 2))
        )
        for f in range(nread):
            if cfg.common:
                noise[f] += cfg.common * self._pink(1)[0][self._ticks]
            if cfg.per_output:
                series = cfg.per_output * self._pink(self.noutputs)
                noise[f] += series.ravel()[self._out_index]
            noise[f] += odd_even[f].ravel()[self._oe_index]
        noise += preamp[self._amps]
        return noise.reshape(nread, *self.shape), preamp, odd_even
