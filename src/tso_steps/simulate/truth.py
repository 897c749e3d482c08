"""What a simulation put into its data: the truth every test and benchmark compares with."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from scipy import ndimage

from .events import ipc_kernel

__all__ = ["SimulationTruth", "build_truth"]

log = logging.getLogger("stpipe.tso_steps.simulate")


@dataclass
class SimulationTruth:
    """The injected signals and noise of a simulated TSO exposure.

    All positions are 0-based pixel coordinates of the simulated (possibly cropped) array,
    DMS orientation; rates are DN/s, like the rateints.  Per-dispersion-pixel arrays have shape
    ``(norders, n_disp)`` (``n_disp`` the array length along the dispersion axis) and are NaN
    where an order is not lit or its centre falls off the array.

    Attributes
    ----------
    mode, subarray, element : str
        Exposure type, SUBARRAY name and the optical element simulated.
    window : tuple of int
        ``(y0, x0, ny, nx)``: the simulated array inside the subarray.
    dispersion_axis : int or None
        Array axis of the dispersion (1 = x, 0 = y); None for imaging.
    times : ndarray
        Mid-time of each integration, BJD_TDB (MJD-style days), as in ``int_times``.
    light_curve : ndarray
        White-light relative flux per integration (flux-weighted over all source light on the
        array at nominal pointing; 1 out of transit).  Jitter that moves light across the
        array's edges changes the measured white light beyond this.
    orders : ndarray or None
        Spectral order numbers, one per row of the per-dispersion-pixel arrays.
    wavelength : ndarray or None
        Micron per order and dispersion pixel (nominal pointing).
    trace_center : ndarray or None
        Cross-dispersion centre per order and dispersion pixel (nominal pointing).  Under jitter
        the centre of integration ``i`` at pixel ``d`` is the nominal centre at
        ``d - shift_dispersion[i]`` plus ``shift_cross_dispersion[i]``.
    trace_width : ndarray or None
        FWHM (px) of the cross-dispersion profile per order and dispersion pixel.
    spectrum : ndarray or None
        Out-of-transit source rate per order and dispersion pixel, DN/s (summed across the
        dispersion).
    rp_rs, depth : ndarray or float
        Planet-to-star radius ratio and transit depth ``rp_rs**2`` per order and dispersion
        pixel (imaging: one float); zero without a transit.
    psf_center : tuple of float or None
        ``(y, x)`` of the PSF centre at nominal pointing (imaging modes).
    psf_width : float or None
        RMS radius of the PSF, ``sqrt(<r**2>)``, pixels (imaging modes).
    shifts : ndarray
        Pointing offsets ``(dx, dy)`` per integration, pixels.
    cosmic_rays : `~astropy.table.Table`
        One row per hit: ``integration``, ``group``, ``y``, ``x``, ``amplitude`` (DN),
        ``time`` (s after the integration's reset), ``first_read`` and ``rate_effect`` (DN/s
        the hit adds to the simulator's least-squares slope).
    one_over_f : ndarray or None
        ``(nints, ny, nx)`` float32: the correlated detector noise (1/f, pre-amp and odd/even
        offsets) as it enters each rateints image, DN/s.
    group_noise : ndarray or None
        ``(nints, ngroups, ny, nx)`` float32: the same noise per group, DN (only with
        ``keep_group_noise=True``).
    preamp_offsets : ndarray or None
        ``(nints, noutputs)`` pre-amplifier offsets, DN.
    odd_even_offsets : ndarray or None
        ``(nints, nread, noutputs, 2)`` offsets of even and odd fast-axis pixels per read
        frame, DN.
    background : ndarray
        ``(ny, nx)`` background rate, DN/s.
    gain : float
        Electrons per DN.
    read_noise : float
        White read noise per frame, DN (0 when off).
    frame_variance : float
        Total white noise variance per frame and pixel, DN^2 (read noise plus the per-frame
        part of the correlated noise); what ``var_rnoise`` is built from.
    full_well : float or None
        Saturation level used, DN (None: no saturation).
    transit : TransitParameters or None
        The transit with its resolved ``t0`` and ``period``.
    effects : dict
        Effect name to the configuration used (None: off).
    seed : int or sequence of int
        Entropy of the random streams; ``simulate_tso(..., seed=truth.seed)`` repeats the run.
    read_plan : ReadPlan
        Frame and group timing of one integration.
    """

    mode: str
    subarray: str
    element: str
    window: tuple
    dispersion_axis: int | None
    times: np.ndarray
    light_curve: np.ndarray
    orders: np.ndarray | None
    wavelength: np.ndarray | None
    trace_center: np.ndarray | None
    trace_width: np.ndarray | None
    spectrum: np.ndarray | None
    rp_rs: np.ndarray | float
    depth: np.ndarray | float
    psf_center: tuple | None
    psf_width: float | None
    shifts: np.ndarray
    cosmic_rays: Table
    one_over_f: np.ndarray | None
    group_noise: np.ndarray | None
    preamp_offsets: np.ndarray | None
    odd_even_offsets: np.ndarray | None
    background: np.ndarray
    gain: float
    read_noise: float
    frame_variance: float
    full_well: float | None
    transit: object
    effects: dict
    seed: object
    read_plan: object
    _scene: object = field(default=None, repr=False)

    # --------------------------------------------------------------- jitter views
    @property
    def shift_x(self):
        """ndarray : Pointing offset along x (array axis 1) per integration, pixels."""
        return self.shifts[:, 0]

    @property
    def shift_y(self):
        """ndarray : Pointing offset along y (array axis 0) per integration, pixels."""
        return self.shifts[:, 1]

    @property
    def shift_dispersion(self):
        """ndarray : Offset along the dispersion axis per integration (x for imaging), px."""
        return self.shift_y if self.dispersion_axis == 0 else self.shift_x

    @property
    def shift_cross_dispersion(self):
        """ndarray : Offset across the dispersion per integration (y for imaging), px."""
        return self.shift_x if self.dispersion_axis == 0 else self.shift_y

    @property
    def nints(self):
        """int : Number of integrations."""
        return len(self.times)

    @property
    def width_scale(self):
        """ndarray : FWHM factor of the source profile per integration (breathing; 1: none)."""
        return np.asarray(self._scene.width_scale, float)

    @property
    def psf_family(self):
        """str : Cross-dispersion profile family the source was rendered with."""
        return self._scene.psf_family

    def trace_positions(self):
        """True trace position of every integration, order and dispersion pixel, px.

        The centroid of the continuous cross-dispersion profile (every profile family is
        drawn about its centroid and breathes about it): the nominal centre at the column's
        dispersion coordinate minus the integration's dispersion offset, plus its
        cross-dispersion offset.  Computed from the scene's trace polynomials alone.

        Returns
        -------
        ndarray, shape ``(nints, norders, n_disp)``
            NaN where :attr:`trace_center` is NaN.
        """
        if self.dispersion_axis is None:
            raise ValueError("Imaging modes have no trace; use shift_x and shift_y.")
        return self._scene.trace_positions(self.shift_dispersion, self.shift_cross_dispersion) + (
            0.0 * self.trace_center[None]
        )

    # --------------------------------------------------------------- images on demand
    def source_image(self, integration):
        """Noiseless source rate of one integration (transit and jitter applied), DN/s.

        Parameters
        ----------
        integration : int
            0-based.

        Returns
        -------
        ndarray, shape ``(ny, nx)``
        """
        return self._read(self._scene.source(integration, self.shifts[integration]) / self.gain)

    def _read(self, image):
        """What the detector reads of a charge image: with IPC, its convolution."""
        kernel = ipc_kernel(self.effects.get("ipc"))
        return image if kernel is None else ndimage.convolve(image, kernel, mode="nearest")

    def rate_image(self, integration, background=True):
        """Noiseless rate of one integration, DN/s: source plus (optionally) background.

        This is the expectation of the rateints image without cosmic rays and detector noise.

        Parameters
        ----------
        integration : int
            0-based.
        background : bool
            Include the background.

        Returns
        -------
        ndarray, shape ``(ny, nx)``
        """
        image = self.source_image(integration)
        return image + self._read(self.background) if background else image

    def spectral_light_curves(self):
        """Relative flux per integration, order and dispersion pixel (nominal wavelengths).

        Returns
        -------
        ndarray, shape ``(nints, norders, n_disp)``

        Raises
        ------
        ValueError
            For imaging modes.
        """
        if self.dispersion_axis is None:
            raise ValueError("Imaging modes have no spectral light curves; use light_curve.")
        return self._scene.light_curves()

    def table(self):
        """Per-integration truth as an astropy Table.

        Returns
        -------
        `~astropy.table.Table`
            ``integration_number`` (1-based), ``int_mid_BJD_TDB``, ``light_curve``,
            ``shift_x``, ``shift_y``, ``shift_dispersion``, ``shift_cross_dispersion`` and
            ``n_cosmic_rays``.
        """
        counts = np.bincount(
            np.asarray(self.cosmic_rays["integration"], int), minlength=self.nints
        )[: self.nints]
        table = Table(
            {
                "integration_number": np.arange(1, self.nints + 1),
                "int_mid_BJD_TDB": self.times,
                "light_curve": self.light_curve,
                "shift_x": self.shift_x,
                "shift_y": self.shift_y,
                "shift_dispersion": self.shift_dispersion,
                "shift_cross_dispersion": self.shift_cross_dispersion,
                "n_cosmic_rays": counts,
            }
        )
        table["int_mid_BJD_TDB"].unit = "d"
        for name in ("shift_x", "shift_y", "shift_dispersion", "shift_cross_dispersion"):
            table[name].unit = "pix"
        return table


def build_truth(
    spec, sub, elem, scene, shifts, crs, background_e, arrays, effects, frame_var, seq, plan
):
    """Assemble the :class:`SimulationTruth` of a simulation (internal to ``simulate_tso``)."""
    gain = spec.gain
    common = dict(
        mode=spec.exp_type,
        subarray=sub.name,
        element=next(k for k, v in spec.elements.items() if v is elem),
        window=scene.window,
        dispersion_axis=spec.dispersion_axis,
        times=np.asarray(scene.times),
        light_curve=scene.white_light_curve(),
        shifts=shifts,
        cosmic_rays=crs,
        one_over_f=arrays.one_over_f,
        group_noise=arrays.group_noise,
        preamp_offsets=arrays.preamp,
        odd_even_offsets=arrays.odd_even,
        background=background_e / gain,
        gain=gain,
        read_noise=effects["read_noise"],
        frame_variance=frame_var,
        full_well=effects["saturation"],
        transit=effects["transit"],
        effects=effects,
        seed=seq.entropy,
        read_plan=plan,
        _scene=scene,
    )
    if elem.psf is not None:
        w, dy, dx, sig = np.array(elem.psf.components).T
        k0 = 0.0 if effects["transit"] is None else effects["transit"].rp_rs
        return SimulationTruth(
            orders=None,
            wavelength=None,
            trace_center=None,
            trace_width=None,
            spectrum=None,
            rp_rs=k0,
            depth=k0**2,
            psf_center=(
                elem.psf.center[0] - scene.offset[0],
                elem.psf.center[1] - scene.offset[1],
            ),
            psf_width=float(np.sqrt(np.sum(w * (dy**2 + dx**2 + 2 * sig**2)) / np.sum(w))),
            **common,
        )
    tt = scene.trace_truth()
    return SimulationTruth(
        orders=tt["order"],
        wavelength=tt["wavelength"],
        trace_center=tt["center"],
        trace_width=tt["fwhm"],
        spectrum=tt["spectrum"] / gain,
        rp_rs=tt["rp_rs"],
        depth=tt["rp_rs"] ** 2,
        psf_center=None,
        psf_width=None,
        **common,
    )
