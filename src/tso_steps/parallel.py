"""Worker counts (the ``maximum_cores`` parameter of every step) and progress of long loops."""

from __future__ import annotations

import os
import time

__all__ = ["Progress", "resolve_workers"]


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


class Progress:
    """Log the progress of a long loop over chunks, at most every ``interval`` seconds.

    jwst users expect a long step to say where it is; a line per chunk would flood the log.

    Parameters
    ----------
    logger : `logging.Logger`
    label : str
        What is being processed, e.g. ``"tso_jump: detecting"``.
    total : int
        Number of chunks.
    unit : str
        Name of one chunk in the message.
    interval : float
        Seconds between messages.
    """

    def __init__(self, logger, label, total, unit="chunks", interval=10.0):
        self.logger, self.label, self.total, self.unit = logger, label, int(total), unit
        self.interval = float(interval)
        self.done = 0
        self.started = self._last = time.monotonic()

    def update(self, count=1):
        """Record ``count`` finished chunks; log if ``interval`` has passed or all are done."""
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.interval or (
            self.done >= self.total and now - self.started >= self.interval
        ):
            self._last = now
            self.logger.info(
                "%s: %d of %d %s done (%.0f s)",
                self.label,
                self.done,
                self.total,
                self.unit,
                now - self.started,
            )

    def wrap(self, function):
        """``function`` that also records one finished chunk per call."""

        def wrapped(*args, **kwargs):
            result = function(*args, **kwargs)
            self.update()
            return result

        return wrapped
