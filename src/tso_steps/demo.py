"""``tso-steps demo``: simulate a TSO segment, run every step on it, report what happened.

The demo is the package's main job on an embedded default: it needs no data and no
network. It grows with every capability: each step that applies to the chosen mode is run in
pipeline order (group level, then integration level), and the summary compares what each step
found with the simulator's truth.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_DEMO", "run_demo"]

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
        seconds = time.perf_counter() - started
        self.lines.append(f"- **{name}** ({seconds:.1f} s): {text}")
        log.info("%s: %s", name, text)

    def save(self, model, suffix):
        path = self.out / f"{self.prefix}_{suffix}.fits"
        model.save(path)
        self.products.append(path)
        return path

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
    from tso_steps.simulate import simulate_tso
    from tso_steps.vectors import export_vectors

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
    report = _Report(f"tso-steps demo: {mode} {settings['subarray']}", out, prefix)

    started = time.perf_counter()
    sim = simulate_tso(mode, seed=seed, **settings)
    report.save(sim.ramp, "uncal")
    report.save(sim.rateints, "rateints")
    nints_, ngroups_, ny, nx = sim.ramp.data.shape
    report.stage(
        "simulate",
        started,
        f"{nints_} integrations x {ngroups_} groups of {ny} x {nx} pixels; "
        f"{_truth_summary(sim.truth)}",
    )

    _group_level(sim, report)
    model = _integration_level(sim, report, spectral=sim.truth.psf_center is None)

    path = out / f"{prefix}_tsovectors.ecsv"
    table = export_vectors(model, path)
    report.products.append(path)
    report.lines.append(
        f"- **tso_vectors**: {len(table)} rows, columns {', '.join(table.colnames[1:])}"
    )
    plot = _plot_positions(table, sim.truth, out / f"{prefix}_positions.png")
    if plot is not None:
        report.products.append(plot)
    summary = report.render()
    (out / "summary.md").write_text(summary)
    return summary


def _group_level(sim, report):
    """Detector-level steps on the ramp."""
    from tso_steps.jump.step import TSOJumpStep
    from tso_steps.simulate.scoring import group_difference_noise, score_jump_flags

    started = time.perf_counter()
    jumped = TSOJumpStep().run(sim.ramp)
    report.save(jumped, "jump")
    score = score_jump_flags(jumped.groupdq, sim.truth.cosmic_rays, group_difference_noise(sim))
    report.stage(
        "tso_jump",
        started,
        f"found {score['recall']:.1%} of the {score['n_hits']} injected jumps >= 6 sigma; "
        f"{score['fp_isolated']:.1e} flags per pixel-group away from any injected hit",
    )


def _integration_level(sim, report, spectral):
    """Rateints-level steps in pipeline order; returns the last model."""
    from tso_steps.one_over_f.step import OneOverFStep
    from tso_steps.outlier.step import TSOOutlierStep
    from tso_steps.simulate.scoring import cosmic_ray_rate_effect, score_outlier_flags
    from tso_steps.timing.step import PixelTimingStep

    truth, rateints = sim.truth, sim.rateints

    started = time.perf_counter()
    model = OneOverFStep().run(rateints)
    report.save(model, "oneoverf")
    before, after = _line_stripe_rms(rateints, model, truth)
    report.stage(
        "tso_one_over_f",
        started,
        f"line-to-line 1/f stripes (truth-subtracted, median along the fast axis) cut from "
        f"{before:.3f} to {after:.3f} DN/s rms",
    )

    model = _measure_positions(model, truth, report, spectral)

    started = time.perf_counter()
    model = TSOOutlierStep().run(model)
    report.save(model, "crfints")
    flags = (model.dq & 16) > 0  # OUTLIER
    effect = cosmic_ray_rate_effect(flags.shape, truth.cosmic_rays)
    score = score_outlier_flags(flags, effect, np.nanmedian(rateints.err, axis=0))
    report.stage(
        "tso_outlier",
        started,
        f"flagged {score['recall']:.1%} of the {score['n_hits']} cosmic-ray samples >= 6 "
        f"sigma left in the rateints, {score['fp_rate']:.1e} false flags per pixel-integration",
    )

    started = time.perf_counter()
    model = PixelTimingStep().run(model)
    report.save(model, "timing")
    offsets = model.pixel_read_offsets
    report.stage(
        "tso_pixel_timing",
        started,
        f"pixels read over {np.ptp(offsets):.4f} s of a {model.meta.exposure.frame_time:.5f} s "
        "frame (the time stamps of the first and last pixel read differ by this much)",
    )
    return model


def _measure_positions(model, truth, report, spectral):
    """Trace and realign spectra, or centroid images; compare with the injected jitter."""
    from tso_steps.vectors import get_vectors

    started = time.perf_counter()
    if not spectral:
        from tso_steps.centroid.step import CentroidStep

        model = CentroidStep().run(model)
        vectors = get_vectors(model)
        err_x = _rms_after_mean(vectors["centroid_x"] - truth.shift_x)
        err_y = _rms_after_mean(vectors["centroid_y"] - truth.shift_y)
        report.stage(
            "tso_centroid",
            started,
            f"centroids follow the injected jitter to {err_x:.4f} px (x) and {err_y:.4f} px (y) "
            f"rms; PSF width {np.nanmedian(vectors['psf_width_x']):.2f} px FWHM",
        )
        return model

    from tso_steps.jitter.step import JitterCorrectStep
    from tso_steps.trace.step import TraceStep

    model = TraceStep().run(model)
    report.save(model, "trace")
    vectors = get_vectors(model)
    error = _rms_after_mean(vectors["trace_position"] - truth.shift_cross_dispersion)
    report.stage(
        "tso_trace",
        started,
        f"trace position follows the injected cross-dispersion jitter to {error:.4f} px rms "
        f"(jitter rms {np.std(truth.shift_cross_dispersion):.4f} px); width "
        f"{np.nanmedian(vectors['trace_width']):.2f} px FWHM",
    )

    started = time.perf_counter()
    model = JitterCorrectStep().run(model)
    report.save(model, "jitter")
    vectors = get_vectors(model)
    measured = np.asarray(vectors["shift_dispersion"], dtype=float)
    if np.isfinite(measured).any():
        error = _rms_after_mean(measured - truth.shift_dispersion)
        text = f"dispersion shifts measured to {error:.4f} px rms against the injected jitter"
    else:
        text = "spectrum too featureless to measure dispersion shifts (left uncorrected)"
    report.stage("tso_jitter", started, text + "; integrations resampled onto the median grid")
    return model


#: Per-integration position and width columns plotted by the demo, with the truth to compare.
_POSITION_PANELS = (
    ("trace_position", "trace position (px)", "shift_cross_dispersion"),
    ("trace_width", "trace width, FWHM (px)", None),
    ("shift_dispersion", "shift along dispersion (px)", "shift_dispersion"),
    ("centroid_x", "centroid x (px)", "shift_x"),
    ("centroid_y", "centroid y (px)", "shift_y"),
    ("psf_width_x", "PSF width x, FWHM (px)", None),
    ("psf_width_y", "PSF width y, FWHM (px)", None),
)


def _plot_positions(table, truth, path):
    """Plot the measured positions and widths against time, with the injected jitter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [panel for panel in _POSITION_PANELS if panel[0] in table.colnames]
    if not panels:
        return None
    hours = (np.asarray(table["int_mid_BJD_TDB"]) - table["int_mid_BJD_TDB"][0]) * 24.0
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.0 * len(panels)), sharex=True)
    for ax, (column, label, truth_name) in zip(np.atleast_1d(axes), panels, strict=True):
        values = np.asarray(table[column], dtype=float)
        ax.plot(hours, values, ".", ms=3, label="measured")
        if truth_name is not None:
            injected = np.asarray(getattr(truth, truth_name), dtype=float)
            offset = np.nanmean(values) - np.nanmean(injected)
            ax.plot(hours, injected + offset, "-", lw=1, label="injected (mean-matched)")
            ax.legend(loc="upper right", fontsize=7)
        ax.set_ylabel(label, fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time since first integration (hours)")
    fig.suptitle("tso-steps demo: where the light fell in each integration", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rms_after_mean(values):
    values = np.asarray(values, dtype=float)
    return float(np.sqrt(np.nanmean((values - np.nanmean(values)) ** 2)))


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
