"""Provenance of batch products, the resume test, and atomic writes.

Every product written by ``tso-steps batch`` carries ``meta.tso_steps_batch``: the input
file(s) and their content hash, the step class, the parameters, the package versions, the
worker, and ``run_hash``, a SHA-256 of all of these except the worker. The node lives in the
ASDF extension of the FITS file and survives save/load (``tests/test_batch.py`` checks it). A
rerun whose ``run_hash`` equals the one stored in every product of a task skips the task.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from importlib import metadata
from pathlib import Path

from astropy.table import Table

__all__ = [
    "VERSIONED_PACKAGES",
    "file_digest",
    "package_versions",
    "product_hash",
    "publish",
    "run_hash",
    "stamp_table",
]

#: Packages whose versions enter the hash (a new version of any of them redoes the product).
VERSIONED_PACKAGES = ("tso-steps", "jwst", "stpipe", "stcal", "stdatamodels", "numpy", "scipy")

#: Metadata key of the provenance record in ECSV products.
TABLE_KEY = "tso_steps_batch"

_DIGESTS = {}


def package_versions():
    """Installed versions of :data:`VERSIONED_PACKAGES` (``"missing"`` if absent)."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def file_digest(path, block=1 << 23):
    """SHA-256 of a file's content (cached per path, size and modification time)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(block):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def run_hash(inputs, step_class, params, versions):
    """Hash that identifies a product: input contents, step, parameters and versions.

    Parameters
    ----------
    inputs : sequence of str
        Files the product depends on (all segments of the exposure in a segment-aware run).
    step_class : str
        Fully qualified class name.
    params : dict
        Parameters given to the step (nested dicts allowed; values are stringified).
    versions : dict
        From :func:`package_versions`.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    record = {
        "inputs": [file_digest(p) for p in inputs],
        "step": step_class,
        "params": params,
        "versions": versions,
    }
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def provenance_record(inputs, step_class, params, versions, digest):
    """The ``meta.tso_steps_batch`` node of a product."""
    return {
        "run_hash": digest,
        "inputs": [Path(p).name for p in inputs],
        "input_sha256": [file_digest(p) for p in inputs],
        "step": step_class,
        "parameters": json.dumps(params, sort_keys=True, default=str),
        "versions": json.dumps(versions, sort_keys=True),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def product_hash(path):
    """``run_hash`` stored in a product, or None (missing file, no or unreadable node).

    FITS products carry it in ``meta.tso_steps_batch``, ECSV tables in their metadata
    (:func:`stamp_table`).
    """
    from stdatamodels.jwst import datamodels

    if not Path(path).is_file():
        return None
    try:
        if str(path).endswith(".ecsv"):
            node = Table.read(path, format="ascii.ecsv").meta.get(TABLE_KEY) or {}
            return node.get("run_hash")
        with datamodels.open(path) as model:
            node = model.meta.instance.get("tso_steps_batch") or {}
            return node.get("run_hash")
    except Exception:  # noqa: BLE001 - a corrupt or foreign file is simply not reusable
        return None


def stamp_table(path, record):
    """Add the provenance ``record`` to the metadata of an ECSV table, in place.

    Parameters
    ----------
    path : str or path-like
        An ECSV product (white light, photometry, ``tso_vectors``).
    record : dict
        As written into ``meta.tso_steps_batch`` of the FITS products.
    """
    table = Table.read(path, format="ascii.ecsv")
    table.meta[TABLE_KEY] = dict(record)
    table.write(path, format="ascii.ecsv", overwrite=True)


def publish(staged, output_dir):
    """Move staged products into ``output_dir`` with :func:`os.replace` (atomic per file).

    Parameters
    ----------
    staged : sequence of str
        Files written in a staging folder inside ``output_dir`` (same file system).
    output_dir : str or path-like

    Returns
    -------
    list of str
        Final paths.
    """
    final = []
    for path in staged:
        target = Path(output_dir) / Path(path).name
        os.replace(path, target)
        final.append(str(target))
    return final
