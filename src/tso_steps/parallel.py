"""How many worker threads a step may use: the ``maximum_cores`` parameter of every step."""

from __future__ import annotations

import os

__all__ = ["resolve_workers"]


def resolve_workers(maximum_cores):
    """Number of threads for ``maximum_cores`` = 'none', 'quarter', 'half', 'all' or an int.

    Parameters
    ----------
    maximum_cores : str or int

    Returns
    -------
    int
    """
    ncpu = os.cpu_count() or 1
    value = str(maximum_cores).strip().lower()
    fractions = {"none": None, "quarter": 0.25, "half": 0.5, "all": 1.0}
    if value in fractions:
        return 1 if fractions[value] is None else max(1, int(ncpu * fractions[value]))
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            f"maximum_cores must be 'none', 'quarter', 'half', 'all' or an integer, got "
            f"{maximum_cores!r}"
        ) from None
    if number < 1:
        raise ValueError(f"maximum_cores must be >= 1, got {number}")
    return min(number, ncpu)
