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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
