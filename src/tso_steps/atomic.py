"""Atomic products: every file tso-steps writes appears whole at its final path, or not at all.

A product is written into a fresh hidden folder next to its final path, under its final
name (so ``meta.filename`` and the format inferred from the extension are right), then moved
into place with :func:`os.replace`, which is atomic within one file system.  A full disk, an
exception or a kill during the write leaves the previous file untouched; a failure removes the
temporary folder (a kill may leave one, named ``.<name>.<random>.tmp``, never the product).

:func:`atomic_write` is the context manager our own writers use.  :func:`atomic_saves` makes
the three writers that the steps and jwst's steps call - ``DataModel.save`` (FITS and ASDF
products), ``astropy.table.Table.write`` (ECSV catalogs such as calwebb_tso3's
``_whtlt.ecsv``) and ``astropy.io.fits.HDUList.writeto`` - write atomically while it is
active.  :class:`AtomicSaveMixin` holds it active during ``run`` and ``save_model`` of every
step and pipeline of the package, so the intermediate files jwst's own steps write inside our
pipelines (``save_results``, ``save_opt``, ``save_mask``...) are atomic too.

While active, ``HDUList.writeto`` also writes unsigned-integer images (DQ) in place instead
of through astropy's two full-size signed copies: the same bytes, a third of a rateints file
less memory at the save.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from astropy.io import fits
from astropy.table import Table
from stdatamodels import DataModel

__all__ = ["AtomicSaveMixin", "atomic_saves", "atomic_write"]

log = logging.getLogger("stpipe.tso_steps.atomic")

_local = threading.local()  # depth of atomic_write in this thread: writers inside pass through


def _inside_atomic_write():
    return getattr(_local, "depth", 0) > 0


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
    _local.depth = getattr(_local, "depth", 0) + 1
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
        _local.depth -= 1
        shutil.rmtree(scratch, ignore_errors=True)


# --- the writers made atomic by atomic_saves ----------------------------------------------------
def _model_save(original):
    def save(self, path, dir_path=None, *args, **kwargs):
        if _inside_atomic_write():
            return original(self, path, dir_path, *args, **kwargs)
        if callable(path):
            path = path(self.meta.filename)
        if dir_path:
            path = os.path.join(dir_path, os.path.basename(path))  # noqa: PTH118
        with atomic_write(path) as temporary:
            original(self, str(temporary), None, *args, **kwargs)
        return str(path)

    return save


def _to_path(target, append=False):
    """The final path of a write to ``target``, or None when it cannot be made atomic."""
    if append or not isinstance(target, (str, os.PathLike)):
        return None  # a file object, or adding to an existing file
    return Path(target)


def _table_write(descriptor):
    def write(self, *args, **kwargs):
        bound = descriptor.__get__(self, type(self))
        path = _to_path(args[0], kwargs.get("append", False)) if args else None
        if _inside_atomic_write() or path is None:
            return bound(*args, **kwargs)
        if path.exists() and not kwargs.get("overwrite", False):
            return bound(*args, **kwargs)  # astropy's own "file exists" error
        kwargs.pop("overwrite", None)
        with atomic_write(path) as temporary:
            bound(temporary, *args[1:], **kwargs)
        return None

    return write


def _hdulist_writeto(original):
    def writeto(self, fileobj, *args, **kwargs):
        path = _to_path(fileobj)
        with _unsigned_written_in_place(self):
            if _inside_atomic_write() or path is None:
                return original(self, fileobj, *args, **kwargs)
            kwargs.update(zip(("output_verify", "overwrite", "checksum"), args, strict=False))
            if path.exists() and not kwargs.get("overwrite", False):
                return original(self, fileobj, **kwargs)  # astropy's own "file exists" error
            kwargs.pop("overwrite", None)  # moot for a new temporary file
            with atomic_write(path) as temporary:
                original(self, str(temporary), **kwargs)
        return None

    return writeto


_SIGN_BIT = {2: 0x8000, 4: 0x80000000, 8: 0x8000000000000000}


@contextlib.contextmanager
def _unsigned_written_in_place(hdulist):
    """Write unsigned image HDUs (DQ) without astropy's two full-size temporaries.

    astropy stores ``uint16/32/64`` as signed integers with ``BZERO = 2**(bits - 1)`` and
    makes ``data - BZERO`` and a big-endian copy of it to do so (two arrays the size of DQ,
    the largest allocation of a step that only attaches something). Flipping the sign bit
    in place is that same subtraction; the signed view is then byte-swapped in place as
    astropy does for float arrays, and the bits are flipped back on exit, so the file is
    byte-identical and the array is unchanged afterwards (another thread reading it during
    the write would see the flipped bits).
    """
    swapped = []
    try:
        for index, hdu in enumerate(hdulist):
            data = hdu.data if isinstance(hdu, fits.ImageHDU) else None
            if (
                data is None
                or data.dtype.kind != "u"
                or data.dtype.itemsize not in _SIGN_BIT
                or not data.dtype.isnative
                or not data.flags.writeable
                or not (data.flags.c_contiguous or data.flags.f_contiguous)
                or hdu.header.get("BSCALE", 1) != 1
            ):
                continue
            data ^= data.dtype.type(_SIGN_BIT[data.dtype.itemsize])
            signed = fits.ImageHDU(data.view(f"i{data.dtype.itemsize}"), header=hdu.header)
            # where and as astropy writes them for unsigned data: the header is identical too
            signed.header.set("BSCALE", 1, after="GCOUNT")
            signed.header.set("BZERO", _SIGN_BIT[data.dtype.itemsize], after="BSCALE")
            swapped.append((index, hdu, data))
            hdulist[index] = signed
        yield
    finally:
        for index, hdu, data in swapped:
            data ^= data.dtype.type(_SIGN_BIT[data.dtype.itemsize])
            hdulist[index] = hdu


_WRITERS = (
    (DataModel, "save", _model_save),
    (Table, "write", _table_write),
    (fits.HDUList, "writeto", _hdulist_writeto),
)
_lock = threading.Lock()
_active = {"count": 0, "saved": ()}


@contextlib.contextmanager
def atomic_saves():
    """Make ``DataModel.save``, ``Table.write`` and ``HDUList.writeto`` atomic while active.

    Every write to a path through these writers, by any code (ours, jwst's, stpipe's),
    goes through :func:`atomic_write`; writes to file objects and appends are unchanged, and
    writing over an existing file without ``overwrite`` still fails as before.  Nesting
    and use from several threads are safe: the writers are replaced when the first user
    enters and restored when the last one leaves.

    Yields
    ------
    None
    """
    with _lock:
        if _active["count"] == 0:
            saved = tuple((cls, name, cls.__dict__[name]) for cls, name, _ in _WRITERS)
            for (cls, name, wrap), (_, _, original) in zip(_WRITERS, saved, strict=True):
                setattr(cls, name, wrap(original))
            _active["saved"] = saved
        _active["count"] += 1
    try:
        yield
    finally:
        with _lock:
            _active["count"] -= 1
            if _active["count"] == 0:
                for cls, name, original in _active["saved"]:
                    setattr(cls, name, original)
                _active["saved"] = ()


class AtomicSaveMixin:
    """Make every file a step or pipeline writes during ``run`` or ``save_model`` atomic.

    Put it before the stpipe/jwst base class: ``class MyStep(AtomicSaveMixin, Step)``.  A
    pipeline with it also covers the files its jwst sub-steps write (see
    :func:`atomic_saves`).
    """

    def run(self, *args):
        """Run the step with :func:`atomic_saves` active; see `stpipe.Step.run`."""
        with atomic_saves():
            return super().run(*args)

    def save_model(self, model, *args, **kwargs):
        """Save a product atomically; see `stpipe.Step.save_model`."""
        with atomic_saves():
            return super().save_model(model, *args, **kwargs)
