"""Where the dispersion runs: exposure type to array axis, and the number of orders.

The exposure-type table itself lives in :mod:`tso_steps.exposure`.
"""

from __future__ import annotations

import numpy as np

from tso_steps.exposure import DISPERSION_AXIS, ImagingExposureError, dispersion_axis

__all__ = [
    "DISPERSION_AXIS",
    "ImagingExposureError",
    "dispersion_axis",
    "expected_orders",
    "to_dispersion_last",
]

#: SOSS subarrays on which order 2 falls on the array (SUBSTRIP96 holds order 1 only).
_SOSS_TWO_ORDER_SUBARRAYS = ("SUBSTRIP256", "FULL")


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
