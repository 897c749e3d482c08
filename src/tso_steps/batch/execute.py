"""Executors of batch tasks: dask.distributed when installed, else serial in this process.

Both take a list of task dicts and a function, and yield ``(task, outcome)`` as tasks
finish, while a :class:`BatchProgress` logs files done / running / failed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time

__all__ = [
    "BatchProgress",
    "DaskExecutor",
    "SerialExecutor",
    "dask_available",
    "make_executor",
]

log = logging.getLogger("stpipe.tso_steps.batch")

INSTALL_HINT = 'pip install "tso-steps[batch]"'


class BatchProgress:
    """Counts of tasks done, running and failed, logged at most every ``interval`` seconds.

    Parameters
    ----------
    total : int
        Number of tasks.
    dashboard : str, optional
        Address of the dask dashboard, shown with every message.
    interval : float
        Seconds between messages (the last one is always logged).
    """

    def __init__(self, total, dashboard=None, interval=5.0):
        self.total, self.dashboard, self.interval = int(total), dashboard, float(interval)
        self.done = self.failed = self.skipped = 0
        self.started = time.monotonic()
        self._last = -float("inf")

    def record(self, status):
        """Count one finished task (``status`` as in the summary table) and maybe log."""
        if status == "failed":
            self.failed += 1
        elif status == "skipped":
            self.skipped += 1
        else:
            self.done += 1
        now = time.monotonic()
        finished = self.done + self.failed + self.skipped
        if now - self._last >= self.interval or finished == self.total:
            self._last = now
            log.info(self.message())

    def message(self):
        """One progress line."""
        finished = self.done + self.failed + self.skipped
        text = (
            f"batch: {finished}/{self.total} finished ({self.done} done, {self.skipped} "
            f"skipped, {self.failed} failed), {self.total - finished} queued or running, "
            f"{time.monotonic() - self.started:.0f} s"
        )
        if self.dashboard:
            text += f"; dashboard {self.dashboard}"
        return text


class SerialExecutor:
    """Run tasks one after the other in this process (no dask needed)."""

    dashboard = None
    workers = 1

    def map(self, function, tasks):
        """Yield ``(task, outcome)`` in order."""
        for task in tasks:
            yield task, function(task)

    def close(self):
        """Nothing to release."""


class DaskExecutor:
    """Run tasks on a dask.distributed cluster.

    Parameters
    ----------
    workers : int, optional
        Workers of a new LocalCluster (default: the number of cores). One thread each: the
        steps run with ``maximum_cores`` forced to 1, so workers never nest pools.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or a scheduler file (JSON, as
        written by ``dask scheduler --scheduler-file`` and by dask-jobqueue); then no local
        cluster is started.
    processes : bool
        LocalCluster with worker processes (default) or threads in this process.
    """

    def __init__(self, workers=None, scheduler=None, processes=True):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            if str(scheduler).endswith(".json") and os.path.isfile(scheduler):
                self.client = Client(scheduler_file=scheduler)
            else:
                self.client = Client(scheduler)
        else:
            n = int(workers or os.cpu_count() or 1)
            self.cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=":0" if processes else None,
            )
            self.client = Client(self.cluster)
        self.dashboard = self.client.dashboard_link if self._has_dashboard() else None
        self.workers = len(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def _has_dashboard(self):
        try:
            return bool(self.client.dashboard_link) and (
                importlib.util.find_spec("bokeh") is not None
            )
        except Exception:  # noqa: BLE001 - a scheduler without HTTP services
            return False

    def map(self, function, tasks):
        """Yield ``(task, outcome)`` as tasks finish (one dask task per batch task).

        ``outcome`` is the exception when the task itself could not run (its worker died,
        e.g. killed for exceeding its memory limit).
        """
        from distributed import as_completed

        futures = {}
        for task in tasks:
            future = self.client.submit(function, task, key=f"tso-batch-{task['id']}", pure=False)
            futures[future] = task
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # noqa: BLE001 - a lost worker fails its task only
                yield futures[future], error

    def close(self):
        """Close the client and a cluster this executor started."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def dask_available():
    """True when dask.distributed can be imported (the ``batch`` extra is installed)."""
    return importlib.util.find_spec("distributed") is not None


def make_executor(workers=None, scheduler=None, processes=True):
    """A :class:`DaskExecutor`, or a :class:`SerialExecutor` if dask is missing.

    Parameters
    ----------
    workers : int, optional
        LocalCluster size (default the number of cores).
    scheduler : str, optional
        Address or scheduler file of a running dask scheduler.
    processes : bool
        Worker processes (True) or threads (False) in a LocalCluster.

    Returns
    -------
    SerialExecutor or DaskExecutor

    Raises
    ------
    RuntimeError
        If a scheduler is requested but dask.distributed is not installed.
    """
    have_dask = dask_available()
    if scheduler and not have_dask:
        raise RuntimeError(
            f"--scheduler needs dask.distributed, which is not installed: {INSTALL_HINT}"
        )
    if not have_dask:
        log.warning(
            "dask.distributed is not installed: running the files one after the other. "
            "For parallel workers: %s",
            INSTALL_HINT,
        )
        return SerialExecutor()
    return DaskExecutor(workers=workers, scheduler=scheduler, processes=processes)
