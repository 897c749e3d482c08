"""Per-mode defaults of the TSO simulator: one table, no mode branches elsewhere.

Every observing mode is a :class:`~.specs.ModeSpec` in :data:`MODES`.  The simulator reads all
instrument facts (detector, readout axes, subarrays, optical elements, gain, read noise, the
layout of the spectral traces or of the PSF, the background) from here, so adding a mode or
changing a default is an edit to this table only.  Coordinates follow :mod:`.specs`: traces
and PSF centres are in the reference frame of the mode's first (largest) subarray.

The trace and PSF layouts are *instrument-like*, built to exercise TSO software (shapes,
widths, curvature, spectral coverage and orientation follow the real modes); they are not
calibrated instrument models.  Facts that could not be checked are marked "assumed".
"""

from __future__ import annotations

import logging

import numpy as np

from .specs import Element, ModeSpec, ProfileComponent, PSFSpec, Subarray, TraceSpec

__all__ = ["MODES", "READOUT_PATTERNS", "get_mode"]

log = logging.getLogger("stpipe.tso_steps.simulate")

#: Readout patterns: name -> (NFRAMES averaged per group, GROUPGAP dropped frames).
READOUT_PATTERNS = {
    "RAPID": (1, 0),
    "BRIGHT1": (1, 1),
    "BRIGHT2": (2, 0),
    "SHALLOW2": (2, 3),
    "SHALLOW4": (4, 1),
    "MEDIUM2": (2, 8),
    "MEDIUM8": (8, 2),
    "DEEP2": (2, 18),
    "DEEP8": (8, 12),
    "NISRAPID": (1, 0),
    "NIS": (4, 0),
    "NRSRAPID": (1, 0),
    "NRS": (4, 0),
    "FASTR1": (1, 0),
}


def _ring_psf(radius, sigma, n_spots, hexagonal, halo):
    """Weak-lens-like donut: a ring of Gaussians with a hexagonal brightness modulation."""
    angles = np.arange(n_spots) * 2 * np.pi / n_spots
    weights = 1.0 + hexagonal * np.cos(6 * angles)
    weights = (1.0 - halo[0]) * weights / weights.sum()
    ring = tuple(
        (float(w), float(radius * np.sin(a)), float(radius * np.cos(a)), float(sigma))
        for w, a in zip(weights, angles, strict=True)
    )
    return (*ring, (float(halo[0]), 0.0, 0.0, float(halo[1])))


def _profile(*components):
    return tuple(ProfileComponent(*c) for c in components)


# Profiles: an undersampled core with wings (NIRCam, NIRSpec, MIRI) and the wide
# two-horned defocused NIRISS/SOSS profile.
_NRC_PROFILE = _profile(
    ("gauss", 0.88, 0.0, 0.75), ("gauss", 0.08, 0.0, 2.0), ("lorentz", 0.04, 0.0, 4.0)
)
_SOSS_PROFILE = _profile(
    ("gauss", 0.30, -7.5, 2.6),
    ("gauss", 0.30, 7.5, 2.6),
    ("gauss", 0.28, 0.0, 3.6),
    ("lorentz", 0.12, 0.0, 8.0),
)
_NRS_PROFILE = _profile(
    ("gauss", 0.85, 0.0, 0.7), ("gauss", 0.10, 0.0, 1.8), ("lorentz", 0.05, 0.0, 3.0)
)
_MIRI_PROFILE = _profile(
    ("gauss", 0.85, 0.0, 1.0), ("gauss", 0.10, 0.0, 2.5), ("lorentz", 0.05, 0.0, 5.0)
)

# Subarray corners (XSTART/YSTART): SUBSTRIP256/96 and SLITLESSPRISM are the published
# values; the SUBGRISM rows (all from row 1, so the trace sits near row 34 in every size), the
# SUB400P/160P/64P corners (assumed concentric) and NIRSpec's YSTART=1032 are assumed.
_GRISM_SUBARRAYS = (
    Subarray("SUBGRISM256", (256, 2048), 1, 1),
    Subarray("SUBGRISM128", (128, 2048), 1, 1),
    Subarray("SUBGRISM64", (64, 2048), 1, 1),
)
_TSIMAGE_SUBARRAYS = (
    Subarray("SUB400P", (400, 400), 1, 1),
    Subarray("SUB160P", (160, 160), 121, 121, origin=(120, 120)),
    Subarray("SUB64P", (64, 64), 169, 169, origin=(168, 168)),
)
_SOSS_SUBARRAYS = (
    Subarray("SUBSTRIP256", (256, 2048), 1, 1793),
    Subarray("SUBSTRIP96", (96, 2048), 1, 1803, origin=(10, 0)),
)
_NRS_SUBARRAYS = (
    Subarray("SUB2048", (32, 2048), 1, 1032),
    Subarray("SUB512", (32, 512), 1, 1032),
)
_MIRI_SUBARRAYS = (Subarray("SLITLESSPRISM", (416, 72), 1, 529),)

_GRISM_CENTER = (34.0, 0.35, -0.05)  # trace near row 34, slightly tilted

MODES = {
    "NRC_TSGRISM": ModeSpec(
        exp_type="NRC_TSGRISM",
        instrument="NIRCAM",
        detector="NRCALONG",
        channel="LONG",
        module="A",
        fastaxis=-1,
        slowaxis=2,
        subarrays=_GRISM_SUBARRAYS,
        default_subarray="SUBGRISM256",
        noutputs=(4, 1),
        readpatt=(
            "RAPID",
            "BRIGHT1",
            "BRIGHT2",
            "SHALLOW2",
            "SHALLOW4",
            "MEDIUM2",
            "MEDIUM8",
            "DEEP2",
            "DEEP8",
        ),
        elements={
            "F322W2": Element(
                filter="F322W2",
                pupil="GRISMR",
                traces=(
                    TraceSpec(
                        1,
                        _GRISM_CENTER,
                        (2.37, 1.0),
                        (30.0, 1700.0),
                        _NRC_PROFILE,
                        3.2,
                        0.7,
                        1.2e4,
                        (3.2, 0.7),
                    ),
                ),
            ),
            "F444W": Element(
                filter="F444W",
                pupil="GRISMR",
                traces=(
                    TraceSpec(
                        1,
                        _GRISM_CENTER,
                        (3.18, 1.0),
                        (700.0, 1850.0),
                        _NRC_PROFILE,
                        4.4,
                        0.7,
                        8.0e3,
                        (4.4, 0.5),
                    ),
                ),
            ),
        },
        default_element="F322W2",
        gain=1.8,
        read_noise=10.0,
        full_well=50000.0,
        background_rate=1.0,
        background_gradient=(0.3, 0.2),
    ),
    "NRC_TSIMAGE": ModeSpec(
        exp_type="NRC_TSIMAGE",
        instrument="NIRCAM",
        detector="NRCA3",
        channel="SHORT",
        module="A",
        # NRCA1/A3/B2/B4 and NRCALONG share FASTAXIS=-1, SLOWAXIS=2 (NRCA2/A4/B1/B3/BLONG are
        # 1, -2); NRCA3 sits in the first group (SIAF DetSciParity -1, DetSciYAngle 0).
        fastaxis=-1,
        slowaxis=2,
        subarrays=_TSIMAGE_SUBARRAYS,
        default_subarray="SUB64P",
        noutputs=(1,),
        readpatt=("RAPID", "BRIGHT1", "BRIGHT2", "SHALLOW2", "SHALLOW4"),
        elements={
            "WLP8": Element(
                filter="F210M",
                pupil="WLP8",
                psf=PSFSpec((200.2, 199.7), _ring_psf(13.0, 2.3, 24, 0.2, (0.06, 7.0)), 1.0e7, 2.1),
            ),
            "CLEAR": Element(
                filter="F210M",
                pupil="CLEAR",
                psf=PSFSpec(
                    (200.2, 199.7),
                    ((0.80, 0.0, 0.0, 1.0), (0.15, 0.0, 0.0, 2.5), (0.05, 0.0, 0.0, 8.0)),
                    5.0e5,
                    2.1,
                ),
            ),
        },
        default_element="WLP8",
        gain=2.0,
        read_noise=10.0,
        full_well=50000.0,
        background_rate=0.2,
        background_gradient=(0.1, 0.1),
        dispersion_axis=None,
    ),
    "NIS_SOSS": ModeSpec(
        exp_type="NIS_SOSS",
        instrument="NIRISS",
        detector="NIS",
        fastaxis=-2,
        slowaxis=-1,
        subarrays=_SOSS_SUBARRAYS,
        default_subarray="SUBSTRIP256",
        noutputs=(1,),
        readpatt=("NISRAPID", "NIS"),
        elements={
            "CLEAR": Element(
                filter="CLEAR",
                pupil="GR700XD",
                traces=(
                    TraceSpec(
                        1,
                        (85.0, -35.0, 5.0),
                        (2.83, -0.97),
                        (4.0, 2043.0),
                        _SOSS_PROFILE,
                        1.5,
                        0.0,
                        3.0e4,
                        (1.3, 1.0),
                    ),
                    TraceSpec(
                        2,
                        (110.0, 40.0, 35.0),
                        (1.42, -0.45),
                        (4.0, 1750.0),
                        _SOSS_PROFILE,
                        1.0,
                        0.0,
                        8.0e3,
                        (0.95, 0.5),
                        subarrays=("SUBSTRIP256",),
                    ),
                ),
            ),
        },
        default_element="CLEAR",
        gain=1.6,
        read_noise=11.0,
        full_well=50000.0,
        background_rate=0.6,
        background_gradient=(0.2, 0.1),
        background_step=(700.0, 0.7),
    ),
    "NRS_BRIGHTOBJ": ModeSpec(
        exp_type="NRS_BRIGHTOBJ",
        instrument="NIRSPEC",
        detector="NRS1",
        fastaxis=2,
        slowaxis=1,
        subarrays=_NRS_SUBARRAYS,
        default_subarray="SUB2048",
        noutputs=(1,),
        readpatt=("NRSRAPID", "NRS"),
        elements={
            "PRISM": Element(
                filter="CLEAR",
                grating="PRISM",
                fixed_slit="S1600A1",
                traces=(
                    TraceSpec(
                        1,
                        (16.0, 0.2),
                        (0.62, -1.45, 24.28),
                        (40.0, 470.0),
                        _NRS_PROFILE,
                        2.0,
                        0.5,
                        2.5e4,
                        (1.1, 1.6),
                    ),
                ),
            ),
            "G395H": Element(
                filter="F290LP",
                grating="G395H",
                fixed_slit="S1600A1",
                traces=(
                    TraceSpec(
                        1,
                        (16.0, 0.2),
                        (2.87, 0.415),
                        (-60.0, 2108.0),
                        _NRS_PROFILE,
                        3.3,
                        0.5,
                        6.0e3,
                        (3.3, 1.0),
                    ),
                ),
            ),
        },
        default_element="PRISM",
        gain=1.0,
        read_noise=10.0,
        full_well=50000.0,
        background_rate=0.1,
        background_gradient=(0.0, 0.3),
    ),
    "MIR_LRS-SLITLESS": ModeSpec(
        exp_type="MIR_LRS-SLITLESS",
        instrument="MIRI",
        detector="MIRIMAGE",
        fastaxis=1,
        slowaxis=2,
        subarrays=_MIRI_SUBARRAYS,
        default_subarray="SLITLESSPRISM",
        noutputs=(4,),
        readpatt=("FASTR1",),
        elements={
            "P750L": Element(
                filter="P750L",
                traces=(
                    TraceSpec(
                        1,
                        (36.3, -0.5),
                        (15.6, -41.7, 37.27),
                        (80.0, 395.0),
                        _MIRI_PROFILE,
                        7.7,
                        1.0,
                        3.0e4,
                        (7.5, 2.5),
                    ),
                ),
            ),
        },
        default_element="P750L",
        gain=3.1,
        read_noise=14.0,
        full_well=55000.0,
        background_rate=15.0,
        background_gradient=(-0.8, 0.05),
        dispersion_axis=0,
    ),
}


def get_mode(exp_type):
    """The :class:`ModeSpec` of an exposure type (case-insensitive).

    Parameters
    ----------
    exp_type : str
        One of the keys of :data:`MODES`.

    Returns
    -------
    ModeSpec
    """
    key = str(exp_type).upper()
    if key not in MODES:
        raise ValueError(f"Unknown TSO mode {exp_type!r}; choose from " + ", ".join(MODES))
    return MODES[key]
