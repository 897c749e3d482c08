"""``run_batch``: a step, pipeline or ASDF config over many files, on dask workers.

A *task* is one input file, or, for the steps whose statistics span every integration
(:data:`~tso_steps.batch.segments.HALO_RULES`), all segments of one exposure. Each task
runs on one worker as ``strun`` would run it (same class, parameters, product names), with
``maximum_cores`` forced to 1, writes into a staging folder inside the output folder, stamps
``meta.tso_steps_batch`` into every product and moves the products into place with
:func:`os.replace`. Errors stay inside their task and come back as a row of the summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from tso_steps.batch.execute import BatchProgress, make_executor
from tso_steps.batch.plan import group_exposures, nested, parse_params, sweep_combinations
from tso_steps.batch.plan import sweep_folder as folder_name
from tso_steps.batch.provenance import (
    file_digest,
    package_versions,
    product_hash,
    provenance_record,
    publish,
    run_hash,
)
from tso_steps.batch.segments import halo_integrations, join_segments, split_exposure

__all__ = ["StepTarget", "resolve_step", "run_batch", "run_task"]

log = logging.getLogger("stpipe.tso_steps.batch")

#: Environment variables handed to every worker (offline CRDS set-up).
FORWARDED_ENVIRONMENT = ("STPIPE_DISABLE_CRDS_STEPPARS", "CRDS_PATH", "CRDS_SERVER_URL")
LEDGER = ".tso_steps_batch"
SUMMARY_COLUMNS = ("file", "status", "product", "seconds", "error", "worker")


@dataclass(frozen=True)
class StepTarget:
    """What to run: the class, its alias, and an optional ASDF configuration file."""

    class_name: str
    alias: str | None
    is_pipeline: bool
    config_file: str | None = None


def resolve_step(name):
    """Resolve a step alias, pipeline alias, class path or ASDF config file.

    Parameters
    ----------
    name : str
        ``tso_jump``, ``tso_detector1``, ``jwst.jump.JumpStep`` or ``config.asdf``.

    Returns
    -------
    StepTarget

    Raises
    ------
    ValueError
        If the name is neither a registered alias, an importable Step class nor a config
        file with a ``class`` entry.
    """
    from stpipe import Pipeline, Step, config_parser
    from stpipe.utilities import import_class, resolve_step_class_alias

    config_file = None
    class_name = name
    if str(name).endswith(".asdf") or os.path.isfile(name):
        if not os.path.isfile(name):
            raise ValueError(f"Config file {name} does not exist.")
        config = config_parser.load_config_file(str(name))
        if "class" not in config:
            raise ValueError(f"Config file {name} has no 'class' entry naming the step to run.")
        config_file = str(Path(name).resolve())
        class_name = config["class"]
    class_name = resolve_step_class_alias(class_name)
    try:
        cls = import_class(class_name, Step)
    except Exception as error:  # noqa: BLE001 - stpipe raises several kinds here
        raise ValueError(
            f"{name!r} is not a registered step or pipeline alias (see `stpipe list`), nor a "
            f"Step class or an ASDF config file: {error}"
        ) from None
    return StepTarget(
        class_name=f"{cls.__module__}.{cls.__name__}",
        alias=getattr(cls, "class_alias", None),
        is_pipeline=issubclass(cls, Pipeline),
        config_file=config_file,
    )


def run_batch(
    step,
    files,
    output_dir,
    *,
    workers=None,
    scheduler=None,
    params=None,
    sweep=None,
    force=False,
    processes=True,
):
    """Run a step, pipeline or config over many files, in parallel, resumably.

    Parameters
    ----------
    step : str
        Step or pipeline alias (``tso_jump``, ``tso_detector1``), class path, or ASDF config.
    files : sequence of str or path-like
        Input files. Segments of one exposure are recognised from their headers.
    output_dir : str or path-like
        Where products go (created if needed); a sweep adds one subfolder per combination.
    workers : int, optional
        Workers of a LocalCluster (default: the number of cores).
    scheduler : str, optional
        Address (``tcp://host:8786``) or scheduler file of a running dask scheduler.
    params : dict or sequence of str, optional
        Step parameters, as a dict or as ``"key=value"`` strings (``steps.jump.x=1`` for a
        pipeline's step).
    sweep : dict or sequence of str, optional
        Parameters to sweep: ``{"rejection_threshold": [4, 5]}`` or ``["k=v1,v2"]``.
    force : bool
        Redo products even when they exist with the same provenance hash.
    processes : bool
        LocalCluster workers as processes (True) or threads (False).

    Returns
    -------
    `~astropy.table.Table`
        One row per input file and sweep combination: ``file``, ``status`` (``done``,
        ``skipped``, ``failed``), ``product``, ``seconds``, ``error``, ``worker``, and
        ``sweep`` when sweeping.
    """
    target = resolve_step(step)
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    base = params if isinstance(params, dict) else parse_params(params)
    combinations = sweep_combinations(sweep)
    unreadable = []
    exposures = group_exposures(files, unreadable)
    tasks = _plan_tasks(target, exposures, base, combinations, output_dir, force)
    if tasks:
        _check_parameters(target, tasks[0])
    log.info(
        "batch: %s over %d file(s) in %d exposure(s), %d parameter set(s): %d task(s)",
        target.alias or target.class_name,
        sum(len(e.segments) for e in exposures),
        len(exposures),
        len(combinations),
        len(tasks),
    )
    executor = make_executor(workers=workers, scheduler=scheduler, processes=processes)
    rows = [
        dict(file=p, status="failed", product="", seconds=0.0, error=m, worker="")
        for p, m in unreadable
        for _ in combinations
    ]
    for row in rows:
        log.error("batch: %s failed: %s", row["file"], row["error"])
    try:
        log.info(
            "batch: %d worker(s)%s",
            executor.workers,
            f", dashboard {executor.dashboard}" if executor.dashboard else "",
        )
        progress = BatchProgress(len(tasks), executor.dashboard)
        for task, outcome in executor.map(run_task, tasks):
            for row in outcome:
                if row["status"] == "failed":
                    log.error("batch: %s failed: %s", row["file"], row["error"])
                elif row["status"] == "skipped":
                    log.info("batch: %s skipped: %s", row["file"], row["error"])
                if len(combinations) > 1:
                    row["sweep"] = task["sweep"]
                rows.append(row)
            progress.record(_task_status(outcome))
    finally:
        executor.close()
    return _summary(rows, sweep=len(combinations) > 1)


def _task_status(rows):
    statuses = {r["status"] for r in rows}
    return "failed" if "failed" in statuses else ("skipped" if statuses == {"skipped"} else "done")


def _summary(rows, sweep=False):
    names = list(SUMMARY_COLUMNS) + (["sweep"] if sweep else [])
    table = Table(
        rows=[[r.get(n, "") for n in names] for r in rows] or None,
        names=names,
        dtype=[str, str, str, float, str, str] + ([str] if sweep else []),
    )
    table["seconds"].format = ".2f"
    return table


def _plan_tasks(target, exposures, base, combinations, output_dir, force):
    environment = {k: os.environ[k] for k in FORWARDED_ENVIRONMENT if k in os.environ}
    tasks = []
    for combination in combinations:
        params = _merge(base, nested(combination))
        folder = folder_name(combination)
        directory = output_dir / folder if folder else output_dir
        for exposure in exposures:
            groups = [[s] for s in exposure.segments]
            nints = exposure.segments[0].nints
            joined = (
                not target.is_pipeline
                and len(exposure.segments) > 1
                and halo_integrations(target.alias, params, nints or 0) is not None
            )
            if joined and not exposure.contiguous:
                log.warning(
                    "batch: segments %s do not tile consecutive integrations (INTSTART/INTEND):"
                    " each is processed alone, without its neighbours",
                    ", ".join(Path(s.path).name for s in exposure.segments),
                )
                joined = False
            if joined:
                groups = [exposure.segments]
            for group in groups:
                inputs = [s.path for s in group]
                ident = hashlib.sha1(
                    json.dumps([inputs, target.class_name, folder]).encode()
                ).hexdigest()[:12]
                tasks.append(
                    {
                        "id": f"{Path(inputs[0]).name.split('.')[0]}-{ident}",
                        "inputs": inputs,
                        "target": target,
                        "params": params,
                        "output_dir": str(directory),
                        "sweep": folder,
                        "force": bool(force),
                        "joined": joined,
                        "environment": environment,
                    }
                )
    return tasks


def _merge(base, extra):
    merged = json.loads(json.dumps(base, default=str))
    for key, value in extra.items():
        if isinstance(value, dict):
            merged[key] = _merge(merged.get(key, {}), value)
        else:
            merged[key] = value
    return merged


def _check_parameters(target, task):
    """Build the step once here, so a bad parameter is one clear error, not N failed rows."""
    _build_step(target, task["params"], task["inputs"][0])


def _build_step(target, params, first_input):
    """Instantiate the step as ``Step.call``/``strun`` would, ``maximum_cores`` forced to 1."""
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
        step = _build_step(target, task["params"], inputs[0])
        for child in _all_steps(step):
            child.save_model = _stamping(child.save_model, record)
        step.output_dir = str(staging)
        if task["joined"]:
            staged = _run_joined(step, inputs)
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


def _run_joined(step, inputs):
    """Run the step once on the joined segments; save each segment's cut-out."""
    from stdatamodels.jwst import datamodels

    segments = [datamodels.open(p) for p in inputs]
    try:
        for model, path in zip(segments, inputs, strict=True):
            model.meta.filename = Path(path).name
        joined = join_segments(segments)
        log.info(
            "batch: %d segments joined into integrations %d-%d for %s",
            len(segments),
            joined.meta.exposure.integration_start,
            joined.meta.exposure.integration_end,
            step.class_alias or type(step).__name__,
        )
        step.save_results = False
        result = step.run(joined)
        step.output_use_model = True
        staged = {}
        for path, piece in zip(inputs, split_exposure(result, segments), strict=True):
            saved = step.save_model(piece, force=True)
            staged[path] = [saved] if isinstance(saved, str) else list(saved)
        return staged
    finally:
        for model in segments:
            model.close()


def _write_ledger(task, digest, final):
    ledger = _ledger_path(task)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    products = {f: [Path(p).name for p in ps] for f, ps in final.items()}
    temporary = ledger.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"run_hash": digest, "products": products}, indent=1))
    os.replace(temporary, ledger)
