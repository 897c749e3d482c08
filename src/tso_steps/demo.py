"""``tso-steps demo``: simulate a TSO segment, run every step on it, report what happened.

The demo is the package's main job on an embedded default: it needs no data and no
network. It grows with every capability: each step that exists is run in pipeline order,
and the summary compares what the step found with the simulator's truth.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_DEMO", "run_demo"]

log = logging.getLogger("stpipe.tso_steps.demo")

#: Per-mode defaults of the demo: small enough to finish in about a minute.
DEFAULT_DEMO = {
    "NRC_TSGRISM": {"nints": 100, "ngroups": 5, "subarray": "SUBGRISM64"},
    "NRC_TSIMAGE": {"nints": 100, "ngroups": 5, "subarray": "SUB64P"},
    "NIS_SOSS": {"nints": 40, "ngroups": 4, "subarray": "SUBSTRIP96"},
    "NRS_BRIGHTOBJ": {"nints": 100, "ngroups": 8, "subarray": "SUB2048"},
    "MIR_LRS-SLITLESS": {"nints": 100, "ngroups": 10, "subarray": "SLITLESSPRISM"},
}


class _Report:
    """Collects one line per stage and the products written."""

    def __init__(self, title):
        self.lines = [f"# {title}", ""]
        self.products = []

    def stage(self, name, seconds, text):
        self.lines.append(f"- **{name}** ({seconds:.1f} s): {text}")
        log.info("%s: %s", name, text)

    def product(self, path):
        self.products.append(Path(path))

    def render(self):
        lines = list(self.lines)
        lines += ["", "Products:"] + [f"- {p}" for p in self.products]
        return "\n".join(lines) + "\n"


def run_demo(mode="NRC_TSGRISM", nints=None, ngroups=None, output_dir="tso_demo_output", seed=2026):
    """Simulate a TSO segment, run every tso-steps step on it and write a summary.

    Parameters
    ----------
    mode : str
        Exposure type to simulate (a key of :data:`DEFAULT_DEMO`).
    nints, ngroups : int, optional
        Override the mode's default size.
    output_dir : str or `~pathlib.Path`
        Folder for the products and ``summary.md``.
    seed : int
        Random seed of the simulation.

    Returns
    -------
    str
        The summary (Markdown), also written to ``output_dir/summary.md``.
    """
    from tso_steps.jump.step import TSOJumpStep
    from tso_steps.one_over_f.step import OneOverFStep
    from tso_steps.simulate import simulate_tso
    from tso_steps.simulate.scoring import group_difference_noise, score_jump_flags
    from tso_steps.timing.step import PixelTimingStep

    mode = mode.upper()
    if mode not in DEFAULT_DEMO:
        raise ValueError(f"Unknown demo mode {mode!r}; choose one of {', '.join(DEFAULT_DEMO)}.")
    settings = dict(DEFAULT_DEMO[mode])
    if nints is not None:
        settings["nints"] = nints
    if ngroups is not None:
        settings["ngroups"] = ngroups
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"demo_{mode.lower().replace('-', '_')}"
    report = _Report(f"tso-steps demo: {mode} {settings['subarray']}")

    start = time.perf_counter()
    sim = simulate_tso(mode, seed=seed, **settings)
    ramp, rateints, truth = sim.ramp, sim.rateints, sim.truth
    for suffix, model in (("uncal", ramp), ("rateints", rateints)):
        path = out / f"{prefix}_{suffix}.fits"
        model.save(path)
        report.product(path)
    nints_, ngroups_, ny, nx = ramp.data.shape
    report.stage(
        "simulate",
        time.perf_counter() - start,
        f"{nints_} integrations x {ngroups_} groups of {ny} x {nx} pixels; {_truth_summary(truth)}",
    )

    start = time.perf_counter()
    jumped = TSOJumpStep().run(ramp)
    path = out / f"{prefix}_jump.fits"
    jumped.save(path)
    report.product(path)
    score = score_jump_flags(jumped.groupdq, truth.cosmic_rays, group_difference_noise(sim))
    report.stage(
        "tso_jump",
        time.perf_counter() - start,
        f"found {score['recall']:.1%} of the {score['n_hits']} injected jumps >= 6 sigma; "
        f"{score['fp_isolated']:.1e} flags per pixel-group away from any injected hit",
    )

    start = time.perf_counter()
    cleaned = OneOverFStep().run(rateints)
    path = out / f"{prefix}_oneoverf.fits"
    cleaned.save(path)
    report.product(path)
    before, after = _line_stripe_rms(rateints, cleaned, truth)
    report.stage(
        "tso_one_over_f",
        time.perf_counter() - start,
        f"line-to-line 1/f stripes (truth-subtracted, median along the fast axis) cut from "
        f"{before:.3f} to {after:.3f} DN/s rms",
    )
    rateints = cleaned

    start = time.perf_counter()
    timed = PixelTimingStep().run(rateints)
    offsets = timed.pixel_read_offsets
    path = out / f"{prefix}_timing.fits"
    timed.save(path)
    report.product(path)
    report.stage(
        "tso_pixel_timing",
        time.perf_counter() - start,
        f"pixels read over {np.ptp(offsets):.4f} s of a {timed.meta.exposure.frame_time:.5f} s "
        "frame (the time stamps of the first and last pixel read differ by this much)",
    )

    summary = report.render()
    (out / "summary.md").write_text(summary)
    return summary


def _line_stripe_rms(raw, cleaned, truth):
    """RMS of the per-line 1/f level before and after correction, from the truth."""
    from tso_steps.readout import ReadoutGeometry

    axis = ReadoutGeometry.from_model(raw).fast_array_axis + 1  # +1: the integration axis
    injected = truth.one_over_f
    white = raw.data - injected  # the same data without the injected correlated noise
    residual = cleaned.data - white
    before = np.nanmedian(injected, axis=axis)
    after = np.nanmedian(residual, axis=axis)
    return float(np.nanstd(before)), float(np.nanstd(after))


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
