"""One batch task on one worker: build the step, run it, stamp, publish, record.

The step is built as ``Step.call``/``strun`` build it (``build_config`` then
``from_config_section``), with ``maximum_cores`` forced to 1 in the step and every step of a
pipeline. A task of several segments runs them as one exposure
(:func:`~tso_steps.batch.joined.run_exposure`); calwebb_tso3 gets an association. Products
go to a staging folder in the output folder, get ``meta.tso_steps_batch`` as they are saved
(ECSV tables: in their metadata), and are moved into place with :func:`os.replace`; a
ledger file per task (``.tso_steps_batch/<task>.json``) lists them for the resume test.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import socket
import time
import traceback
from pathlib import Path

from tso_steps.batch.joined import product_root, run_exposure
from tso_steps.batch.provenance import (
    file_digest,
    package_versions,
    product_hash,
    provenance_record,
    publish,
    run_hash,
    stamp_table,
)
from tso_steps.batch.segments import HALO_RULES

__all__ = ["build_step", "run_task", "spanning_steps"]

log = logging.getLogger("stpipe.tso_steps.batch")

LEDGER = ".tso_steps_batch"


def build_step(target, params, first_input, memory_budget=None):
    """Instantiate the step as ``Step.call``/``strun`` would, ``maximum_cores`` forced to 1.

    ``memory_budget`` (MB) is given to the step and to every step of a pipeline that takes
    one; it changes how the work is chunked, never the products, so it is not hashed.
    """
    from stpipe import Step
    from stpipe.utilities import import_class

    cls = import_class(target.class_name, Step)
    kwargs = json.loads(json.dumps(params, default=str))
    if target.config_file:
        kwargs["config_file"] = target.config_file
    config, config_file = cls.build_config(first_input, **kwargs)
    if "class" in config:
        del config["class"]
    instance = cls.from_config_section(config, name=config.get("name"), config_file=config_file)
    for step in _all_steps(instance):
        if "maximum_cores" in step.spec:
            step.maximum_cores = "1"
        if memory_budget is not None and "memory_budget" in step.spec:
            step.memory_budget = float(memory_budget)
    return instance


def _all_steps(step):
    yield step
    for name in getattr(step, "step_defs", {}):
        child = getattr(step, name, None)
        if child is not None:
            yield from _all_steps(child)


def spanning_steps(step):
    """Enabled steps whose statistics span the integrations of a file.

    ``step`` itself, the steps of a pipeline and their hooks are searched for the aliases
    of :data:`~tso_steps.batch.HALO_RULES`.

    Parameters
    ----------
    step : `~stpipe.Step`
        As built by :func:`build_step`.

    Returns
    -------
    list of str
        Empty when each file can be processed alone.
    """
    from stpipe import Step
    from stpipe.utilities import import_class

    found = []
    for child in _all_steps(step):
        if child.skip:
            continue
        aliases = [child.class_alias]
        for hook in [*(child.pre_hooks or []), *(child.post_hooks or [])]:
            if isinstance(hook, str):  # a class path (jwst pipelines given our steps as hooks)
                try:
                    aliases.append(import_class(hook.split("(")[0].strip(), Step).class_alias)
                except Exception:  # noqa: BLE001 - a shell command or unknown class
                    continue
        found += [a for a in aliases if a in HALO_RULES and a not in found]
    return found


def _takes_association(step):
    """calwebb_tso3 and its subclasses run on an association, not on a calints file."""
    from jwst.pipeline import Tso3Pipeline

    return isinstance(step, Tso3Pipeline)


def _association(path, product_name, folder):
    """A level-3 association of one calints file, written in ``folder`` with a link to it."""
    from tso_steps.pipelines.tso3 import write_association

    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    member = Path(path).name
    try:  # a member named without a path, as the archive's associations name them
        (folder / member).symlink_to(Path(path).resolve())
    except OSError:
        member = str(Path(path).resolve())
    return write_association([member], product_name, folder / "tso3_asn.json")


def _ledger_path(task):
    return Path(task["output_dir"]) / LEDGER / f"{task['id']}.json"


def _reusable(task, digest):
    """Product paths when every product of this task exists with ``digest``, else None."""
    ledger = _ledger_path(task)
    if task["force"] or not ledger.is_file():
        return None
    try:
        record = json.loads(ledger.read_text())
    except (OSError, ValueError):
        return None
    if record.get("run_hash") != digest or not record.get("products"):
        return None
    paths = {
        f: [str(Path(task["output_dir"]) / p) for p in ps] for f, ps in record["products"].items()
    }
    if all(product_hash(p) == digest for ps in paths.values() for p in ps):
        return paths
    return None


def _worker_name():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def run_task(task):
    """Run one batch task; never raises (errors come back in the rows).

    Parameters
    ----------
    task : dict
        As built by ``run_batch``.

    Returns
    -------
    list of dict
        One summary row per input file of the task.
    """
    os.environ.update(task["environment"])
    worker = _worker_name()
    started = time.perf_counter()
    inputs = task["inputs"]

    def rows(status, products=None, error=""):
        seconds = time.perf_counter() - started
        return [
            {
                "file": path,
                "status": status,
                "product": ", ".join(Path(p).name for p in (products or {}).get(path, [])),
                "seconds": seconds,
                "error": error,
                "worker": worker,
            }
            for path in inputs
        ]

    staging = None
    try:
        target = task["target"]
        versions = package_versions()
        hashed = dict(task["params"], maximum_cores_forced="1")
        if target.config_file:
            hashed["config_file_sha256"] = file_digest(target.config_file)
        digest = run_hash(inputs, target.class_name, hashed, versions)
        existing = _reusable(task, digest)
        if existing is not None:
            return rows("skipped", existing, f"products exist with the same hash {digest[:12]}")
        output_dir = Path(task["output_dir"])
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = output_dir / f".staging-{task['id']}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        record = provenance_record(inputs, target.class_name, task["params"], versions, digest)
        record["worker"] = worker
        step = build_step(target, task["params"], inputs[0], task.get("memory_budget"))
        for child in _all_steps(step):
            child.save_model = _stamping(child.save_model, record)
        step.output_dir = str(staging)
        association = None
        if _takes_association(step):
            association = functools.partial(_association, folder=staging / "association")
        if task["joined"]:
            staged = run_exposure(step, inputs, staging, association)
        else:
            step.save_results = True
            path = Path(inputs[0])
            step.run(str(association(path, product_root(path.name)) if association else path))
            staged = {inputs[0]: sorted(str(p) for p in staging.iterdir() if p.is_file())}
        if not any(staged.values()):
            raise RuntimeError("the step wrote no product")
        for table in {p for ps in staged.values() for p in ps if p.endswith(".ecsv")}:
            stamp_table(table, record)
        # a product of the whole exposure (a rate image) is listed with every segment
        unique = list(dict.fromkeys(p for ps in staged.values() for p in ps))
        moved = dict(zip(unique, publish(unique, output_dir), strict=True))
        final = {f: [moved[p] for p in ps] for f, ps in staged.items()}
        _write_ledger(task, digest, final)
        return rows("done", final)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - one bad file must not stop a batch
        log.debug("batch task %s failed:\n%s", task["id"], traceback.format_exc())
        message = f"{type(error).__name__}: {error}".strip()
        return rows("failed", error=message.splitlines()[0] if message else type(error).__name__)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _stamping(save_model, record):
    """Wrap a step's ``save_model`` so every saved model carries ``meta.tso_steps_batch``."""

    def save(model, *args, **kwargs):
        meta = getattr(model, "meta", None)
        if meta is not None:
            meta.tso_steps_batch = dict(record)
        return save_model(model, *args, **kwargs)

    return save


def _write_ledger(task, digest, final):
    ledger = _ledger_path(task)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    products = {f: [Path(p).name for p in ps] for f, ps in final.items()}
    temporary = ledger.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"run_hash": digest, "products": products}, indent=1))
    os.replace(temporary, ledger)
