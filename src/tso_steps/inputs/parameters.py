"""Parameter rules the configobj ``spec`` of a step cannot express (files, orderings)."""

from __future__ import annotations

from pathlib import Path

from tso_steps.inputs.opening import InputError

__all__ = ["check_parameters"]


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
