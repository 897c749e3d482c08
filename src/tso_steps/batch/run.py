"""``run_batch``: a step, pipeline or ASDF config over many files, on dask workers.

A *task* is one input file, or, when an enabled step (alone, in a pipeline or as a hook)
has statistics that span every integration (:data:`~tso_steps.batch.segments.HALO_RULES`),
all segments of one exposure, run as one file by :mod:`~tso_steps.batch.joined`. Each task
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
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from tso_steps.batch.execute import BatchProgress, make_executor
from tso_steps.batch.plan import group_exposures, nested, parse_params, sweep_combinations
from tso_steps.batch.plan import sweep_folder as folder_name
from tso_steps.batch.task import build_step, run_task, spanning_steps

__all__ = ["StepTarget", "resolve_step", "run_batch"]

log = logging.getLogger("stpipe.tso_steps.batch")

#: Environment variables handed to every worker (offline CRDS set-up).
FORWARDED_ENVIRONMENT = ("STPIPE_DISABLE_CRDS_STEPPARS", "CRDS_PATH", "CRDS_SERVER_URL")
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
    memory_budget=None,
    join_segments=True,
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
    memory_budget : float, optional
        MB of working memory for each step that takes ``memory_budget`` (tso_jump,
        tso_outlier, tso_one_over_f, also inside pipelines): chunked, lazily read, same
        products. Not part of the provenance hash.
    join_segments : bool
        When the step (or a step of the pipeline) uses every integration of a file
        (tso_jump, tso_outlier, tso_one_over_f), run the segments of each exposure as one
        and cut the products back per segment, so they do not depend on where the
        exposure was split (default). False: each segment alone (less memory per task).

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
    settings = dict(force=force, memory_budget=memory_budget, join=join_segments)
    tasks = _plan_tasks(target, exposures, base, combinations, output_dir, settings)
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
            if isinstance(outcome, BaseException):
                outcome = [
                    dict(
                        file=path,
                        status="failed",
                        product="",
                        seconds=0.0,
                        error=f"{type(outcome).__name__}: {outcome}".splitlines()[0],
                        worker="",
                    )
                    for path in task["inputs"]
                ]
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


def _plan_tasks(target, exposures, base, combinations, output_dir, settings):
    """One task per file, or per exposure when a step needs the neighbouring segments.

    The step is built once per parameter set (a bad parameter is then one clear error, not
    a failed row per file), and :func:`~tso_steps.batch.task.spanning_steps` says whether
    any of its enabled steps uses every integration of a file.
    """
    environment = {k: os.environ[k] for k in FORWARDED_ENVIRONMENT if k in os.environ}
    tasks = []
    for combination in combinations:
        params = _merge(base, nested(combination))
        folder = folder_name(combination)
        directory = output_dir / folder if folder else output_dir
        spanning = []
        if exposures:
            first = exposures[0].segments[0].path
            step = build_step(target, params, first, settings["memory_budget"])
            spanning = spanning_steps(step)
        for exposure in exposures:
            for group in _groups(exposure, spanning, settings["join"], target):
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
                        "force": bool(settings["force"]),
                        "memory_budget": settings["memory_budget"],
                        "joined": len(group) > 1,
                        "environment": environment,
                    }
                )
    return tasks


def _groups(exposure, spanning, join, target):
    """The segments of one exposure as tasks: all in one, or one each (with the reason)."""
    alone = [[s] for s in exposure.segments]
    if len(exposure.segments) < 2 or not spanning:
        return alone
    names = ", ".join(Path(s.path).name for s in exposure.segments)
    what = f"{', '.join(spanning)} (in {target.alias or target.class_name})"
    if not join:
        log.warning(
            "batch: segments %s are processed one by one (join_segments=False): %s stops "
            "at each segment's edge",
            names,
            what,
        )
        return alone
    if not exposure.contiguous:
        log.warning(
            "batch: segments %s do not tile consecutive integrations (INTSTART/INTEND): each"
            " is processed alone, without its neighbours",
            names,
        )
        return alone
    log.info("batch: %s uses every integration: segments %s run as one exposure", what, names)
    return [exposure.segments]


def _merge(base, extra):
    merged = json.loads(json.dumps(base, default=str))
    for key, value in extra.items():
        if isinstance(value, dict):
            merged[key] = _merge(merged.get(key, {}), value)
        else:
            merged[key] = value
    return merged
