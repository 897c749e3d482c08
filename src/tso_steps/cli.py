"""The ``tso-steps`` command: ``tso-steps demo`` runs the package end to end on a simulation."""

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv=None):
    """Entry point of the ``tso-steps`` command.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    from tso_steps import __version__

    parser = argparse.ArgumentParser(
        prog="tso-steps",
        description="Time-series steps for the JWST pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"tso-steps {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="simulate a TSO segment, run every tso-steps step on it, write products and a summary",
    )
    demo.add_argument(
        "--mode",
        default="NRC_TSGRISM",
        help="exposure type to simulate (NRC_TSGRISM, NRC_TSIMAGE, NIS_SOSS, NRS_BRIGHTOBJ, "
        "MIR_LRS-SLITLESS); default NRC_TSGRISM",
    )
    demo.add_argument("--nints", type=int, default=None, help="integrations (default per mode)")
    demo.add_argument("--ngroups", type=int, default=None, help="groups per integration")
    demo.add_argument(
        "--output-dir",
        default="tso_demo_output",
        help="parent folder; each mode writes to <output-dir>/<MODE>/ (default ./tso_demo_output)",
    )
    demo.add_argument("--seed", type=int, default=2026, help="random seed of the simulation")
    noise = demo.add_mutually_exclusive_group()
    noise.add_argument(
        "--verbose",
        action="store_true",
        help="stream the full pipeline log to the console (it always goes to <MODE>/demo.log)",
    )
    noise.add_argument("--quiet", action="store_true", help="print the summary only")
    _add_batch_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "batch":
        return _batch_command(args)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover - argparse requires a command


def _demo(args):
    """``tso-steps demo``: progress lines and the summary on the console, the log in a file."""
    # the demo runs offline: no CRDS parameter look-ups, and (unless the user has a CRDS
    # cache) a throwaway cache holding only what jwst's pipelines read at the end of a run
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    if "CRDS_PATH" not in os.environ:
        from tso_steps.offline import offline_environment

        cache = Path(args.output_dir) / "crds_cache"
        os.environ.update(offline_environment(cache))
    console = logging.StreamHandler(sys.stderr)
    if args.verbose:
        console.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(console)
        logging.getLogger().setLevel(logging.INFO)
    elif not args.quiet:
        # the pipelines' ~1,600 log lines go to <MODE>/demo.log; here only the demo's progress
        console.setFormatter(logging.Formatter("%(message)s"))
        console.addFilter(lambda record: record.name == "stpipe.tso_steps.demo")
        logging.getLogger().addHandler(console)
    from tso_steps.demo import run_demo

    summary = run_demo(
        mode=args.mode,
        nints=args.nints,
        ngroups=args.ngroups,
        output_dir=args.output_dir,
        seed=args.seed,
    )
    print(summary)
    return 0


def _add_batch_parser(sub):
    """The ``tso-steps batch`` subcommand (see ``docs/batch.rst``)."""
    batch = sub.add_parser(
        "batch",
        help="run a step, pipeline or ASDF config over many files/segments on dask workers",
        description="Run STEP (alias, pipeline alias or CONFIG.asdf) over FILE... on a dask "
        "LocalCluster or a running scheduler; resumable, one summary row per file.",
    )
    batch.add_argument("step", metavar="STEP|PIPELINE|CONFIG.asdf")
    batch.add_argument("files", nargs="+", metavar="FILE")
    batch.add_argument("--output-dir", required=True, help="where the products go")
    where = batch.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, help="LocalCluster workers (default: cores)"
    )
    where.add_argument(
        "--scheduler", default=None, help="address or scheduler file of a running dask scheduler"
    )
    batch.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="step parameter (repeatable; steps.NAME.KEY=VALUE for a pipeline's step)",
    )
    batch.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="sweep a parameter: one output subfolder per combination (repeatable)",
    )
    batch.add_argument(
        "--force",
        action="store_true",
        help="redo products that exist with the same provenance hash",
    )
    batch.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="MB",
        help="working memory per task for tso_jump, tso_outlier and tso_one_over_f (also "
        "inside pipelines): chunks of detector lines, lazy reads, identical products",
    )
    batch.add_argument(
        "--separate-segments",
        action="store_true",
        help="process each segment alone even when a step uses every integration (less "
        "memory per task; tso_jump/tso_outlier/tso_one_over_f then stop at segment edges)",
    )
    batch.add_argument("--quiet", action="store_true", help="only print the summary")


def _batch_command(args):
    """Run ``tso-steps batch``; exit status 1 if any file failed, 2 on a usage error."""
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # dask's own INFO lines (workers starting and stopping) would drown the step logs
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from stpipe.exceptions import ValidationError

    from tso_steps.batch import PlanError, run_batch

    try:
        summary = run_batch(
            args.step,
            args.files,
            args.output_dir,
            workers=args.workers,
            scheduler=args.scheduler,
            params=args.param,
            sweep=args.sweep,
            force=args.force,
            memory_budget=args.memory_budget,
            join_segments=not args.separate_segments,
        )
    except (PlanError, ValidationError, ValueError, RuntimeError) as error:
        print(f"tso-steps batch: {error}", file=sys.stderr)
        return 2
    summary["file"] = [Path(f).name for f in summary["file"]]
    summary.pprint_all()
    failed = int((summary["status"] == "failed").sum())
    print(f"{len(summary) - failed} of {len(summary)} file(s) done or up to date, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
