"""What a mode entry of the simulator's table is made of (see :mod:`.modes` for the table).

Coordinates
-----------
Traces and PSF centres are given in the mode's *reference frame*: the pixel grid of its
largest subarray, DMS orientation, 0-based.  Each :class:`Subarray` states where its own
pixel ``(0, 0)`` lies in that frame (``origin``), so a smaller subarray (or a crop) sees the
same scene at the same detector position.  Polynomials (trace centre, wavelength) are in
``t = d / 1000`` with ``d`` the reference-frame pixel along the dispersion axis, coefficients
in increasing power (``numpy.polynomial.polynomial`` order).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Element",
    "ModeSpec",
    "ProfileComponent",
    "PSFSpec",
    "Subarray",
    "TraceSpec",
]

log = logging.getLogger("stpipe.tso_steps.simulate")


@dataclass(frozen=True)
class Subarray:
    """A subarray: its size, its corner on the detector and its place in the mode's frame.

    Attributes
    ----------
    name : str
        SUBARRAY keyword value.
    shape : tuple of int
        ``(ny, nx)``, DMS orientation.
    xstart, ystart : int
        1-based full-frame (DMS) column and row of pixel ``(0, 0)``.
    origin : tuple of int
        ``(row, column)`` of pixel ``(0, 0)`` in the mode's reference frame.
    """

    name: str
    shape: tuple[int, int]
    xstart: int
    ystart: int
    origin: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ProfileComponent:
    """One analytic component of a cross-dispersion profile (pixel-integrated exactly).

    Attributes
    ----------
    kind : {"gauss", "lorentz"}
        Gaussian (``width`` = sigma) or Lorentzian (``width`` = half width at half maximum).
    weight : float
        Fraction of the order's flux in this component (weights of a profile sum to 1).
    offset : float
        Centre offset from the trace centre, pixels (scaled like the width).
    width : float
        Pixels, at the trace's reference wavelength.
    """

    kind: str
    weight: float
    offset: float
    width: float


@dataclass(frozen=True)
class TraceSpec:
    """One spectral order: where it lies, what wavelengths it carries, how bright and wide.

    Attributes
    ----------
    order : int
        Spectral order number.
    center : tuple of float
        Polynomial in ``t`` giving the cross-dispersion centre (reference frame, pixels).
    wavelength : tuple of float
        Polynomial in ``t`` giving the wavelength, micron.
    extent : tuple of float
        Reference-frame dispersion pixels ``(first, last)`` the order illuminates.
    profile : tuple of ProfileComponent
        Cross-dispersion profile at ``width_reference``.
    width_reference : float
        Wavelength (micron) at which the profile widths are as listed.
    width_power : float
        Widths and offsets scale as ``(wavelength / width_reference) ** width_power``.
    peak_rate : float
        Electrons per second per dispersion pixel at the brightest point of the order.
    throughput : tuple of float
        ``(centre, sigma)`` in micron of the Gaussian throughput envelope of the order.
    subarrays : tuple of str or None
        Subarrays on which the order is rendered (None: all of the mode's subarrays).
    """

    order: int
    center: tuple[float, ...]
    wavelength: tuple[float, ...]
    extent: tuple[float, float]
    profile: tuple[ProfileComponent, ...]
    width_reference: float
    width_power: float
    peak_rate: float
    throughput: tuple[float, float]
    subarrays: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PSFSpec:
    """An imaging PSF as a sum of circular 2-D Gaussians (pixel-integrated exactly).

    Attributes
    ----------
    center : tuple of float
        ``(y, x)`` of the PSF centre in the reference frame, pixels.
    components : tuple of tuple of float
        ``(weight, dy, dx, sigma)`` per Gaussian; weights sum to 1.
    total_rate : float
        Electrons per second in the whole PSF.
    wavelength : float
        Effective wavelength, micron.
    """

    center: tuple[float, float]
    components: tuple[tuple[float, float, float, float], ...]
    total_rate: float
    wavelength: float


@dataclass(frozen=True)
class Element:
    """An optical configuration of a mode (the keywords it sets and what it puts on the array).

    Attributes
    ----------
    filter, pupil, grating, fixed_slit : str or None
        FILTER, PUPIL, GRATING and FXD_SLIT keyword values (None: not set).
    traces : tuple of TraceSpec
        Spectral orders (empty for imaging).
    psf : PSFSpec or None
        The imaging PSF (None for spectroscopy).
    """

    filter: str
    pupil: str | None = None
    grating: str | None = None
    fixed_slit: str | None = None
    traces: tuple[TraceSpec, ...] = ()
    psf: PSFSpec | None = None


@dataclass(frozen=True)
class ModeSpec:
    """Everything the simulator knows about one exposure type.

    Attributes
    ----------
    exp_type, instrument, detector : str
        EXP_TYPE, INSTRUME and DETECTOR keyword values.
    channel, module : str or None
        NIRCam CHANNEL and MODULE keyword values.
    fastaxis, slowaxis : int
        FASTAXIS and SLOWAXIS (DMS orientation).
    subarrays : tuple of Subarray
        Available subarrays; the first is the reference frame of the traces.
    default_subarray : str
    noutputs : tuple of int
        Allowed output counts, the first is the default.
    readpatt : tuple of str
        Allowed readout patterns (keys of :data:`READOUT_PATTERNS`), the first is the default.
    elements : dict of str to Element
        Selectable optical configurations, keyed by the name users pass as ``element``.
    default_element : str
    gain : float
        Electrons per DN.
    read_noise : float
        Read noise per frame, DN.
    full_well : float
        Saturation level, DN above the bias.
    background_rate : float
        Mean background, electrons per second per pixel.
    background_gradient : tuple of float
        Fractional change of the background across the reference frame along ``(y, x)``.
    background_step : tuple of float or None
        ``(column, fraction)``: the background is ``1 + fraction`` times higher at and beyond
        this reference-frame column (the NIRISS/SOSS discontinuity).
    dispersion_axis : int or None
        Array axis along which light is dispersed (1 = x, 0 = y); None for imaging.
    """

    exp_type: str
    instrument: str
    detector: str
    fastaxis: int
    slowaxis: int
    subarrays: tuple[Subarray, ...]
    default_subarray: str
    noutputs: tuple[int, ...]
    readpatt: tuple[str, ...]
    elements: dict[str, Element]
    default_element: str
    gain: float
    read_noise: float
    full_well: float
    background_rate: float
    background_gradient: tuple[float, float] = (0.0, 0.0)
    background_step: tuple[float, float] | None = None
    dispersion_axis: int | None = 1
    channel: str | None = None
    module: str | None = None
    reference_shape: tuple[int, int] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "reference_shape", self.subarrays[0].shape)

    def subarray(self, name=None):
        """The :class:`Subarray` called ``name`` (default: the mode's default subarray)."""
        name = self.default_subarray if name is None else str(name).upper()
        for sub in self.subarrays:
            if sub.name == name:
                return sub
        raise ValueError(
            f"{self.exp_type} has no subarray {name!r}; choose from "
            + ", ".join(s.name for s in self.subarrays)
        )

    def crop_window(self, subarray, element, crop=None, origin=None):
        """Where a cut-out of ``subarray`` lies: ``(y0, x0, ny, nx)`` in subarray pixels.

        Parameters
        ----------
        subarray : Subarray
        element : Element
        crop : int or tuple of int or None
            ``(ny, nx)`` of the cut-out (None: the whole subarray).
        origin : tuple of int or None
            ``(y0, x0)``; default centres the cut-out on the PSF, or on the middle of the
            first order's illuminated range and its trace.  Clipped to the subarray.

        Returns
        -------
        tuple of int
        """
        sub_ny, sub_nx = subarray.shape
        if crop is None:
            return (0, 0, sub_ny, sub_nx)
        ny, nx = (crop, crop) if np.ndim(crop) == 0 else crop
        ny, nx = min(int(ny), sub_ny), min(int(nx), sub_nx)
        if origin is None:
            if element.psf is not None:
                cy, cx = element.psf.center
            else:
                trace = element.traces[0]
                n_disp = self.reference_shape[self.dispersion_axis]
                d = 0.5 * (max(trace.extent[0], 0) + min(trace.extent[1], n_disp - 1))
                c = np.polynomial.polynomial.polyval(d / 1000.0, trace.center)
                cy, cx = (c, d) if self.dispersion_axis == 1 else (d, c)
            origin = (cy - subarray.origin[0] - ny / 2, cx - subarray.origin[1] - nx / 2)
        y0 = int(np.clip(round(origin[0]), 0, sub_ny - ny))
        x0 = int(np.clip(round(origin[1]), 0, sub_nx - nx))
        return (y0, x0, ny, nx)

    def element(self, name=None):
        """The :class:`Element` called ``name`` (default: the mode's default element)."""
        name = self.default_element if name is None else str(name).upper()
        if name not in self.elements:
            raise ValueError(
                f"{self.exp_type} has no element {name!r}; choose from " + ", ".join(self.elements)
            )
        return self.elements[name]
