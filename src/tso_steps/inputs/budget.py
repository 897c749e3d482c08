"""Bounded memory: the ``memory_budget`` parameter and the chunks of detector lines it implies.

``tso_jump``, ``tso_outlier`` and ``tso_one_over_f`` share one spec parameter,
``memory_budget`` (MB of working memory, default None). The steps compute whatever spans
the frame first (frame-wide regressors, reference frames, scene models, noise fits) and
then do the per-pixel work chunk by chunk; every chunk-dependent quantity was removed, so
the products are bit-identical whatever the budget (``tests/test_budget.py``).

With a budget and a FITS file name as input the file is also opened lazily
(:func:`open_lazily`): its arrays are memory maps, so only the chunk being worked on is
read. What still lives in memory whatever the budget is listed per step in
``docs/batch.rst`` ("Bounded memory").
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from astropy.io import fits
from stdatamodels.jwst import datamodels

__all__ = [
    "MEMORY_BUDGET_SPEC",
    "budget_bytes",
    "chunk_spans",
    "open_lazily",
    "wants_lazy_input",
]

log = logging.getLogger("stpipe.tso_steps.budget")

#: The one spec line (same name, meaning and default in every step that takes it).
MEMORY_BUDGET_SPEC = (
    "memory_budget = float(default=None, min=1)  # MB of working memory: the per-pixel work "
    "runs in chunks of detector lines of about this size and a FITS input is read lazily "
    "(None: the default chunks, the file read into memory); results do not depend on it"
)


def budget_bytes(memory_budget):
    """The budget in bytes, or None.

    Parameters
    ----------
    memory_budget : float or None
        Megabytes (10**6 bytes), as in the step parameter.

    Returns
    -------
    int or None
    """
    if memory_budget is None:
        return None
    value = float(memory_budget)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"memory_budget must be a positive number of MB or None, got {memory_budget!r}."
        )
    return int(value * 1e6)


def wants_lazy_input(step):
    """True when ``step`` runs with a memory budget (its file input is then memory-mapped)."""
    return getattr(step, "memory_budget", None) is not None


def chunk_spans(
    n_lines, bytes_per_line, memory_budget=None, default_bytes=16e6, label="", unit="lines"
):
    """Cut ``n_lines`` detector lines (or integrations) into chunks that fit a budget.

    Parameters
    ----------
    n_lines : int
        Lines to cut (rows or columns, whichever are whole detector lines).
    bytes_per_line : float
        Working memory one line needs while its chunk is processed (the caller's
        temporaries, not just the input).
    memory_budget : float or None
        MB for one chunk (the step parameter divided by the threads working at once);
        None uses ``default_bytes``.
    default_bytes : float
        Chunk size without a budget.
    label : str
        Step name for the log line.
    unit : str
        What is cut, for the log line (``lines``; ``integrations`` for tso_one_over_f).

    Returns
    -------
    list of tuple of int
        ``(start, stop)`` of each chunk, in order, covering ``0 .. n_lines``.
    """
    n_lines = int(n_lines)
    if n_lines <= 0:
        return []
    budget = budget_bytes(memory_budget)
    size = default_bytes if budget is None else budget
    per_chunk = int(max(1, min(n_lines, size // max(float(bytes_per_line), 1.0))))
    if budget is not None:
        if bytes_per_line > budget:
            log.warning(
                "%s: memory_budget=%.3g MB is below the working memory of one of the %s "
                "(%.3g MB); processing one at a time",
                label or "memory budget",
                budget / 1e6,
                unit,
                bytes_per_line / 1e6,
            )
        log.info(
            "%s: %d chunk(s) of up to %d of %d %s (about %.3g MB each)",
            label or "memory budget",
            -(-n_lines // per_chunk),
            per_chunk,
            n_lines,
            unit,
            per_chunk * bytes_per_line / 1e6,
        )
    return [(s, min(s + per_chunk, n_lines)) for s in range(0, n_lines, per_chunk)]


def open_lazily(path, cls=None):
    """Open a FITS product with its arrays memory-mapped (read when a chunk is used).

    Arrays stored with ``BZERO``/``BSCALE`` (the uint32 DQ arrays) cannot be mapped; they
    are read into memory (``pixeldq`` is one frame; a rateints ``dq`` is a whole cube).
    Writing to a mapped array changes only this process's copy (copy-on-write), never the
    file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
    cls : type, optional
        Datamodel class; default the one named by the file's ``DATAMODL`` keyword.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel` or None
        None when the file is not FITS or names no known model (open it the usual way).
    """
    path = Path(path)
    if path.suffix.lower() not in (".fits", ".fit", ".fts"):
        return None
    hdulist = fits.open(path, memmap=True)
    try:
        if cls is None:
            cls = getattr(datamodels, str(hdulist[0].header.get("DATAMODL", "")), None)
        if not (isinstance(cls, type) and issubclass(cls, datamodels.JwstDataModel)):
            hdulist.close()
            return None
        scaled = [
            index
            for index, hdu in enumerate(hdulist)
            if hdu.is_image
            and hdu.header.get("NAXIS", 0)
            and any(key in hdu.header for key in ("BZERO", "BSCALE", "BLANK"))
        ]
        if scaled:
            with fits.open(path, memmap=False) as plain:
                for index in scaled:
                    hdulist[index].data = plain[index].data
        model = cls(hdulist)
    except Exception:
        hdulist.close()
        raise
    model._tso_steps_hdulist = hdulist  # keeps the mapped file open as long as the model
    log.debug("Opened %s memory-mapped (%d array(s) read: scaled)", path.name, len(scaled))
    return model
