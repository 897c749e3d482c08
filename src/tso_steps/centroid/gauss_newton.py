"""One weighted Gauss-Newton update: the step both template fits of tso_centroid take.

:func:`tso_steps.centroid.template.fit_template_shifts` (a shifted image template) and
:mod:`tso_steps.centroid.superres` (a super-resolved template with a size term) linearise
their model around the current parameters and solve the same weighted normal equations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_step"]


def weighted_step(jacobian, residual, weights):
    """Solve the weighted normal equations for one Gauss-Newton update.

    Parameters
    ----------
    jacobian : ndarray, shape ``(npix, nparams)``
        Derivative of the model at each pixel with respect to each parameter.
    residual : ndarray, shape ``(npix,)``
        Data minus model.
    weights : ndarray, shape ``(npix,)``
        Inverse variances.

    Returns
    -------
    step : ndarray, shape ``(nparams,)``
        The parameter update.
    covariance : ndarray, shape ``(nparams, nparams)``
        ``(J^T W J)^-1``, the covariance of the parameters at the linearisation point.

    Or None when the normal matrix is singular.
    """
    weighted = jacobian * weights[:, None]
    try:
        covariance = np.linalg.inv(jacobian.T @ weighted)
    except np.linalg.LinAlgError:
        return None
    return covariance @ (weighted.T @ residual), covariance
