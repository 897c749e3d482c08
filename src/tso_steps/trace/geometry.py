"""Where the dispersion runs: exposure type to array axis, and the number of orders.

This is the one place that maps a JWST spectroscopic exposure type to the array axis of its
dispersion; other steps import :func:`dispersion_axis` rather than repeating the table.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DISPERSION_AXIS",
    "ImagingExposureError",
    "dispersion_axis",
    "expected_orders",
    "to_dispersion_last",
]

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

#: SOSS subarrays on which order 2 falls on the array (SUBSTRIP96 holds order 1 only).
_SOSS_TWO_ORDER_SUBARRAYS = ("SUBSTRIP256", "FULL")


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
        exp_type = model_or_exp_type.meta.exposure.type
        dispaxis = model_or_exp_type.meta.wcsinfo.dispersion_direction
    key = str(exp_type).upper()
    if key in DISPERSION_AXIS:
        return DISPERSION_AXIS[key]
    if dispaxis in (1, 2):
        return 1 if dispaxis == 1 else 0
    raise ImagingExposureError(
        f"Exposure type {exp_type!r} is not a spectroscopic mode with a known dispersion axis "
        f"(known: {', '.join(DISPERSION_AXIS)}); imaging TSOs have no trace."
    )


def expected_orders(exp_type, subarray=None):
    """Number of spectral orders expected on the array.

    Parameters
    ----------
    exp_type : str
    subarray : str, optional
        SUBARRAY name (NIRISS/SOSS: SUBSTRIP256 and FULL hold orders 1 and 2).

    Returns
    -------
    int
    """
    if str(exp_type).upper() == "NIS_SOSS" and str(subarray).upper() in _SOSS_TWO_ORDER_SUBARRAYS:
        return 2
    return 1


def to_dispersion_last(array, axis):
    """View of an image or cube with the cross-dispersion axis second-to-last, dispersion last.

    Parameters
    ----------
    array : ndarray, shape ``(..., ny, nx)``
    axis : int
        Dispersion axis of the image (1 = x, 0 = y).

    Returns
    -------
    ndarray, shape ``(..., n_cross, n_disp)``
        A view (transposed when the dispersion runs along y); applying the function again
        with the same ``axis`` restores the original orientation.
    """
    return array if axis == 1 else np.swapaxes(array, -1, -2)
