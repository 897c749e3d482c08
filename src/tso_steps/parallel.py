"""Worker counts (``maximum_cores``), BLAS threads and progress of long loops."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "OneBlasThreadMixin",
    "Progress",
    "one_blas_thread",
    "resolve_workers",
]

#: Environment variables by which a user sets the BLAS threads; when one is set, we do not.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def one_blas_thread():
    """Run the block with one BLAS thread, unless the user set the thread count.

    Our linear algebra is many small solves, which gain little from BLAS threads, while
    OpenBLAS threads that find their cores busy (other jobs, our own ``maximum_cores``
    workers) spin: on this project's 2-core machine at load 6, ``tso_one_over_f`` on a MIRI
    ramp took 119 s of CPU with OpenBLAS's default threads and 17 s with one
    (docs/benchmarks.md).  Parallelism comes from ``maximum_cores`` instead.  If any of
    :data:`BLAS_THREAD_VARIABLES` is set, nothing is changed.
    """
    if any(os.environ.get(name) for name in BLAS_THREAD_VARIABLES):
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class OneBlasThreadMixin:
    """Run a step with :func:`one_blas_thread`; put it first in the step's bases."""

    def run(self, *args):
        """Run the step with one BLAS thread; see `stpipe.Step.run`."""
        with one_blas_thread():
            return super().run(*args)


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
