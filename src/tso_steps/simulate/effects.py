"""Switchable effects of the simulator and their amplitudes.

Each effect argument of :func:`~tso_steps.simulate.simulate_tso` accepts ``False`` (off),
``True`` (on, default amplitudes), a mapping of keyword arguments, or an instance of the
dataclass below.  :func:`resolve_effect` turns those into a dataclass instance or None, and
the resolved instances are returned in ``truth.effects``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .transit import TransitParameters

__all__ = [
    "Background",
    "CosmicRays",
    "DetectorNoise",
    "Ipc",
    "Jitter",
    "TransitParameters",
    "resolve_effect",
]

log = logging.getLogger("stpipe.tso_steps.simulate")


@dataclass(frozen=True)
class Jitter:
    """Pointing jitter per integration: a random walk plus an optional tilt event.

    Parameters
    ----------
    rms : float or tuple of float
        Root-mean-square of the random walk about its mean, pixels, along ``(x, y)`` (one
        number: both axes).
    tilt_integration : int or None
        0-based integration from which the tilt offset applies (None: no tilt event).
    tilt : tuple of float
        Offset ``(dx, dy)`` of the tilt event, pixels.
    """

    rms: float | tuple[float, float] = 0.02
    tilt_integration: int | None = None
    tilt: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class CosmicRays:
    """Cosmic-ray hits: a rate per pixel and explicit events.

    Parameters
    ----------
    rate : float
        Hits per pixel per second of integration (JWST: a few 1e-5).
    amplitude_range : tuple of float
        DN; random hits have log-uniformly distributed amplitudes in this range.
    events : sequence or `~astropy.table.Table` or None
        Explicit hits added to the random ones: rows ``(integration, group, y, x, amplitude)``
        (0-based indices, DN), e.g. a Table with those columns.
    snowball_rate : float
        Snowballs per pixel per second of integration (0: none): a round core of
        ``snowball_radius`` pixels at ``snowball_amplitude`` DN per pixel (log-uniform; may
        exceed the full well) in a halo starting at ``halo_fraction`` of the core level and
        falling off by e over each core radius, drawn out to where it falls below 0.5 DN.
    snowball_radius, snowball_amplitude, halo_fraction : tuple of float
        Ranges drawn from per snowball (pixels, DN, fraction).
    shower_rate : float
        Showers per pixel per second (0: none): elongated Gaussian deposits with major-axis
        sigma in ``shower_size`` pixels (minor axis 0.2-0.6 of it) and peak
        ``shower_amplitude`` DN (log-uniform), every pixel above 2 % of the peak.
    shower_size, shower_amplitude : tuple of float
        Ranges drawn from per shower.

    Every pixel of a snowball or shower is a row of ``truth.cosmic_rays`` (column ``kind``).
    """

    rate: float = 5e-5
    amplitude_range: tuple[float, float] = (100.0, 5000.0)
    events: object = None
    snowball_rate: float = 0.0
    snowball_radius: tuple[float, float] = (1.0, 4.0)
    snowball_amplitude: tuple[float, float] = (5e3, 4e4)
    halo_fraction: tuple[float, float] = (0.005, 0.03)
    shower_rate: float = 0.0
    shower_size: tuple[float, float] = (3.0, 12.0)
    shower_amplitude: tuple[float, float] = (10.0, 100.0)


@dataclass(frozen=True)
class DetectorNoise:
    """Correlated detector noise, in DN, generated in pixel read order.

    Parameters
    ----------
    common : float
        RMS per frame of the 1/f component shared by all outputs, DN.
    per_output : float
        RMS per frame of the independent 1/f component of each output, DN.
    alpha : float
        Spectral index: the power spectrum goes as ``1 / f**alpha``.
    preamp : float
        RMS of the per-output pre-amplifier offsets drawn once per integration (constant
        over its frames, so they cancel in the slope), DN.
    odd_even : float
        RMS of the offsets of even and odd pixels along the fast axis, drawn per output
        and per frame, DN.
    knee : float
        Low-frequency knee of the 1/f spectrum, Hz: the power goes as
        ``(f**2 + knee**2)**(-alpha / 2)``, flat below the knee (0: pure power law).
    white : float
        Fraction (0-1) of the variance of ``common`` and ``per_output`` that is white in read
        time (the flat high-frequency part of a measured pre-amplifier spectrum); it is
        added to the frames but kept out of ``truth.one_over_f``, like read noise.
    """

    common: float = 4.0
    per_output: float = 2.0
    alpha: float = 1.0
    preamp: float = 30.0
    odd_even: float = 1.0
    knee: float = 0.0
    white: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.white <= 1.0:
            raise ValueError(f"DetectorNoise.white must be within 0..1, got {self.white}.")
        if self.knee < 0:
            raise ValueError(f"DetectorNoise.knee must be >= 0 Hz, got {self.knee}.")

    @property
    def frame_variance(self):
        """float : Per-pixel variance (DN^2) added to each frame, white from frame to frame."""
        return self.common**2 + self.per_output**2 + self.odd_even**2


@dataclass(frozen=True)
class Background:
    """Smooth 2-D background (and the SOSS discontinuity).

    Parameters
    ----------
    rate : float or None
        Mean level, electrons per second per pixel (None: the mode's default).
    gradient : tuple of float or None
        Fractional change along ``(y, x)`` across the reference frame (None: mode default).
    step : tuple of float or None or False
        ``(column, fraction)`` of a step in level (None: mode default, False: no step).
    """

    rate: float | None = None
    gradient: tuple[float, float] | None = None
    step: tuple[float, float] | None | bool = None


@dataclass(frozen=True)
class Ipc:
    """Inter-pixel capacitance: a symmetric 3 x 3 kernel that conserves the signal.

    The read signal of every pixel is the collected charge convolved with the kernel (H2RG
    nearest-neighbour coupling is of order 0.5-1 %; the defaults are representative values,
    not a calibration of any JWST detector).

    Parameters
    ----------
    alpha : float
        Fraction of a pixel's signal read in each of its four side neighbours.
    alpha_diagonal : float
        Fraction read in each of its four diagonal neighbours.
    """

    alpha: float = 0.006
    alpha_diagonal: float = 0.0006


_SCALAR_FIELD = {Jitter: "rms", CosmicRays: "rate", Background: "rate", Ipc: "alpha"}


def resolve_effect(value, cls, name):
    """Turn an effect argument into an instance of ``cls`` or None.

    Parameters
    ----------
    value : bool, None, mapping, number or ``cls``
        ``False``/None: off; ``True``: defaults; a mapping: keyword arguments of ``cls``;
        a number: the main amplitude (``rms`` of :class:`Jitter`, ``rate`` of
        :class:`CosmicRays` and :class:`Background`); an instance: used as is.
    cls : type
        The effect's dataclass.
    name : str
        Argument name, for error messages.

    Returns
    -------
    instance of ``cls`` or None
    """
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**value)
    if isinstance(value, int | float) and cls in _SCALAR_FIELD:
        return replace(cls(), **{_SCALAR_FIELD[cls]: value})
    raise TypeError(f"{name}={value!r}: expected a bool, a mapping or a {cls.__name__}.")
