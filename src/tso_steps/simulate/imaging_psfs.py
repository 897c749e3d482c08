"""Imaging PSF families that do not share tso_centroid's assumptions, with their own truth.

Every family is an analytic intensity ``I(u, v)`` (u, v in pixels about the PSF's light
centroid) integrated over each pixel on an ``oversample x oversample`` sub-grid weighted by
an intra-pixel response.  Nothing here uses the production readout or centroid code: the
truth (position, width scale, noiseless image and the Cramer-Rao bound of the position) is
computed from these functions alone.

Families (:data:`FAMILIES`):

``gaussian``
    Elliptical, rotated Gaussian (the shape a Gaussian fit assumes).
``donut``
    Defocused weak-lens-like pupil image: an annulus (central obscuration) with a soft edge,
    asymmetric illumination (a linear gradient across the pupil) and six-fold segment
    structure (a ``cos 6 theta`` modulation plus dark struts).
``diffraction``
    Airy-like core made asymmetric by a weaker side lobe, Moffat wings (beta 1.6) and six
    diffraction spikes.
``undersampled``
    A core of FWHM 1.1 px plus a faint halo, seen through an intra-pixel response that loses
    20 % at the pixel edges (relative to the centre): the image depends on the sub-pixel
    phase.

Breathing multiplies the PSF's linear size by ``scale_i`` about its light centroid (so the
centroid, the quantity a centroid measures, stays the pointing): a smooth drift plus a step
at the tilt event, per-cent level (:func:`breathing_scales`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "FAMILIES",
    "ImagingSeries",
    "breathing_scales",
    "imaging_series",
    "position_cramer_rao",
    "render_psf",
]

FAMILIES = ("gaussian", "donut", "diffraction", "undersampled")

_OVERSAMPLE = {"gaussian": 5, "donut": 4, "diffraction": 7, "undersampled": 11}
_SIZE = {"gaussian": 25, "donut": 41, "diffraction": 33, "undersampled": 21}


def _donut(u, v):
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    outer, inner, edge = 11.0, 3.8, 0.7
    ring = 0.25 * special.erfc((r - outer) / edge) * special.erfc((inner - r) / edge)
    segments = 1.0 + 0.25 * np.cos(6.0 * theta + 0.4)
    struts = 1.0 - 0.6 * np.exp(-0.5 * (np.sin(3.0 * (theta - 0.2)) * r / 0.5) ** 2)
    tilt = 1.0 + 0.35 * (0.8 * u + 0.6 * v) / outer  # asymmetric illumination
    return ring * segments * struts * np.clip(tilt, 0.0, None)


def _airy(r, first_zero):
    x = np.pi * 1.2197 * np.maximum(r, 1e-9) / first_zero
    return (2.0 * special.j1(x) / x) ** 2


def _diffraction(u, v):
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    core = _airy(r, 2.2) + 0.3 * _airy(np.hypot(u - 0.9, v + 0.4), 2.6)
    wings = 0.02 * (1.0 + (r / 1.8) ** 2) ** -1.6
    spikes = 0.0
    for k in range(6):
        phi = k * np.pi / 3.0 + 0.3
        along = r * np.cos(theta - phi)
        across = r * np.sin(theta - phi)
        spikes = spikes + np.where(
            along > 0, np.exp(-0.5 * (across / 0.6) ** 2) * 0.01 / (1.0 + along / 2.0) ** 2, 0.0
        )
    return core + wings + spikes


def _gaussian(u, v):
    c, s = np.cos(0.5), np.sin(0.5)
    a, b = c * u + s * v, -s * u + c * v
    return np.exp(-0.5 * ((a / 1.4) ** 2 + (b / 1.1) ** 2))


def _undersampled(u, v):
    r2 = u**2 + v**2
    sigma = 1.1 / 2.3548
    return np.exp(-0.5 * r2 / sigma**2) + 0.01 * (1.0 + r2 / 4.0) ** -2


_INTENSITY = {
    "gaussian": _gaussian,
    "donut": _donut,
    "diffraction": _diffraction,
    "undersampled": _undersampled,
}


def _response(family, n):
    """Intra-pixel response on the ``n x n`` sub-grid (mean 1)."""
    f = (np.arange(n) + 0.5) / n - 0.5
    if family == "undersampled":
        line = 1.0 - 0.8 * f**2  # 0.8 at the pixel edges relative to the centre
    else:
        line = np.ones(n)
    resp = np.outer(line, line)
    return resp / resp.mean()


_CENTRES = {}


def _centre_and_norm(family):
    """Light centroid and integral of the raw intensity (once per family, on a 0.1 px grid)."""
    if family not in _CENTRES:
        half = 2.0 * _SIZE[family]
        g = np.arange(-half, half, 0.1) + 0.05
        uu, vv = np.meshgrid(g, g)
        w = _INTENSITY[family](uu, vv)
        total = w.sum()
        _CENTRES[family] = ((w * uu).sum() / total, (w * vv).sum() / total, total * 0.01)
    return _CENTRES[family]


def render_psf(family, shape, x, y, *, scale=1.0, flux=1.0, oversample=None):
    """Pixel-integrated image of one PSF family with its light centroid at ``(x, y)``.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    shape : tuple of int
        ``(ny, nx)`` of the image.
    x, y : float
        Light centroid of the PSF, 0-based pixel coordinates (pixel centres at integers).
    scale : float
        Linear size relative to nominal, about the light centroid (breathing).
    flux : float
        Total flux of the un-truncated PSF (before the intra-pixel response), per image.
    oversample : int, optional
        Sub-samples per pixel and axis (default per family).

    Returns
    -------
    ndarray, shape ``shape``
    """
    if family not in _INTENSITY:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}.")
    cu, cv, norm = _centre_and_norm(family)
    n = oversample or _OVERSAMPLE[family]
    ny, nx = shape
    f = (np.arange(n) + 0.5) / n - 0.5
    yy = (np.arange(ny)[:, None] + f[None, :]).ravel()
    xx = (np.arange(nx)[:, None] + f[None, :]).ravel()
    u = (xx[None, :] - x) / scale + cu
    v = (yy[:, None] - y) / scale + cv
    sub = _INTENSITY[family](u, v) / (norm * scale**2 * n**2)
    sub = sub.reshape(ny, n, nx, n) * _response(family, n)[None, :, None, :]
    return flux * sub.sum(axis=(1, 3))


def breathing_scales(nints, *, drift=0.02, step=0.01, step_at=None, seed=0):
    """Per-integration size scale: a smooth drift plus a step (tilt event), around 1.

    Parameters
    ----------
    nints : int
    drift : float
        Peak-to-peak amplitude of the smooth part (a random-phase half sine plus a slope).
    step : float
        Size change at ``step_at``.
    step_at : int, optional
        Integration of the step (default the middle).
    seed : int

    Returns
    -------
    ndarray, shape ``(nints,)``
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, nints)
    phase = rng.uniform(0, 2 * np.pi)
    smooth = 0.5 * np.sin(np.pi * t + phase) + 0.5 * (t - 0.5)
    smooth = drift * (smooth - smooth.min()) / max(np.ptp(smooth), 1e-12)
    at = nints // 2 if step_at is None else step_at
    return 1.0 + smooth - drift / 2 + np.where(np.arange(nints) >= at, step, 0.0)


@dataclass
class ImagingSeries:
    """A simulated imaging time series and its truth (electrons per integration).

    Attributes
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Noisy images, background included.
    noiseless : ndarray, shape ``(nints, ny, nx)``
        Source only.
    variance : ndarray, shape ``(nints, ny, nx)``
        Expected variance (source + background + read noise squared).
    x, y : ndarray, shape ``(nints,)``
        True light centroid, pixels.
    scale : ndarray, shape ``(nints,)``
        True size scale.
    family : str
    flux, background, read_noise : float
    """

    data: np.ndarray
    noiseless: np.ndarray
    variance: np.ndarray
    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    family: str
    flux: float
    background: float
    read_noise: float

    def cramer_rao(self, *, width_nuisance=False, step=1e-3):
        """Position bound with the true PSF, see :func:`position_cramer_rao`."""
        return position_cramer_rao(
            self.family,
            self.data.shape[1:],
            self.x,
            self.y,
            self.scale,
            self.flux,
            self.variance,
            width_nuisance=width_nuisance,
            step=step,
        )


def imaging_series(
    family,
    nints,
    *,
    flux=2e5,
    background=20.0,
    read_noise=10.0,
    jitter=0.02,
    tilt=(0.3, -0.2),
    breathing=False,
    seed=0,
):
    """Simulate an imaging TSO of one PSF family with jitter, a tilt event and breathing.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    nints : int
    flux : float
        Source electrons per integration.
    background : float
        Background electrons per pixel per integration.
    read_noise : float
        Electrons per pixel per integration.
    jitter : float
        Random-walk step rms, pixels.
    tilt : tuple of float
        ``(dx, dy)`` jump at the middle integration, pixels.
    breathing : bool
        Size drift of 2 % plus a 1 % step at the tilt (see :func:`breathing_scales`).
    seed : int

    Returns
    -------
    ImagingSeries
    """
    rng = np.random.default_rng(seed)
    size = _SIZE[family]
    shape = (size, size)
    centre = (size - 1) / 2.0 + rng.uniform(-0.5, 0.5, 2)
    walk = np.cumsum(rng.normal(0.0, jitter, (nints, 2)), axis=0)
    walk -= walk.mean(axis=0)
    walk[nints // 2 :] += np.asarray(tilt)
    x, y = centre[0] + walk[:, 0], centre[1] + walk[:, 1]
    scale = breathing_scales(nints, seed=seed) if breathing else np.ones(nints)
    noiseless = np.array(
        [render_psf(family, shape, x[i], y[i], scale=scale[i], flux=flux) for i in range(nints)]
    )
    expected = noiseless + background
    variance = expected + read_noise**2
    data = rng.poisson(expected).astype(float) + rng.normal(0.0, read_noise, noiseless.shape)
    return ImagingSeries(
        data=data,
        noiseless=noiseless,
        variance=variance,
        x=x,
        y=y,
        scale=scale,
        family=family,
        flux=float(flux),
        background=float(background),
        read_noise=float(read_noise),
    )


def position_cramer_rao(
    family, shape, x, y, scale, flux, variance, *, width_nuisance=False, step=1e-3
):
    """Cramer-Rao bound of the x and y position of one integration, averaged over the series.

    The Fisher matrix of the parameters (flux, background, x, y[, size scale]) of each
    integration is built from the true PSF's derivatives (central differences of
    :func:`render_psf`) and the expected variance; the bound is the root of the mean, over
    integrations, of the position diagonal of its inverse (flux and background, and the size
    with ``width_nuisance``, are nuisance parameters an estimator has to fit).

    Parameters
    ----------
    family : str
    shape : tuple of int
    x, y, scale : ndarray, shape ``(nints,)``
    flux : float
    variance : ndarray, shape ``(nints, ny, nx)``
    width_nuisance : bool
    step : float

    Returns
    -------
    ndarray, shape ``(2,)``
        Bounds along x and y, pixels.
    """
    nints = len(x)
    picks = np.unique(np.linspace(0, nints - 1, min(nints, 12)).round().astype(int))
    out = []
    for i in picks:

        def img(dx=0.0, dy=0.0, ds=0.0, _i=i):
            return render_psf(family, shape, x[_i] + dx, y[_i] + dy, scale=scale[_i] + ds)

        base = flux * img()
        derivs = [base / flux, np.ones(shape)]
        derivs.append(flux * (img(dx=step) - img(dx=-step)) / (2 * step))
        derivs.append(flux * (img(dy=step) - img(dy=-step)) / (2 * step))
        if width_nuisance:
            derivs.append(flux * (img(ds=step) - img(ds=-step)) / (2 * step))
        jac = np.stack([d.ravel() for d in derivs], axis=1)
        fisher = jac.T @ (jac / variance[i].ravel()[:, None])
        cov = np.linalg.inv(fisher)
        out.append((cov[2, 2], cov[3, 3]))
    return np.sqrt(np.mean(out, axis=0))
