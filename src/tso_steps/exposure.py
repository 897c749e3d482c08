"""JWST exposure types as tso-steps sees them: which are TSOs, which disperse along which axis.

This is the one place that maps an exposure type to its kind; steps import from here rather
than keeping their own tables.
"""

from __future__ import annotations

__all__ = [
    "DISPERSION_AXIS",
    "IMAGING_EXP_TYPES",
    "TSO_EXP_TYPES",
    "ImagingExposureError",
    "dispersion_axis",
]

#: The time-series exposure types tso-steps supports.
TSO_EXP_TYPES = ("NRC_TSGRISM", "NRC_TSIMAGE", "NIS_SOSS", "NRS_BRIGHTOBJ", "MIR_LRS-SLITLESS")

#: Exposure types with one point source on an image (time-series or plain imaging).
IMAGING_EXP_TYPES = ("NRC_TSIMAGE", "NRC_IMAGE", "NIS_IMAGE", "MIR_IMAGE")

#: Exposure type -> array axis along the dispersion (1 = x, 0 = y), DMS orientation.
DISPERSION_AXIS = {
    "NRC_TSGRISM": 1,
    "NRC_WFSS": 1,
    "NIS_SOSS": 1,
    "NIS_WFSS": 1,
    "NRS_BRIGHTOBJ": 1,
    "NRS_FIXEDSLIT": 1,
    "MIR_LRS-SLITLESS": 0,
    "MIR_LRS-FIXEDSLIT": 0,
}


class ImagingExposureError(ValueError):
    """Raised when a spectroscopic algorithm is given an imaging (or unknown) exposure type."""


def dispersion_axis(model_or_exp_type):
    """Array axis of the dispersion of a spectroscopic exposure.

    Parameters
    ----------
    model_or_exp_type : str or `~stdatamodels.jwst.datamodels.JwstDataModel`
        An exposure type (``EXP_TYPE``) or a model whose ``meta.exposure.type`` is read; a
        model's ``meta.wcsinfo.dispersion_direction`` (DISPAXIS: 1 = x, 2 = y) is used when
        the exposure type is not in :data:`DISPERSION_AXIS`.

    Returns
    -------
    int
        1 when the spectrum runs along x (array axis 1), 0 when it runs along y.

    Raises
    ------
    ImagingExposureError
        For imaging or unknown exposure types without DISPAXIS.
    """
    if isinstance(model_or_exp_type, str):
        exp_type, dispaxis = model_or_exp_type, None
    else:
        meta = model_or_exp_type.meta
        exp_type = meta.exposure.type
        # read without creating an empty ``wcsinfo`` node on the caller's model
        dispaxis = meta.wcsinfo.dispersion_direction if meta.hasattr("wcsinfo") else None
    key = str(exp_type).upper()
    if key in DISPERSION_AXIS:
        return DISPERSION_AXIS[key]
    if dispaxis in (1, 2):
        return 1 if dispaxis == 1 else 0
    raise ImagingExposureError(
        f"Exposure type {exp_type!r} is not a spectroscopic mode with a known dispersion axis "
        f"(known: {', '.join(DISPERSION_AXIS)}); imaging TSOs have no trace."
    )
