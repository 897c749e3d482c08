"""One batch task on one worker: build the step, run it, stamp, publish, record.

The step is built as ``Step.call``/``strun`` build it (``build_config`` then
``from_config_section``), with ``maximum_cores`` forced to 1 in the step and every step of a
pipeline. Products go to a staging folder in the output folder, get ``meta.tso_steps_batch``
as they are saved, and are moved into place with :func:`os.replace`; a ledger file per task
(``.tso_steps_batch/<task>.json``) lists them for the resume test.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import traceback
from pathlib import Path

from tso_steps.batch.provenance import (
    file_digest,
    package_versions,
    product_hash,
    provenance_record,
    publish,
    run_hash,
)
from tso_steps.batch.segments import join_segments, split_exposure

__all__ = ["build_step", "run_task"]

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
        if task["joined"]:
            staged = _run_joined(step, inputs, staging)
        else:
            step.save_results = True
            step.run(inputs[0])
            staged = {inputs[0]: sorted(str(p) for p in staging.iterdir())}
        if not any(staged.values()):
            raise RuntimeError("the step wrote no product")
        final = {f: publish(ps, output_dir) for f, ps in staged.items()}
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


def _run_joined(step, inputs, staging):
    """Run the step once on the joined segments; save each segment's cut-out.

    The segments are joined one at a time and the joined exposure is written to the staging
    folder, so the step opens a file (as ``strun`` does, without the copy it makes of a
    model): the peak memory is about that of the step on the whole exposure as one file.
    """
    infos = []
    joined = join_segments(inputs, infos)
    log.info(
        "batch: %d segments joined into integrations %d-%d for %s",
        len(infos),
        joined.meta.exposure.integration_start,
        joined.meta.exposure.integration_end,
        step.class_alias or type(step).__name__,
    )
    scratch = Path(staging) / "joined" / Path(inputs[0]).name
    scratch.parent.mkdir()
    joined.save(scratch)
    joined.close()
    del joined
    step.save_results = False
    result = step.run(str(scratch))
    step.output_use_model = True
    staged = {}
    for path, piece in zip(inputs, split_exposure(result, infos), strict=True):
        saved = step.save_model(piece, force=True)
        staged[path] = [saved] if isinstance(saved, str) else list(saved)
        piece.close()
    result.close()
    shutil.rmtree(scratch.parent, ignore_errors=True)
    return staged


def _write_ledger(task, digest, final):
    ledger = _ledger_path(task)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    products = {f: [Path(p).name for p in ps] for f, ps in final.items()}
    temporary = ledger.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"run_hash": digest, "products": products}, indent=1))
    os.replace(temporary, ledger)
