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
    parser = argparse.ArgumentParser(
        prog="tso-steps",
        description="Time-series steps for the JWST pipeline.",
    )
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
        help="where products go (default ./tso_demo_output)",
    )
    demo.add_argument("--seed", type=int, default=2026, help="random seed of the simulation")
    demo.add_argument("--quiet", action="store_true", help="only print the summary")
    args = parser.parse_args(argv)

    # the demo runs offline: no CRDS parameter look-ups, and (unless the user has a CRDS
    # cache) a throwaway cache holding only what jwst's pipelines read at the end of a run
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    if "CRDS_PATH" not in os.environ:
        from tso_steps.offline import offline_environment

        cache = Path(args.output_dir) / "crds_cache"
        os.environ.update(offline_environment(cache))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
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
