"""tso_one_over_f's model <-> array layer: which samples and integrations are unusable.

The step reads ramps (``groupdq`` per group, ``pixeldq`` per pixel) and rateints (``dq`` per
sample); the algorithm modules see only the boolean arrays made here.
"""

from __future__ import annotations

import numpy as np

from tso_steps.inputs import DO_NOT_USE, GROUP_DO_NOT_USE, GROUP_SATURATED, SATURATED, lost_in

__all__ = ["BAD_GROUP", "BAD_PIXEL", "lost_integrations", "unusable_samples"]

#: DQ bits of a pixel (or rateints sample) and of a group that no measurement uses.
BAD_PIXEL = DO_NOT_USE | SATURATED
BAD_GROUP = GROUP_DO_NOT_USE | GROUP_SATURATED


def unusable_samples(model, is_ramp):
    """Pixels (ramp: 2-D) or samples (rateints: 3-D) not to use in any measurement."""
    dq = model.pixeldq if is_ramp else model.dq
    shape = model.data.shape[-2:] if is_ramp else model.data.shape
    if dq is None or dq.shape != shape:
        return np.zeros(shape, dtype=bool)
    if is_ramp:
        return (dq & BAD_PIXEL) != 0
    bad = np.empty(shape, dtype=bool)
    for integration, frame in enumerate(dq):  # no cube of dq & bits
        np.not_equal(frame & BAD_PIXEL, 0, out=bad[integration])
    return bad


def lost_integrations(model, is_ramp, bad_pixels):
    """Integrations without one usable sample (their rms cannot be measured)."""
    if not is_ramp:  # bad_samples(model) | bad_pixels, one integration at a time
        cube_dq = model.hasattr("dq") and model.dq.shape == model.data.shape
        return lost_in(model, BAD_PIXEL if cube_dq else DO_NOT_USE)
    lost = np.zeros(model.data.shape[0], dtype=bool)
    group_dq = model.groupdq if model.groupdq.shape == model.data.shape else None
    for i in range(model.data.shape[0]):
        bad = ~np.isfinite(model.data[i]) | bad_pixels[None]
        if group_dq is not None:
            bad |= (group_dq[i] & BAD_GROUP) != 0
        lost[i] = bad.all()
    return lost
