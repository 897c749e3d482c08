"""Large cosmic-ray events (snowballs, showers) and inter-pixel capacitance (IPC).

Real JWST detectors see more than single-pixel hits: near-infrared HgCdTe arrays record
"snowballs" (a round core of several pixels, often saturated, inside a faint halo) and MIRI
records "showers" (faint, extended, elongated deposits of many pixels).  Every pixel's
signal is also coupled to its neighbours by inter-pixel capacitance: the read signal is the
collected charge convolved with a small kernel whose nearest-neighbour coupling is of order
one per cent.

The events here are drawn as rows of the cosmic-ray table (one row per affected pixel, with
a ``kind`` column), so the truth of every affected pixel is known.  With IPC the photo-charge
is convolved with the kernel by :func:`~tso_steps.simulate.ramp.sample_integration`, and the
table gets one ``ipc`` row per neighbour a hit leaks into (plus a negative row at the hit for
what it loses), added to the frames like the hits themselves: the table is exactly what the
hits put into the data.  Rates and amplitudes are parameters, not a calibration of any
detector: tests choose them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_large_events", "ipc_kernel", "ipc_rows"]

#: Smallest signal drawn for a halo pixel or an IPC leak, DN (far below any mode's read noise).
MIN_SIGNAL = 0.5

#: Rows of an event list: integration, y, x, amplitude (DN), time after reset (s).
_EMPTY = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0))


def ipc_kernel(config):
    """The 3 x 3 kernel of ``config`` (an :class:`~tso_steps.simulate.Ipc`; sum 1), or None."""
    if config is None:
        return None
    a, d = float(config.alpha), float(config.alpha_diagonal)
    if a < 0 or d < 0 or 4 * (a + d) >= 1:
        raise ValueError(f"IPC coupling alpha={a}, alpha_diagonal={d}: need 0 <= 4(a + d) < 1.")
    kernel = np.array([[d, a, d], [a, 0.0, a], [d, a, d]])
    kernel[1, 1] = 1.0 - kernel.sum()
    return kernel


def _log_uniform(rng, bounds, n):
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    return np.exp(rng.uniform(lo, hi, n))


def _count(rng, rate, shape, nints, active):
    return int(rng.poisson(rate * shape[0] * shape[1] * nints * active)) if rate > 0 else 0


def _snowballs(config, n, shape, nints, active, rng):
    """Core pixels at the core amplitude, halo pixels falling off over a core radius."""
    ny, nx = shape
    rows = [[], [], [], [], []]
    for _ in range(n):
        integ, time = rng.integers(0, nints), rng.uniform(0.0, active)
        yc, xc = rng.uniform(0, ny), rng.uniform(0, nx)
        radius = rng.uniform(*config.snowball_radius)
        core = _log_uniform(rng, config.snowball_amplitude, 1)[0]
        halo = core * rng.uniform(*config.halo_fraction)
        # the halo is drawn out to where it falls below MIN_SIGNAL (like the IPC rows)
        extent = radius * (1.0 + np.log(max(halo / MIN_SIGNAL, 1.0)))
        reach = int(np.ceil(extent)) + 1
        y, x = np.mgrid[
            max(0, int(yc) - reach) : min(ny, int(yc) + reach + 1),
            max(0, int(xc) - reach) : min(nx, int(xc) + reach + 1),
        ]
        r = np.hypot(y + 0.5 - yc, x + 0.5 - xc)
        amplitude = np.where(r <= radius, core, halo * np.exp(-(r - radius) / radius))
        keep = (r <= extent) & (amplitude >= MIN_SIGNAL)
        for column, values in zip(rows, (integ, y, x, amplitude, time), strict=True):
            column.append(np.broadcast_to(values, r.shape)[keep])
    return tuple(np.concatenate(c) if c else e for c, e in zip(rows, _EMPTY, strict=True))


def _showers(config, n, shape, nints, active, rng):
    """Elongated Gaussian deposits, pixels down to 2 % of the peak."""
    ny, nx = shape
    rows = [[], [], [], [], []]
    for _ in range(n):
        integ, time = rng.integers(0, nints), rng.uniform(0.0, active)
        yc, xc = rng.uniform(0, ny), rng.uniform(0, nx)
        major = rng.uniform(*config.shower_size)
        minor = major * rng.uniform(0.2, 0.6)
        angle = rng.uniform(0, np.pi)
        peak = _log_uniform(rng, config.shower_amplitude, 1)[0]
        reach = int(np.ceil(3 * major)) + 1
        y, x = np.mgrid[
            max(0, int(yc) - reach) : min(ny, int(yc) + reach + 1),
            max(0, int(xc) - reach) : min(nx, int(xc) + reach + 1),
        ]
        dy, dx = y + 0.5 - yc, x + 0.5 - xc
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        amplitude = peak * np.exp(-0.5 * ((u / major) ** 2 + (v / minor) ** 2))
        keep = amplitude >= 0.02 * peak
        for column, values in zip(rows, (integ, y, x, amplitude, time), strict=True):
            column.append(np.broadcast_to(values, u.shape)[keep])
    return tuple(np.concatenate(c) if c else e for c, e in zip(rows, _EMPTY, strict=True))


def draw_large_events(config, nints, shape, active, rng):
    """Snowball and shower pixels of an exposure.

    Parameters
    ----------
    config : `~tso_steps.simulate.CosmicRays` or None
        Its ``snowball_*``, ``halo_fraction`` and ``shower_*`` fields.
    nints : int
    shape : tuple of int
        ``(ny, nx)``.
    active : float
        Seconds from reset to the last read of an integration.
    rng : `numpy.random.Generator`

    Returns
    -------
    kinds : list of str
        ``"snowball"`` / ``"shower"`` per group of rows.
    rows : list of tuple of ndarray
        ``(integration, y, x, amplitude, time)`` per kind (the pixels of one event share
        its integration and time).
    """
    kinds, rows = [], []
    if config is None:
        return kinds, rows
    for kind, rate, draw in (
        ("snowball", config.snowball_rate, _snowballs),
        ("shower", config.shower_rate, _showers),
    ):
        n = _count(rng, rate, shape, nints, active)
        if n:
            kinds.append(kind)
            rows.append(draw(config, n, shape, nints, active, rng))
    return kinds, rows


def ipc_rows(kernel, integration, y, x, amplitude, shape, min_amplitude=None):
    """The neighbours each hit leaks into through IPC, as extra rows.

    Parameters
    ----------
    kernel : ndarray, shape ``(3, 3)``
    integration, y, x, amplitude : ndarray
        The direct hits (DN).
    shape : tuple of int
        ``(ny, nx)``; neighbours off the array are dropped.
    min_amplitude : float, optional
        Coupled signals below this (DN) are not listed; default :data:`MIN_SIGNAL`.

    Returns
    -------
    index : ndarray of int
        Row of the direct hit each new row comes from.
    y, x : ndarray of int
    amplitude : ndarray
        Coupled signal, DN (the hit's own pixel keeps ``kernel[1, 1]`` of it, which the
        frames show; its table row keeps the collected charge).
    """
    ny, nx = shape
    min_amplitude = MIN_SIGNAL if min_amplitude is None else min_amplitude
    parts = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            yy, xx = y + dy, x + dx
            value = amplitude * kernel[dy + 1, dx + 1]
            ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx) & (value >= min_amplitude)
            parts.append((np.flatnonzero(ok), yy[ok], xx[ok], value[ok]))
    index, yy, xx, value = (np.concatenate(p) for p in zip(*parts, strict=True))
    return index, yy, xx, value
