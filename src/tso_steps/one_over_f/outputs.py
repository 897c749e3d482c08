"""Line levels of outputs that see too few dark pixels, predicted from the other outputs.

All outputs of a detector are sampled at the same time, so much of their 1/f noise is
common (the correlated pink noise of Rauscher et al. 2015): a line level one output cannot
measure is predicted from the others, and a noisy measured one is averaged with that
prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OutputModel", "combine_outputs", "fill_levels", "learn_output_model"]


@dataclass
class OutputModel:
    """How each output's levels follow the other outputs, fitted once for an exposure.

    Attributes
    ----------
    betas : ndarray, shape ``(namp,)``
        Regression of each output's level on the mean of the others.
    prediction_variance : ndarray, shape ``(namp,)``
        Variance of ``beta * mean(others)`` as a predictor of a level; NaN where too few
        cells were measured (such an output's levels are not combined).
    """

    betas: np.ndarray
    prediction_variance: np.ndarray


def learn_output_model(levels, variance, measured, min_pairs=10):
    """Fit :class:`OutputModel` on the levels of a sample of frames.

    Given to :func:`fill_levels` and :func:`combine_outputs`, the model makes each frame's
    levels depend on that frame alone, not on which frames are processed with it.

    Parameters
    ----------
    levels, variance, measured : ndarray, shape ``(nframes, n_lines, namp)``
        As in :func:`combine_outputs` (e.g. ``StripeFit`` of ``fit_stripes(raw=True)``).
    min_pairs : int

    Returns
    -------
    OutputModel
    """
    levels = np.where(measured, levels, 0.0)
    others, has_others, betas = _output_regression(levels, measured, min_pairs)
    pred_var = np.full(levels.shape[2], np.nan)
    for amp in range(levels.shape[2]):
        cells = measured[..., amp] & has_others[..., amp]
        if cells.sum() >= min_pairs:
            own_var = variance[..., amp][cells]
            miss = levels[..., amp][cells] - betas[amp] * others[..., amp][cells]
            pred_var[amp] = _prediction_variance(miss, own_var)
    return OutputModel(betas, pred_var)


def _prediction_variance(miss, own_var):
    return max(np.var(miss) - np.median(own_var), 0.05 * np.median(own_var))


def fill_levels(levels, measured, min_pairs=10, model=None):
    """Predict the line levels of outputs with too few usable pixels.

    Outputs are sampled simultaneously, so much of the 1/f noise is common to all of them.
    Where other outputs of the same line are measured, the missing level is predicted as
    ``beta * mean(other outputs) + d``, with ``beta`` the regression of each output's
    levels on the mean of the others (fitted on lines where both are measured, kept in
    [0, 1]) and ``d`` the output's own deviation from that prediction, interpolated from
    the nearest measured lines.  Lines with no measured output are interpolated from the
    nearest measured lines of the same output.

    Parameters
    ----------
    levels : ndarray, shape ``(nframes, n_lines, namp)``
    measured : ndarray of bool, same shape
    min_pairs : int
        Fewest measured (output, others) pairs needed to fit ``beta``; otherwise the
        median ``beta`` of the other outputs (or 0) is used.
    model : OutputModel, optional
        Fixed ``beta`` of every output (:func:`learn_output_model`) instead of a fit to
        these frames.

    Returns
    -------
    ndarray
        Levels with every cell filled (0 where an output has no measured line at all).
    """
    known = np.where(measured, levels, 0.0)
    prediction = np.zeros_like(known)
    has_others = np.zeros(levels.shape, dtype=bool)
    if levels.shape[2] > 1:
        others, has_others, betas = _output_regression(levels, measured, min_pairs, model)
        prediction = np.where(has_others, betas * others, 0.0)
    deviation = _interpolate_lines(known - prediction, ~measured)
    plain = _interpolate_lines(known, ~measured)
    filled = np.where(has_others, prediction + deviation, plain)
    return np.where(measured, levels, filled)


def _output_regression(levels, measured, min_pairs=10, model=None):
    """Mean of the other measured outputs of each cell, and each output's regression on it."""
    namp = levels.shape[2]
    known = np.where(measured, levels, 0.0)
    n_others = measured.sum(axis=2, keepdims=True) - measured
    has_others = n_others > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        others = np.where(has_others, (known.sum(axis=2, keepdims=True) - known) / n_others, 0.0)
    if model is not None:
        return others, has_others, model.betas
    betas = np.full(namp, np.nan)
    for amp in range(namp):
        pairs = measured[..., amp] & has_others[..., amp]
        if pairs.sum() >= min_pairs:
            x, y = others[..., amp][pairs], known[..., amp][pairs]
            if np.sum(x * x) > 0:
                betas[amp] = np.clip(np.sum(x * y) / np.sum(x * x), 0.0, 1.0)
    fallback = np.nanmedian(betas) if np.isfinite(betas).any() else 0.0
    return others, has_others, np.where(np.isfinite(betas), betas, fallback)


def combine_outputs(levels, variance, measured, min_pairs=10, model=None):
    """Average each measured level with its prediction from the other outputs.

    A level measured on few pixels is noisy; the outputs' common 1/f noise predicts it too
    (``beta * mean(others)``, see :func:`fill_levels`).  The two are averaged with inverse
    variance weights: the measurement's variance from its pixel weights, the prediction's
    from the scatter of ``level - prediction`` over all measured cells of that output, less
    the measurement variance.

    Parameters
    ----------
    levels : ndarray, shape ``(nframes, n_lines, namp)``
    variance : ndarray, same shape
        Variance of each measured level.
    measured : ndarray of bool, same shape
    min_pairs : int
    model : OutputModel, optional
        Fixed ``beta`` and prediction variance of every output (:func:`learn_output_model`)
        instead of fits to these frames: each frame's result then depends on it alone.

    Returns
    -------
    ndarray
        Levels; unmeasured cells are returned unchanged.
    """
    others, has_others, betas = _output_regression(levels, measured, min_pairs, model)
    prediction = betas * others
    use = measured & has_others
    combined = levels.copy()
    for amp in range(levels.shape[2]):
        cells = use[..., amp]
        own_var = variance[..., amp][cells]
        if model is not None:
            pred_var = model.prediction_variance[amp]
            if not np.isfinite(pred_var) or not cells.any():
                continue
        elif cells.sum() < min_pairs:
            continue
        else:
            miss = levels[..., amp][cells] - prediction[..., amp][cells]
            pred_var = _prediction_variance(miss, own_var)
        weight = (1.0 / own_var) / (1.0 / own_var + 1.0 / pred_var)
        combined[..., amp][cells] = (
            weight * levels[..., amp][cells] + (1 - weight) * (prediction[..., amp][cells])
        )
    return combined


def _interpolate_lines(levels, filled):
    """Fill levels of lines with too few pixels from the nearest measured lines."""
    levels = levels.copy()
    line = np.arange(levels.shape[1])
    for frame in range(levels.shape[0]):
        for amp in range(levels.shape[2]):
            bad = filled[frame, :, amp]
            if not bad.any():
                continue
            good = ~bad
            if good.any():
                levels[frame, bad, amp] = np.interp(line[bad], line[good], levels[frame, good, amp])
            else:
                levels[frame, :, amp] = 0.0
    return levels
