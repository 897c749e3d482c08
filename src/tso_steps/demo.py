"""``tso-steps demo``: simulate a TSO segment, run it through the tso pipelines, score it.

The demo is the package's main job on an embedded default: it needs no data and no
network.  The simulated ramp goes through ``tso_detector1``, ``tso_spec2`` / ``tso_image2``
and ``tso_tso3`` as a user's exposure would; the summary compares what each of our steps
found with the simulator's truth, and the figures show it: positions and widths against time,
the 1/f correction, the outlier map, the white-light curve and the transmission spectrum.

Each mode writes to its own folder ``<output_dir>/<mode>/`` (products, figures, the synthetic
``references/``, ``summary.md``, the full pipeline log ``demo.log`` and the offline
``strun`` configs of :func:`tso_steps.pipelines.simulated.write_offline_configs`), so modes never
overwrite each other.  Every step is judged against the truth with the words of
:mod:`tso_steps.scoring.verdicts` ("improved", "did nothing", "worse than uncorrected").

Definitions used in the summary and the figures:

- *injected depth*: the deepest point of the injected light curve, ``1 - min(flux)``
  (limb-darkened), for the white light and for every spectral channel alike (a channel's
  injected curve is the flux-weighted mean of its columns' curves);
- *recovered depth*: a linear least-squares fit of the measured light curve with the depth and
  the out-of-transit baseline free and the transit's shape (times, limb darkening) held at
  the injected one (:func:`~tso_steps.scoring.fit_transit_scale`), times the
  injected depth;
- *1/f stripes*: the rms over all lines, group differences and integrations of the median
  along the fast axis, over all pixels of each line, of the correlated noise (the injected
  one before the step; what the step left, ``corrected - (as read - injected)``, after).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tso_steps.scoring.demo import score_chain

__all__ = ["DEFAULT_DEMO", "disk_use", "mode_directory", "run_demo"]

log = logging.getLogger("stpipe.tso_steps.demo")

#: Per-mode defaults of the demo: small enough to finish in about a minute or two.
DEFAULT_DEMO = {
    "NRC_TSGRISM": {"nints": 100, "ngroups": 5, "subarray": "SUBGRISM64"},
    "NRC_TSIMAGE": {"nints": 100, "ngroups": 5, "subarray": "SUB64P"},
    "NIS_SOSS": {"nints": 40, "ngroups": 4, "subarray": "SUBSTRIP96"},
    "NRS_BRIGHTOBJ": {"nints": 100, "ngroups": 8, "subarray": "SUB2048"},
    "MIR_LRS-SLITLESS": {"nints": 100, "ngroups": 10, "subarray": "SLITLESSPRISM"},
}


class _Report:
    """Collects one line per stage and the products written."""

    def __init__(self, title, out, prefix):
        self.lines = [f"# {title}", ""]
        self.products = []
        self.out = out
        self.prefix = prefix

    def stage(self, name, started, text):
        if started is None:
            self.lines.append(f"- **{name}**: {text}")
        else:
            seconds = time.perf_counter() - started
            self.lines.append(f"- **{name}** ({seconds:.1f} s): {text}")
        log.debug("%s: %s", name, text)

    def save(self, model, suffix):
        path = self.out / f"{self.prefix}_{suffix}.fits"
        model.save(path)
        self.products.append(path)
        return path

    def render(self):
        lines = list(self.lines)
        lines += ["", "Products:"] + [f"- {p}" for p in self.products]
        return "\n".join(lines) + "\n"


def mode_directory(output_dir, mode):
    """The folder of one demo mode: ``output_dir/<MODE>``.

    Parameters
    ----------
    output_dir : str or `~pathlib.Path`
    mode : str

    Returns
    -------
    `~pathlib.Path`
    """
    return Path(output_dir) / mode.upper()


def disk_use(directory):
    """Bytes and number of files under a folder.

    Parameters
    ----------
    directory : str or `~pathlib.Path`

    Returns
    -------
    tuple of (int, int)
    """
    files = [p for p in Path(directory).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


@contextmanager
def _log_to_file(path):
    """Send every log record (stpipe, jwst, ours) to ``path`` while the demo runs."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def run_demo(mode="NRC_TSGRISM", nints=None, ngroups=None, output_dir="tso_demo_output", seed=2026):
    """Simulate a TSO segment, run it through the tso pipelines and write a scored summary.

    The simulated ramp goes through ``tso_detector1``, ``tso_spec2`` (or ``tso_image2``) and
    ``tso_tso3`` offline (:func:`~tso_steps.pipelines.simulated.run_simulated_chain`); each
    of our steps is then scored against the injected truth and the diagnostic figures are
    written next to the products.

    Parameters
    ----------
    mode : str
        Exposure type to simulate (a key of :data:`DEFAULT_DEMO`).
    nints, ngroups : int, optional
        Override the mode's default size.
    output_dir : str or `~pathlib.Path`
        Parent folder; this mode writes into ``output_dir/<MODE>/`` (products, figures,
        ``references/``, ``summary.md``, ``demo.log``).
    seed : int
        Random seed of the simulation.

    Returns
    -------
    str
        The summary (Markdown), also written to ``output_dir/<MODE>/summary.md``.
    """
    mode = mode.upper()
    if mode not in DEFAULT_DEMO:
        raise ValueError(f"Unknown demo mode {mode!r}; choose one of {', '.join(DEFAULT_DEMO)}.")
    settings = dict(DEFAULT_DEMO[mode])
    if nints is not None:
        settings["nints"] = nints
    if ngroups is not None:
        settings["ngroups"] = ngroups
    out = mode_directory(output_dir, mode)
    out.mkdir(parents=True, exist_ok=True)
    with _log_to_file(out / "demo.log"):
        summary = _run(mode, settings, out, seed)
    (out / "summary.md").write_text(summary)
    return summary


def _run(mode, settings, out, seed):
    """The demo of one mode, logging to the mode's ``demo.log``."""
    from tso_steps.pipelines.simulated import run_simulated_chain, write_offline_configs
    from tso_steps.simulate import simulate_tso

    prefix = f"demo_{mode.lower().replace('-', '_')}"
    report = _Report(f"tso-steps demo: {mode} {settings['subarray']}", out, prefix)

    started = time.perf_counter()
    log.info("[%s] simulating %s ...", mode, settings)
    sim = simulate_tso(mode, seed=seed, keep_group_noise=True, products=("ramp",), **settings)
    nints_, ngroups_, ny, nx = sim.ramp.data.shape
    report.stage(
        "simulate",
        started,
        f"{nints_} integrations x {ngroups_} groups of {ny} x {nx} pixels; "
        f"{_truth_summary(sim.truth)}",
    )

    started = time.perf_counter()
    log.info(
        "[%s] running tso_detector1, stage 2 and tso_tso3 (log in %s) ...", mode, out / "demo.log"
    )
    chain = run_simulated_chain(sim, out, name=prefix, save_intermediate=True)
    imaging = sim.truth.dispersion_axis is None
    stage2 = "tso_image2" if imaging else "tso_spec2"
    ran = ("tso_detector1", stage2, "tso_tso3")
    skipped = sorted({step for alias in ran for step in chain.skipped[alias]})
    report.stage(
        "pipelines",
        started,
        f"tso_detector1 -> {stage2} -> tso_tso3; jwst steps skipped offline (they need CRDS "
        f"references and the simulation injects nothing they correct): {', '.join(skipped)}",
    )
    report.products += [chain.uncal, chain.rateints, chain.calints, chain.light_curve]
    report.products += [chain.x1dints] if chain.x1dints is not None else []
    report.products += list(chain.intermediate.values())
    configs = write_offline_configs(out, imaging=imaging)
    report.products += list(configs.values())

    log.info("[%s] scoring every step against the injected truth ...", mode)
    score_chain(chain, report, imaging)
    size, count = disk_use(out)
    report.lines.append(
        f"- **disk use**: {size / 1e6:.0f} MB in {count} files under {out} (delete the folder "
        "when done; the uncal and the saved intermediate ramps are most of it)"
    )
    report.lines.append(f"- **log**: every pipeline log line is in {out / 'demo.log'}")
    report.lines.append(
        f"- **offline strun**: `CRDS_PATH={os.environ.get('CRDS_PATH', out / 'crds_cache')} strun "
        f"{configs['tso_detector1']} {chain.uncal}` re-runs tso_detector1 with the synthetic "
        "references in references/ (see docs/pipelines.rst, 'Offline strun')"
    )
    return report.render()


def _truth_summary(truth):
    """One line on what the simulation injected."""
    parts = []
    if truth.light_curve is not None:
        parts.append(f"transit depth {(1 - float(np.min(truth.light_curve))) * 1e6:.0f} ppm")
    if truth.shifts is not None:
        parts.append(f"jitter up to {float(np.max(np.abs(truth.shifts))):.2f} px")
    rays = getattr(truth, "cosmic_rays", None)
    if rays is not None:
        parts.append(f"{len(rays)} cosmic rays")
    return ", ".join(parts) if parts else "no effects injected"
