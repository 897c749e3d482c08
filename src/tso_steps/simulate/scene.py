"""The noiseless scene: source (spectral traces or PSF) and background, in electrons/s.

Everything is rendered analytically and integrated over pixels (Gaussian and Lorentzian
cumulative distributions evaluated at pixel edges), so a pointing shift moves the rendered
light exactly, without resampling an image.  A shift ``delta`` along the dispersion axis
moves the whole spectrum: pixel ``d`` then sees the light (wavelength, flux, trace centre)
that pixel ``d - delta`` saw before.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from scipy.special import ndtr

from .psf_families import get_family, true_positions
from .transit import transit_light_curve, transmission_spectrum

__all__ = ["Scene"]

log = logging.getLogger("stpipe.tso_steps.simulate")

_EDGE_WIDTH = 8.0  # px, soft edges of the illuminated range of an order
_LINE_SPACING = 97.0  # px between the stellar absorption lines
_LINE_DEPTH = 0.3
_LINE_SIGMA = 1.0  # px
_K_GRID = 48  # radius-ratio nodes for interpolating spectroscopic light curves


def _cdf(kind, x):
    """Cumulative distribution of a unit-width profile component."""
    if kind == "gauss":
        return ndtr(x)
    return 0.5 + np.arctan(x) / np.pi


def _poly(coeffs, d):
    return np.polynomial.polynomial.polyval(np.asarray(d, float) / 1000.0, coeffs)


@functools.lru_cache(maxsize=32)
def _profile_fwhm(profile):
    """FWHM (px) of a continuous cross-dispersion profile at unit width scale."""
    x = np.arange(-60.0, 60.0, 0.005)
    y = np.zeros_like(x)
    for comp in profile:
        u = (x - comp.offset) / comp.width
        if comp.kind == "gauss":
            y += comp.weight * np.exp(-0.5 * u**2) / (comp.width * np.sqrt(2 * np.pi))
        else:
            y += comp.weight / (np.pi * comp.width * (1 + u**2))
    above = x[y >= 0.5 * y.max()]
    return float(above[-1] - above[0])


class Scene:
    """Source and background rates on the simulated array.

    Parameters
    ----------
    mode : ModeSpec
    subarray : Subarray
    element : Element
    window : tuple of int
        ``(y0, x0, ny, nx)``: the simulated array inside the subarray.
    times : ndarray
        Mid-time of each integration, BJD_TDB (days).
    transit : TransitParameters or None
        Resolved transit (``t0`` and ``period`` set), None for no transit.
    brightness : float
        Multiplies the mode's source rates.
    source : bool
        Render the source (False: background only).
    psf_family : str
        Cross-dispersion profile family (:data:`~.psf_families.FAMILIES`; ``"default"``: the
        mode's component profile).
    width_scale : ndarray or None
        Per-integration FWHM multiplier (breathing); None: 1.
    """

    def __init__(
        self,
        mode,
        subarray,
        element,
        window,
        times,
        transit,
        brightness,
        source,
        psf_family="default",
        width_scale=None,
    ):
        y0, x0, ny, nx = window
        self.window = tuple(window)
        self.times = np.asarray(times, float)
        self.shape = (ny, nx)
        self.offset = (subarray.origin[0] + y0, subarray.origin[1] + x0)
        self.dispersion_axis = mode.dispersion_axis
        self.transit = transit
        self.brightness = float(brightness) if source else 0.0
        self.mode = mode
        self.psf = element.psf
        self.traces = tuple(
            t for t in element.traces if t.subarrays is None or subarray.name in t.subarrays
        )
        self.nints = len(times)
        self.psf_family = psf_family
        self.width_scale = np.ones(self.nints) if width_scale is None else np.asarray(width_scale)
        self._families = None
        if psf_family != "default" and self.psf is None:
            self._families = [get_family(psf_family, _profile_fwhm(t.profile)) for t in self.traces]
        elif psf_family != "default":
            raise ValueError("psf_family applies to spectroscopic modes only.")
        if self.psf is not None:
            self._psf_lc = (
                np.ones(self.nints) if transit is None else transit_light_curve(times, transit)
            )
        else:
            self._norm = [self._spectrum_norm(t) for t in self.traces]
            self._lc_grids = [self._light_curve_grid(t, times) for t in self.traces]

    # ------------------------------------------------------------------ geometry
    @property
    def n_disp(self):
        """int : Pixels along the dispersion axis (None for imaging)."""
        return None if self.dispersion_axis is None else self.shape[self.dispersion_axis]

    @property
    def n_cross(self):
        """int : Pixels across the dispersion (None for imaging)."""
        return None if self.dispersion_axis is None else self.shape[1 - self.dispersion_axis]

    def _disp_ref(self):
        """Reference-frame dispersion coordinate of each array index along dispersion."""
        return np.arange(self.n_disp, dtype=float) + self.offset[self.dispersion_axis]

    # ------------------------------------------------------------------ spectra
    @staticmethod
    def _envelope(trace, d):
        lo, hi = trace.extent
        return 0.25 * (1 + np.tanh((d - lo) / _EDGE_WIDTH)) * (1 + np.tanh((hi - d) / _EDGE_WIDTH))

    @staticmethod
    def _continuum(trace, d):
        wl = _poly(trace.wavelength, d)
        centre, sigma = trace.throughput
        return (
            Scene._envelope(trace, d)
            * np.exp(-0.5 * ((wl - centre) / sigma) ** 2)
            * (np.clip(wl, 0.1, None) / centre) ** -2
        )

    def _spectrum_norm(self, trace):
        d = np.linspace(trace.extent[0], trace.extent[1], 4001)
        return trace.peak_rate / np.max(self._continuum(trace, d))

    def _lines(self, trace, d):
        """Absorption lines, integrated over each pixel (1 = no absorption)."""
        lo, hi = trace.extent
        centres = np.arange(lo + 30.0, hi - 30.0, _LINE_SPACING)
        s = _LINE_SIGMA
        out = np.ones_like(d)
        for c in centres:
            frac = ndtr((d + 0.5 - c) / s) - ndtr((d - 0.5 - c) / s)
            out -= _LINE_DEPTH * s * np.sqrt(2 * np.pi) * frac
        return out

    def spectrum(self, trace, d, scaled=True):
        """Out-of-transit source rate per dispersion pixel (electrons/s) at coordinates ``d``.

        ``scaled=False`` leaves out the brightness factor (and the ``source`` switch).
        """
        norm = self._norm[self.traces.index(trace)]
        scale = self.brightness if scaled else 1.0
        return scale * norm * self._continuum(trace, d) * self._lines(trace, d)

    def rp_rs(self, trace, d):
        """Planet-to-star radius ratio seen at reference-frame dispersion coordinates ``d``."""
        if self.transit is None:
            return np.zeros_like(np.asarray(d, float))
        wl = _poly(trace.wavelength, d)
        return transmission_spectrum(wl, self.transit.rp_rs, self.transit.spectrum_amplitude)

    def _light_curve_grid(self, trace, times):
        if self.transit is None:
            return None
        d = np.linspace(trace.extent[0] - 50, trace.extent[1] + 50, 2001)
        k = self.rp_rs(trace, d)
        grid = np.linspace(k.min(), k.max(), _K_GRID) if np.ptp(k) > 0 else k[:1]
        return grid, transit_light_curve(times, self.transit, rp_rs=grid)

    def relative_flux(self, trace, integration, d):
        """Transit relative flux per dispersion coordinate for one integration."""
        grids = self._lc_grids[self.traces.index(trace)]
        if grids is None:
            return np.ones_like(d)
        grid, lc = grids
        if len(grid) == 1:
            return np.full_like(d, lc[integration, 0])
        return np.interp(self.rp_rs(trace, d), grid, lc[integration])

    # ------------------------------------------------------------------ rendering
    def source(self, integration, shift=(0.0, 0.0)):
        """Noiseless source rate image of one integration, electrons/s.

        Parameters
        ----------
        integration : int
            0-based integration (selects the transit flux).
        shift : tuple of float
            Pointing offset ``(dx, dy)``, pixels.

        Returns
        -------
        ndarray, shape ``(ny, nx)``
        """
        if self.psf is not None:
            return self._render_psf(integration, shift)
        image = np.zeros((self.n_cross, self.n_disp))
        if self.brightness == 0:
            return image if self.dispersion_axis == 1 else image.T
        d_shift = shift[0] if self.dispersion_axis == 1 else shift[1]
        c_shift = shift[1] if self.dispersion_axis == 1 else shift[0]
        d = self._disp_ref() - d_shift
        edges = np.arange(self.n_cross + 1) - 0.5
        breathe = self.width_scale[integration]
        for k, trace in enumerate(self.traces):
            lit = self._envelope(trace, d) > 1e-10
            if not lit.any():
                continue
            dl = d[lit]
            flux = self.spectrum(trace, dl) * self.relative_flux(trace, integration, dl)
            centre = _poly(trace.center, dl) + c_shift - self.offset[1 - self.dispersion_axis]
            scale = (_poly(trace.wavelength, dl) / trace.width_reference) ** trace.width_power
            if breathe != 1.0:
                scale = scale * breathe
            if self._families is not None:
                rows = np.arange(self.n_cross, dtype=float)[:, None] - centre[None, :]
                fwhm = _profile_fwhm(trace.profile) * scale
                image[:, lit] += self._families[k].pixel_values(rows, fwhm) * flux
                continue
            prof = np.zeros((self.n_cross + 1, dl.size))
            for comp in trace.profile:
                u = (edges[:, None] - centre - comp.offset * scale) / (comp.width * scale)
                prof += comp.weight * _cdf(comp.kind, u)
            image[:, lit] += np.diff(prof, axis=0) * flux
        return image if self.dispersion_axis == 1 else image.T

    def _render_psf(self, integration, shift):
        ny, nx = self.shape
        cy = self.psf.center[0] - self.offset[0] + shift[1]
        cx = self.psf.center[1] - self.offset[1] + shift[0]
        comps = np.array(self.psf.components, dtype=float)
        w, dy, dx, sig = comps.T
        ey = np.arange(ny + 1) - 0.5
        ex = np.arange(nx + 1) - 0.5
        gy = np.diff(ndtr((ey[None, :] - (cy + dy)[:, None]) / sig[:, None]), axis=1)
        gx = np.diff(ndtr((ex[None, :] - (cx + dx)[:, None]) / sig[:, None]), axis=1)
        flux = self.brightness * self.psf.total_rate * self._psf_lc[integration]
        return flux * ((gy * w[:, None]).T @ gx)

    def background(self, level, gradient, step):
        """Smooth background image, electrons/s per pixel.

        Parameters
        ----------
        level : float
            Mean rate, electrons/s per pixel.
        gradient : tuple of float
            Fractional change across the reference frame along ``(y, x)``.
        step : tuple of float or None
            ``(column, fraction)`` of the level step (reference-frame column).

        Returns
        -------
        ndarray, shape ``(ny, nx)``
        """
        ny_ref, nx_ref = self.mode.reference_shape
        yy = (np.arange(self.shape[0]) + self.offset[0])[:, None] / ny_ref - 0.5
        xx = (np.arange(self.shape[1]) + self.offset[1])[None, :] / nx_ref - 0.5
        image = level * (
            1 + gradient[0] * yy + gradient[1] * xx + 0.1 * xx**2 * np.abs(gradient[1])
        )
        if step:
            column, fraction = step
            image = image * np.where(
                np.arange(self.shape[1]) + self.offset[1] >= column, 1 + fraction, 1.0
            )
        return np.broadcast_to(image, self.shape).copy()

    # ------------------------------------------------------------------ truth
    def trace_truth(self):
        """Nominal per-order truth along the dispersion axis (no jitter).

        Returns
        -------
        dict of str to ndarray
            ``order`` (norders,), and ``(norders, n_disp)`` arrays ``wavelength`` (micron),
            ``center`` (0-based array coordinate across the dispersion), ``fwhm`` (px),
            ``spectrum`` (electrons/s per dispersion pixel, out of transit) and ``rp_rs``.
            Entries are NaN where the order is not lit or its centre is off the array.
        """
        d = self._disp_ref()
        keys = ("wavelength", "center", "fwhm", "spectrum", "rp_rs")
        out = {k: np.full((len(self.traces), self.n_disp), np.nan) for k in keys}
        for i, trace in enumerate(self.traces):
            centre = _poly(trace.center, d) - self.offset[1 - self.dispersion_axis]
            ok = (
                (self._envelope(trace, d) > 1e-3)
                & (centre >= -0.5)
                & (centre <= self.n_cross - 0.5)
            )
            wl = _poly(trace.wavelength, d)
            out["wavelength"][i, ok] = wl[ok]
            out["center"][i, ok] = centre[ok]
            scale = (wl / trace.width_reference) ** trace.width_power
            out["fwhm"][i, ok] = _profile_fwhm(trace.profile) * scale[ok]
            out["spectrum"][i, ok] = self.spectrum(trace, d)[ok]
            out["rp_rs"][i, ok] = self.rp_rs(trace, d)[ok]
        out["order"] = np.array([t.order for t in self.traces])
        return out

    def trace_positions(self, d_shift, c_shift):
        """Profile centroid per integration, order and dispersion pixel (see ``trace_truth``).

        Parameters
        ----------
        d_shift, c_shift : ndarray, shape ``(nints,)``
            Pointing offsets along and across the dispersion, px.

        Returns
        -------
        ndarray, shape ``(nints, norders, n_disp)``
        """
        d = self._disp_ref()[None, :] - np.asarray(d_shift, float)[:, None]
        base = self.offset[1 - self.dispersion_axis]
        centres = np.stack([_poly(t.center, d) - base for t in self.traces], axis=1)
        return true_positions(centres, c_shift)

    def _on_array(self, trace, d):
        """Fraction of an order's cross-dispersion profile that falls on the array."""
        centre = _poly(trace.center, d) - self.offset[1 - self.dispersion_axis]
        scale = (_poly(trace.wavelength, d) / trace.width_reference) ** trace.width_power
        total = np.zeros_like(d)
        for comp in trace.profile:
            lo = (-0.5 - centre - comp.offset * scale) / (comp.width * scale)
            hi = (self.n_cross - 0.5 - centre - comp.offset * scale) / (comp.width * scale)
            total += comp.weight * (_cdf(comp.kind, hi) - _cdf(comp.kind, lo))
        return total

    def light_curves(self):
        """Relative flux per integration and dispersion pixel, ``(nints, norders, n_disp)``."""
        d = self._disp_ref()
        return np.stack(
            [
                np.stack([self.relative_flux(t, i, d) for t in self.traces])
                for i in range(self.nints)
            ]
        )

    def white_light_curve(self):
        """Flux-weighted relative flux of all source light on the array, per integration."""
        if self.psf is not None:
            return np.asarray(self._psf_lc, float)
        d = self._disp_ref()
        weights = np.stack(
            [self.spectrum(t, d, scaled=False) * self._on_array(t, d) for t in self.traces]
        )
        lc = self.light_curves()
        return np.einsum("iod,od->i", lc, weights) / weights.sum()
