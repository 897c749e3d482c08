"""The model <-> array layer every step uses: open, check, read, copy, flag.

A step's ``process`` calls :func:`prepare_output` once: it opens whatever the user gave (a
path, a datamodel, a one-element list), checks the product type, the shape, the time
series and the exposure type against the step's :class:`Accepts`, and returns a model the
step may change (a copy of a model passed in Python, so the caller's model is never
modified).  Every step therefore answers the same bad input with the same clear error:
:class:`InputError` (a ``ValueError``) or :class:`WrongProductError` (a ``TypeError``), each
naming the problem and the fix.

The readers (:func:`variance_arrays`, :func:`bad_samples`, :func:`median_variance`) turn a
model into the numpy arrays the algorithm modules take; the DQ constants live here and
nowhere else.  :func:`flag_lost_integrations` is how a step marks integrations it could not
measure (NaN values, DO_NOT_USE in DQ, one log line with the count).
"""

from tso_steps.exposure import IMAGING_EXP_TYPES, ImagingExposureError
from tso_steps.inputs.dq import (
    DO_NOT_USE,
    GROUP_DO_NOT_USE,
    GROUP_JUMP_DET,
    GROUP_SATURATED,
    JUMP_DET,
    OUTLIER,
    SATURATED,
)
from tso_steps.inputs.opening import (
    Accepts,
    InputError,
    WrongProductError,
    check_input,
    check_time_series,
    describe,
    open_input,
    prepare_output,
)
from tso_steps.inputs.parameters import check_parameters, options_from_step
from tso_steps.inputs.readers import (
    VARIANCE_NAMES,
    VarianceFrames,
    bad_samples,
    error_variance,
    flag_lost_integrations,
    flag_nonfinite,
    lost_in,
    lost_integrations,
    median_variance,
    variance_arrays,
)

__all__ = [
    "DO_NOT_USE",
    "GROUP_DO_NOT_USE",
    "GROUP_JUMP_DET",
    "GROUP_SATURATED",
    "IMAGING_EXP_TYPES",
    "JUMP_DET",
    "OUTLIER",
    "SATURATED",
    "VARIANCE_NAMES",
    "VarianceFrames",
    "Accepts",
    "ImagingExposureError",
    "InputError",
    "WrongProductError",
    "bad_samples",
    "check_input",
    "check_parameters",
    "check_time_series",
    "describe",
    "error_variance",
    "flag_lost_integrations",
    "flag_nonfinite",
    "lost_in",
    "lost_integrations",
    "median_variance",
    "open_input",
    "options_from_step",
    "prepare_output",
    "variance_arrays",
]
