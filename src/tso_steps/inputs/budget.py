"""Bounded memory: the ``memory_budget`` parameter and the chunks of detector lines it implies.

``tso_jump``, ``tso_outlier`` and ``tso_one_over_f`` share one spec parameter,
``memory_budget`` (MB of working memory, default None). The steps compute whatever spans
the frame first (frame-wide regressors, reference frames, scene models, noise fits) and
then do the per-pixel work chunk by chunk; every chunk-dependent quantity was removed, so
the products are bit-identical whatever the budget (``tests/test_budget.py``).

With a budget and a FITS file name as input the file is also opened lazily
(:func:`open_lazily`): its arrays are memory maps of a scratch copy, so only the chunk being
worked on is read and what the step writes goes to the copy's pages, not to private memory.
What still lives in memory whatever the budget is listed per step in ``docs/batch.rst``
("Bounded memory").
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels

__all__ = [
    "MEMORY_BUDGET_SPEC",
    "budget_bytes",
    "chunk_spans",
    "open_lazily",
    "scratch_directory",
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


def scratch_directory(step, path=None):
    """Where a budgeted step may put the scratch copy of its input, or None.

    The step's ``output_dir`` (the product goes there too), else the working directory, if
    it is writable and has room for a copy of ``path``.

    Parameters
    ----------
    step : `~stpipe.Step`
    path : str or `~pathlib.Path`, optional
        The input file (its size is the room needed).

    Returns
    -------
    `~pathlib.Path` or None
    """
    directory = Path(getattr(step, "output_dir", None) or os.getcwd())
    try:
        room = shutil.disk_usage(directory).free
        needed = 0 if path is None else Path(path).stat().st_size
    except OSError:
        return None
    if not os.access(directory, os.W_OK) or room < 2 * needed:
        log.warning(
            "No room for a scratch copy of the input in %s: the changes the step makes are "
            "held in private memory (copy-on-write)",
            directory,
        )
        return None
    return directory


def open_lazily(path, cls=None, scratch=None):
    """Open a FITS product with its image arrays memory-mapped (read when a chunk is used).

    Without ``scratch`` the input file is mapped copy-on-write: the file is never changed,
    and every page a step writes becomes private memory of the process. Arrays stored with
    ``BZERO`` (the uint32 DQ arrays) are read into memory (``pixeldq`` is one frame; a
    rateints ``dq`` is a whole cube).

    With ``scratch`` (a directory) the file is first copied there and the copy is mapped
    shared and writable, so what a step writes goes to the copy's page cache, which the
    kernel writes back and can drop, instead of private memory. In the copy, unsigned
    integer arrays stored with ``BZERO`` (``dq``, ``pixeldq``, uint16 ``data``) are
    converted in place to their unsigned values (which flips the top bit) and mapped too.
    The copy is unlinked as soon as it is mapped: it takes disk space until the model is
    closed and never outlives the process.

    Parameters
    ----------
    path : str or `~pathlib.Path`
    cls : type, optional
        Datamodel class; default the one named by the file's ``DATAMODL`` keyword.
    scratch : str or `~pathlib.Path`, optional
        Directory of the scratch copy (:func:`scratch_directory`).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel` or None
        None when the file is not FITS or names no known model (open it the usual way).
    """
    path = Path(path)
    if path.suffix.lower() not in (".fits", ".fit", ".fts"):
        return None
    with fits.open(path) as header_only:
        name = str(header_only[0].header.get("DATAMODL", ""))
    cls = cls or getattr(datamodels, name, None)
    if not (isinstance(cls, type) and issubclass(cls, datamodels.JwstDataModel)):
        return None
    copy = None
    if scratch is not None:
        handle, copy = tempfile.mkstemp(prefix=".tso_steps-", suffix=".fits", dir=scratch)
        os.close(handle)
        shutil.copyfile(path, copy)
    hdulist = fits.open(copy or path, memmap=True)
    try:
        read = _map_arrays(hdulist, copy, path)
        model = cls(hdulist)
    except Exception:
        hdulist.close()
        raise
    finally:
        if copy is not None:
            os.unlink(copy)  # the mappings keep the data until the model is closed
    model._tso_steps_hdulist = hdulist  # keeps the mapped file open as long as the model
    log.debug(
        "Opened %s memory-mapped (%s; %d array(s) read: scaled)",
        path.name,
        "shared scratch copy" if copy else "copy-on-write",
        read,
    )
    return model


# FITS BITPIX -> big-endian dtype of the stored values
_STORED = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# bytes of a scaled array converted to unsigned at once in the scratch copy
_CONVERT_BLOCK = 1 << 22


def _map_arrays(hdulist, copy, original):
    """Give each image HDU its mapped array; returns the number of arrays read instead."""
    read = 0
    for index, hdu in enumerate(hdulist):
        header = hdu.header
        if not hdu.is_image or not header.get("NAXIS", 0):
            continue
        scaled = any(key in header for key in ("BZERO", "BSCALE", "BLANK"))
        if copy is None:
            if scaled:  # astropy scales into a new array: read it from the original file
                with fits.open(original, memmap=False) as plain:
                    hdu.data = plain[index].data
                read += 1
            continue
        bitpix = header["BITPIX"]
        shape = tuple(header[f"NAXIS{i}"] for i in range(header["NAXIS"], 0, -1))
        stored = np.memmap(
            copy, dtype=_STORED[bitpix], mode="r+", offset=hdu.fileinfo()["datLoc"], shape=shape
        )
        if scaled:
            unsigned = _as_unsigned(stored, header)
            if unsigned is None:  # a real scaling (BSCALE, float BZERO): read it
                hdu.data = np.array(hdu.data)
                read += 1
                continue
            stored = unsigned
        hdu.data = stored
    return read


def _as_unsigned(stored, header):
    """The stored signed integers as the unsigned values they encode, in place, or None.

    FITS stores unsigned integers as signed ones with ``BZERO = 2**(bits - 1)``; adding it
    is the same as flipping the top bit, done here block by block in the shared mapping.
    """
    bits = 8 * stored.dtype.itemsize
    if (
        stored.dtype.kind != "i"
        or header.get("BSCALE", 1) != 1
        or header.get("BZERO") != 2 ** (bits - 1)
        or "BLANK" in header
    ):
        return None
    unsigned = stored.view(f">u{stored.dtype.itemsize}")
    flat = unsigned.reshape(-1)
    top = np.array(1 << (bits - 1), dtype=unsigned.dtype)
    step = max(1, _CONVERT_BLOCK // stored.dtype.itemsize)
    for start in range(0, flat.size, step):
        flat[start : start + step] ^= top
    return unsigned
