"""Step parameters: rules the configobj ``spec`` cannot express, and the hand-off to algorithms.

Every algorithm takes its settings as one frozen dataclass whose field names are the step's
spec names (see ``docs/vocabulary.rst``); :func:`options_from_step` builds it, so a parameter
is never renamed between the step and the algorithm.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tso_steps.inputs.accepts import InputError

__all__ = ["check_parameters", "options_from_step"]


def check_parameters(step, *, files=(), ordered=(), non_negative=()):
    """Clear errors for parameter combinations configobj's spec cannot express.

    Parameters
    ----------
    step : `~stpipe.Step`
        The step whose attributes are checked; messages use its ``class_alias``.
    files : tuple of str
        Names of parameters holding an optional input file: it must exist when given.
    ordered : tuple of (str, str)
        Pairs ``(low, high)`` of parameters that must satisfy ``low < high`` when both are set
        (``<=`` for integers).
    non_negative : tuple of str
        Names of list parameters whose entries must be >= 0.

    Raises
    ------
    FileNotFoundError, InputError
    """
    alias = step.class_alias or type(step).__name__
    for name in files:
        value = getattr(step, name, None)
        if value and not Path(value).exists():
            raise FileNotFoundError(f"{alias}: {name}={value!r} does not exist.")
    for low, high in ordered:
        a, b = getattr(step, low, None), getattr(step, high, None)
        if a is None or b is None:
            continue
        bad = a > b if isinstance(a, int) and isinstance(b, int) else a >= b
        if bad:
            relation = "at most" if isinstance(a, int) and isinstance(b, int) else "below"
            raise InputError(f"{alias}: {low}={a} must be {relation} {high}={b}.")
    for name in non_negative:
        value = getattr(step, name, None)
        if value is not None and any(v < 0 for v in value):
            raise InputError(f"{alias}: {name}={list(value)} must hold 0-based (>= 0) values.")


def options_from_step(options_class, step, **derived):
    """The options object of an algorithm, filled from the step's parameters of the same name.

    Parameters
    ----------
    options_class : type
        A dataclass (e.g. :class:`~tso_steps.jump.detect.JumpOptions`).
    step : `~stpipe.Step`
        Its attributes named like the dataclass fields are taken.
    **derived
        Fields that are not step parameters (read from the model, or worked out by the
        step, such as the number of workers); they take precedence.

    Returns
    -------
    options_class instance
    """
    parameters = set(re.findall(r"^\s*(\w+)\s*=", step.spec, flags=re.M))
    values = {
        f.name: getattr(step, f.name)
        for f in dataclasses.fields(options_class)
        if f.name not in derived and f.name in parameters
    }
    return options_class(**values, **derived)
