"""Atomic products: every file tso-steps writes appears whole at its final path, or not at all.

A product is written into a fresh hidden folder next to its final path, under its final
name (so ``meta.filename`` and the format inferred from the extension are right), then moved
into place with :func:`os.replace`, which is atomic within one file system.  A full disk, an
exception or a kill during the write leaves the previous file untouched; a failure removes the
temporary folder (a kill may leave one, named ``.<name>.<random>.tmp``, never the product).

:class:`AtomicSaveMixin` makes ``Step.save_model`` atomic for every step and pipeline of the
package, :func:`make_save_atomic` does the same for the jwst steps inside our pipelines, and
:func:`atomic_write` is the context manager the ECSV writers use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from stdatamodels import DataModel

__all__ = ["AtomicSaveMixin", "atomic_write", "make_save_atomic"]

log = logging.getLogger("stpipe.tso_steps.atomic")


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path to write; on success it replaces ``path`` in one step.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The final path.

    Yields
    ------
    `~pathlib.Path`
        Where to write: same file name, in a new hidden folder of the same directory.

    Raises
    ------
    OSError
        When the write fails for lack of space or permission (the message names the final
        path and says the previous file is unchanged); other exceptions pass through. In
        every failure the temporary folder is removed and ``path`` is left as it was.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=folder))
    temporary = scratch / final.name
    try:
        yield temporary
        if not temporary.exists():
            raise OSError(f"Nothing was written for {final}.")
        os.replace(temporary, final)
    except OSError as error:
        raise OSError(
            error.errno,
            f"Could not write {final} ({error.strerror or error}); the previous file, if any, "
            "is unchanged",
        ) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _AtomicModel:
    """A datamodel whose ``save`` writes atomically; everything else is the model's."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def save(self, path, dir_path=None, *args, **kwargs):
        if callable(path):
            path = path(self._model.meta.filename)
        if dir_path:
            path = os.path.join(dir_path, os.path.basename(path))  # noqa: PTH118
        with atomic_write(path) as temporary:
            self._model.save(str(temporary), None, *args, **kwargs)
        return str(path)


class AtomicSaveMixin:
    """Make :meth:`stpipe.Step.save_model` write every datamodel atomically.

    Put it before the stpipe/jwst base class: ``class MyStep(AtomicSaveMixin, Step)``.
    Containers and other results are passed to the base class unchanged.
    """

    def save_model(self, model, *args, **kwargs):
        """Save a product atomically; see `stpipe.Step.save_model`."""
        if isinstance(model, DataModel):
            model = _AtomicModel(model)
        return super().save_model(model, *args, **kwargs)


def make_save_atomic(step):
    """Make one step instance's ``save_model`` atomic (for jwst's own steps in a pipeline).

    Parameters
    ----------
    step : `stpipe.Step`
        Changed in place; a step that is already atomic is left as it is.

    Returns
    -------
    `stpipe.Step`
        The same step.
    """
    if isinstance(step, AtomicSaveMixin) or getattr(step, "_tso_atomic_save", False):
        return step
    original = step.save_model

    def save_model(model, *args, **kwargs):
        if isinstance(model, DataModel):
            model = _AtomicModel(model)
        return original(model, *args, **kwargs)

    step.save_model = save_model
    step._tso_atomic_save = True
    return step
