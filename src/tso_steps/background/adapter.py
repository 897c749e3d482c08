"""The model adapter of the 2-D background: a fitted background written onto the product.

:func:`~tso_steps.background.model.fit_background` returns the background of every
integration as arrays; :func:`subtract_background` subtracts it from the model's science
array in place, attaches the model and the mask used, and returns the per-integration level
and scale (NaN for lost integrations) for ``tso_vectors``.
"""

import numpy as np

__all__ = ["subtract_background"]


def subtract_background(model, fit, lost):
    """Subtract ``fit`` from ``model.data`` and attach what was subtracted.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Changed in place: ``data`` minus the background of each integration;
        ``tso_background_model`` (float32: the shape, or the per-integration cube) and
        ``tso_background_mask`` (uint8, 1 = pixel used in the fit) are attached.
    fit : `~tso_steps.background.model.BackgroundFit`
    lost : ndarray of bool, shape ``(nints,)``
        Integrations without usable data: their level and scale become NaN.

    Returns
    -------
    levels, scales : ndarray, shape ``(nints,)``
        Mean background over the array (data units) and the scale of the shape.
    """
    data = model.data
    for i in range(data.shape[0]):
        data[i] -= fit.model(i).astype(data.dtype)
    model.data = data
    model_array = fit.cube if fit.cube is not None else fit.shape
    model.tso_background_model = model_array.astype(np.float32)
    model.tso_background_mask = fit.used.astype(np.uint8)
    levels = np.array(fit.levels(), dtype=np.float64)
    scales = np.array(fit.scales, dtype=np.float64)
    levels[lost] = scales[lost] = np.nan
    return levels, scales
