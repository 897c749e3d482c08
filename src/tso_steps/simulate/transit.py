"""Transit light curves with quadratic limb darkening, computed by integration over the disk.

The occulted flux is the stellar intensity integrated over the part of the disk the planet
covers.  Annuli of the star fully inside the planet's disk are integrated analytically; the
partly covered annuli ``|z - k| < r < min(1, z + k)`` are integrated numerically with
Gauss-Legendre nodes after the substitution ``r = a + (b - a)(1 - cos u)/2``, which removes
the square-root behaviour of the covered arc at both ends and of the limb at ``r = 1``.
The result reproduces the uniform-disk depth ``k**2`` to better than 1e-9 (see the tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TransitParameters",
    "occulted_fraction",
    "orbital_separation",
    "transit_light_curve",
    "transmission_spectrum",
]

log = logging.getLogger("stpipe.tso_steps.simulate")

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)
# Absorption features of the default transmission spectrum: (centre, sigma) in micron, for
# H2O, CO2, CH4 and silicate-like bands between 0.6 and 12 micron.
_FEATURES = (
    (1.15, 0.04),
    (1.40, 0.07),
    (1.90, 0.09),
    (2.70, 0.13),
    (3.30, 0.08),
    (4.30, 0.10),
    (6.30, 0.30),
    (7.70, 0.35),
    (9.50, 0.60),
)


@dataclass(frozen=True)
class TransitParameters:
    """A circular-orbit transit with quadratic limb darkening.

    Parameters
    ----------
    rp_rs : float
        Planet-to-star radius ratio of the white-light (reference) transit.
    a_rs : float
        Semi-major axis in stellar radii.
    impact : float
        Impact parameter ``a_rs * cos(inclination)``, stellar radii.
    u1, u2 : float
        Quadratic limb-darkening coefficients,
        ``I(mu) = 1 - u1 (1 - mu) - u2 (1 - mu)**2``, the same at every wavelength.
    t0 : float or None
        Mid-transit time, BJD_TDB as an MJD-style number (days).  None: the middle of the
        exposure.
    period : float or None
        Orbital period, days.  None: chosen so that the transit (first to fourth contact)
        lasts ``duration_fraction`` of the exposure, which makes any simulation, however short,
        contain a complete transit.
    duration_fraction : float
        Transit duration as a fraction of the exposure when ``period`` is None.
    spectrum_amplitude : float
        Fractional amplitude of the absorption features in ``rp_rs`` (spectroscopic modes):
        ``rp_rs(lambda) = rp_rs * (1 + spectrum_amplitude * f(lambda))``, ``0 <= f <= ~1``.
        Zero gives a flat transmission spectrum.
    """

    rp_rs: float = 0.1
    a_rs: float = 8.0
    impact: float = 0.3
    u1: float = 0.3
    u2: float = 0.2
    t0: float | None = None
    period: float | None = None
    duration_fraction: float = 0.5
    spectrum_amplitude: float = 0.05

    def resolved(self, start, end):
        """Copy with ``t0`` and ``period`` filled in for an exposure from ``start`` to ``end``.

        Parameters
        ----------
        start, end : float
            First and last time of the exposure, BJD_TDB (days).

        Returns
        -------
        TransitParameters
        """
        t0 = 0.5 * (start + end) if self.t0 is None else self.t0
        period = self.period
        if period is None:
            duration = max(self.duration_fraction * (end - start), 1e-6)
            chord = np.sqrt(max((1 + self.rp_rs) ** 2 - self.impact**2, 1e-12))
            sin_i = np.sqrt(max(1 - (self.impact / self.a_rs) ** 2, 1e-12))
            period = duration * np.pi / np.arcsin(min(chord / (self.a_rs * sin_i), 1.0))
        return TransitParameters(
            self.rp_rs,
            self.a_rs,
            self.impact,
            self.u1,
            self.u2,
            float(t0),
            float(period),
            self.duration_fraction,
            self.spectrum_amplitude,
        )


def _disk_integral(a2, u1, u2):
    """Integral of I(r) 2r dr from 0 to sqrt(a2) for the quadratic law (a2 <= 1)."""
    a2 = np.clip(a2, 0.0, 1.0)
    return (
        (1 - u1 - 2 * u2) * a2
        + (u1 + 2 * u2) * (2.0 / 3.0) * (1 - (1 - a2) ** 1.5)
        + u2 * a2**2 / 2
    )


def occulted_fraction(z, k, u1=0.0, u2=0.0):
    """Fraction of the stellar flux hidden by an opaque disk (quadratic limb darkening).

    Parameters
    ----------
    z : float or array-like
        Centre-to-centre separation, stellar radii.
    k : float or array-like
        Planet-to-star radius ratio; broadcasts against ``z``.
    u1, u2 : float
        Quadratic limb-darkening coefficients.

    Returns
    -------
    ndarray
        Occulted fraction (0 out of transit), shape of ``broadcast(z, k)``.
    """
    z, k = np.broadcast_arrays(np.abs(np.asarray(z, float)), np.asarray(k, float))
    total = _disk_integral(1.0, u1, u2)
    # annuli entirely inside the planet's disk (the planet covers the centre)
    inner = np.where(k > z, _disk_integral(np.minimum(k - z, 1.0) ** 2, u1, u2), 0.0)
    # partly covered annuli
    lo = np.minimum(np.abs(z - k), 1.0)
    hi = np.minimum(z + k, 1.0)
    u = 0.5 * np.pi * (_NODES + 1.0)  # Gauss-Legendre nodes on [0, pi]
    half = 0.5 * (hi - lo)[..., None]
    r = lo[..., None] + half * (1 - np.cos(u))
    drdu = half * np.sin(u)
    zz, kk = z[..., None], k[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_arc = (r**2 + zz**2 - kk**2) / (2 * r * np.maximum(zz, 1e-12))
    arc = np.arccos(np.clip(np.nan_to_num(cos_arc, nan=1.0), -1, 1)) / np.pi
    mu = np.sqrt(np.clip(1 - r**2, 0, None))
    intensity = 1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2
    partial = (0.5 * np.pi) * np.sum(_WEIGHTS * intensity * 2 * r * arc * drdu, axis=-1)
    return (inner + partial) / total


def orbital_separation(times, params):
    """Projected star-planet separation of a circular orbit, in stellar radii.

    Parameters
    ----------
    times : array-like
        BJD_TDB, days (same scale as ``params.t0``).
    params : TransitParameters
        With ``t0`` and ``period`` set (see :meth:`TransitParameters.resolved`).

    Returns
    -------
    ndarray
        Separation; ``inf`` when the planet is behind the star.
    """
    phase = 2 * np.pi * (np.asarray(times, float) - params.t0) / params.period
    cos_i = params.impact / params.a_rs
    z = params.a_rs * np.sqrt(np.sin(phase) ** 2 + (cos_i * np.cos(phase)) ** 2)
    return np.where(np.cos(phase) > 0, z, np.inf)


def transit_light_curve(times, params, rp_rs=None):
    """Relative stellar flux during a transit.

    Parameters
    ----------
    times : array-like
        BJD_TDB, days.
    params : TransitParameters
        With ``t0`` and ``period`` set.
    rp_rs : float or array-like, optional
        Radius ratio(s) to use instead of ``params.rp_rs``; an array of shape ``(m,)`` gives
        one light curve per value, returned with shape ``(len(times), m)``.

    Returns
    -------
    ndarray
        1 out of transit.
    """
    z = orbital_separation(times, params)
    k = params.rp_rs if rp_rs is None else np.asarray(rp_rs, float)
    if np.ndim(k) == 0:
        return 1.0 - occulted_fraction(z, k, params.u1, params.u2)
    zz, kk = np.meshgrid(z, k, indexing="ij")
    finite = np.isfinite(zz)
    flux = np.ones(zz.shape)
    flux[finite] = 1.0 - occulted_fraction(zz[finite], kk[finite], params.u1, params.u2)
    return flux


def transmission_spectrum(wavelength, rp_rs=0.1, amplitude=0.05):
    """An absorption-feature transmission spectrum, as a radius ratio per wavelength.

    Parameters
    ----------
    wavelength : array-like
        Micron.
    rp_rs : float
        Continuum radius ratio.
    amplitude : float
        Fractional increase of the radius ratio at the centre of an isolated feature.

    Returns
    -------
    ndarray
        Radius ratio ``rp_rs * (1 + amplitude * f(wavelength))``, NaN where the wavelength is
        NaN.
    """
    wavelength = np.asarray(wavelength, float)
    features = np.zeros_like(wavelength)
    for centre, sigma in _FEATURES:
        features += np.exp(-0.5 * ((wavelength - centre) / sigma) ** 2)
    return rp_rs * (1.0 + amplitude * features)
