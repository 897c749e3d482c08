"""``tso-steps demo``: simulate a TSO segment, run it through the tso pipelines, score it.

The demo is the package's main job on an embedded default: it needs no data and no
network.  The simulated ramp goes through ``tso_detector1``, ``tso_spec2`` / ``tso_image2``
and ``tso_tso3`` as a user's exposure would; the summary compares what each of our steps
found with the simulator's truth, and the figures show it: positions and widths against time,
the 1/f correction, the outlier map, the white-light curve and the transmission spectrum.
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
        if started is None:
            self.lines.append(f"- **{name}**: {text}")
        else:
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
        Folder for the products, figures and ``summary.md``.
    seed : int
        Random seed of the simulation.

    Returns
    -------
    str
        The summary (Markdown), also written to ``output_dir/summary.md``.
    """
    from tso_steps.pipelines.simulated import run_simulated_chain
    from tso_steps.simulate import simulate_tso

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
    sim = simulate_tso(mode, seed=seed, keep_group_noise=True, products=("ramp",), **settings)
    nints_, ngroups_, ny, nx = sim.ramp.data.shape
    report.stage(
        "simulate",
        started,
        f"{nints_} integrations x {ngroups_} groups of {ny} x {nx} pixels; "
        f"{_truth_summary(sim.truth)}",
    )

    started = time.perf_counter()
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

    _detector_level(chain, report)
    _positions(chain, report, imaging)
    _outliers(chain, report)
    if imaging:
        _photometry(chain, report)
    else:
        _spectra(chain, report)
    _timing(chain, report)
    summary = report.render()
    (out / "summary.md").write_text(summary)
    return summary


def _detector_level(chain, report):
    """Score tso_jump and tso_one_over_f on the saved ramps; plot the 1/f before and after."""
    from stdatamodels.jwst import datamodels

    from tso_steps.demo_plots import plot_one_over_f
    from tso_steps.readout import ReadoutGeometry
    from tso_steps.simulate.scoring import group_difference_noise, score_jump_flags

    sim = chain.sim
    if "ramp" in chain.intermediate:
        with datamodels.RampModel(chain.intermediate["ramp"]) as ramp:
            score = score_jump_flags(
                ramp.groupdq, sim.truth.cosmic_rays, group_difference_noise(sim)
            )
        report.stage(
            "tso_jump",
            None,
            f"found {score['recall']:.1%} of the {score['n_hits']} injected jumps >= 6 sigma; "
            f"{score['fp_isolated']:.1e} flags per pixel-group away from any injected hit",
        )
    if "oneoverf" not in chain.intermediate or sim.truth.group_noise is None:
        return
    with datamodels.RampModel(chain.intermediate["oneoverf"]) as corrected:
        after = np.diff(corrected.data, axis=1)
    before = np.diff(sim.ramp.data, axis=1)
    injected = np.diff(sim.truth.group_noise, axis=1)
    left = after - (before - injected)
    axis = ReadoutGeometry.from_model(sim.ramp).fast_array_axis + 2  # (ints, diffs, y, x)
    stripes_before = float(np.nanstd(np.nanmedian(injected, axis=axis)))
    stripes_after = float(np.nanstd(np.nanmedian(left, axis=axis)))
    report.stage(
        "tso_one_over_f",
        None,
        f"line-to-line 1/f stripes of the group differences (median along the fast axis, "
        f"against the injected noise) cut from {stripes_before:.2f} to {stripes_after:.2f} DN rms",
    )
    path = report.out / f"{report.prefix}_one_over_f.png"
    report.products.append(
        plot_one_over_f(before[0, 0], after[0, 0], injected[0, 0], left[0, 0], path)
    )


def _positions(chain, report, imaging):
    """Compare the measured positions with the injected jitter; plot them against time."""
    from astropy.table import Table

    from tso_steps.demo_plots import plot_positions

    truth = chain.sim.truth
    if chain.vectors is None:
        return
    table = Table.read(chain.vectors, format="ascii.ecsv")
    report.products.append(chain.vectors)
    if imaging and "centroid_x" in table.colnames:
        err_x = _rms_after_mean(table["centroid_x"] - truth.shift_x)
        err_y = _rms_after_mean(table["centroid_y"] - truth.shift_y)
        report.stage(
            "tso_centroid",
            None,
            f"centroids follow the injected jitter to {err_x:.4f} px (x) and {err_y:.4f} px (y) "
            "rms",
        )
    if not imaging and "trace_position" in table.colnames:
        error = _rms_after_mean(table["trace_position"] - truth.shift_cross_dispersion)
        report.stage(
            "tso_trace",
            None,
            f"trace position follows the injected cross-dispersion jitter to {error:.4f} px rms "
            f"(jitter rms {np.std(truth.shift_cross_dispersion):.4f} px)",
        )
    if not imaging and "shift_dispersion" in table.colnames:
        measured = np.asarray(table["shift_dispersion"], dtype=float)
        if np.isfinite(measured).any():
            error = _rms_after_mean(measured - truth.shift_dispersion)
            text = f"dispersion shifts measured to {error:.4f} px rms against the injected jitter"
        else:
            text = "spectrum too featureless to measure dispersion shifts (left uncorrected)"
        report.stage("tso_jitter", None, text + "; frames re-registered before photom")
    report.lines.append(f"- **tso_vectors**: {len(table)} rows, {', '.join(table.colnames[1:])}")
    plot = plot_positions(table, truth, report.out / f"{report.prefix}_positions.png")
    if plot is not None:
        report.products.append(plot)


def _outliers(chain, report):
    """Score the time-series outlier flags against the cosmic rays left after tso_jump."""
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels import dqflags

    from tso_steps.demo_plots import plot_outliers

    if "crfints" not in chain.intermediate:
        return
    with datamodels.open(chain.intermediate["crfints"]) as model:
        flags = (model.dq & dqflags.pixel["OUTLIER"]) > 0
    counts = flags.sum(axis=0)
    truth = chain.sim.truth
    report.stage(
        "tso_outlier",
        None,
        f"{int(flags.sum())} samples flagged ({flags.mean():.1e} of all pixel-integrations); "
        f"{len(truth.cosmic_rays)} cosmic rays were injected, most already flagged by tso_jump",
    )
    path = report.out / f"{report.prefix}_outliers.png"
    report.products.append(plot_outliers(counts, truth.cosmic_rays, path))


def _photometry(chain, report):
    """White-light (aperture) transit depth of an imaging exposure."""
    _light_curve(chain, report, chain.light_curve_flux(), "tso_aperture", "aperture photometry")


def _light_curve(chain, report, flux, step, label):
    """Fit the injected transit to a measured light curve; report and plot it."""
    from tso_steps.demo_plots import plot_light_curve
    from tso_steps.simulate.scoring import fit_transit_scale

    truth = chain.sim.truth
    fit = fit_transit_scale(flux, truth.light_curve)
    depth = 1.0 - float(np.nanmin(truth.light_curve))
    report.stage(
        step,
        None,
        f"{label}: injected depth {depth * 1e6:.0f} ppm, recovered "
        f"{fit.scale * depth * 1e6:.0f} +- {fit.scale_error * depth * 1e6:.0f} ppm "
        f"({fit.pull:+.1f} sigma); scatter {fit.residual_rms * 1e6:.0f} ppm per integration",
    )
    path = report.out / f"{report.prefix}_white_light.png"
    report.products.append(plot_light_curve(truth.times, flux, truth.light_curve, fit, path, label))
    return fit


def _spectra(chain, report):
    """White-light curve and transmission spectrum from the x1dints."""
    from tso_steps.demo_plots import plot_transmission

    _light_curve(chain, report, chain.light_curve_flux(), "tso_extract", "white light")

    spectrum = _transmission_spectrum(chain.x1dints, chain.sim.truth)
    if spectrum is None:
        return
    wavelength, injected, recovered, error = spectrum
    pulls = (recovered - injected) / error
    report.stage(
        "transmission spectrum",
        None,
        f"{len(wavelength)} channels; recovered minus injected depth: median "
        f"{np.median(recovered - injected) * 1e6:+.0f} ppm, chi2/channel {np.mean(pulls**2):.2f}",
    )
    path = report.out / f"{report.prefix}_transmission.png"
    report.products.append(plot_transmission(wavelength, injected, recovered, error, path))


def _transmission_spectrum(x1dints_path, truth, nchannels=16):
    """Per-channel transit depths of order 1 against the injected ones."""
    from stdatamodels.jwst import datamodels

    from tso_steps.simulate.scoring import fit_transit_scale

    with datamodels.open(x1dints_path) as x1d:
        flux = np.concatenate([np.asarray(s.spec_table["FLUX"], float) for s in x1d.spec[:1]])
        pixel = np.asarray(x1d.spec[0].spec_table["WAVELENGTH"][0], dtype=float)
    curves = truth.spectral_light_curves()[:, 0]  # (nints, n_disp), order 1
    rate = truth.spectrum[0]
    extracted = np.isfinite(pixel) & np.isfinite(flux).all(axis=0)
    index = np.where(extracted, np.round(np.nan_to_num(pixel)), -1).astype(int)
    inside = extracted & (index >= 0) & (index < rate.size)
    if not inside.any() or not np.allclose(pixel[inside], index[inside]):
        return None  # WAVELENGTH holds wavelengths: no pixel-index match to the truth
    index = np.where(inside, index, 0)
    lit = inside & np.isfinite(rate[index]) & (rate[index] > 0.05 * np.nanmax(rate))
    columns = np.flatnonzero(lit)
    if columns.size < nchannels:
        return None
    rows = []
    for chunk in np.array_split(columns, nchannels):
        weights = rate[index[chunk]]
        injected_curve = curves[:, index[chunk]] @ weights / weights.sum()
        depth = float(truth.depth[0][index[chunk]] @ weights / weights.sum())
        fit = fit_transit_scale(flux[:, chunk].sum(axis=1), injected_curve)
        wave = float(np.nanmean(truth.wavelength[0][index[chunk]]))
        rows.append((wave, depth, fit.scale * depth, fit.scale_error * depth))
    return tuple(np.array(column) for column in zip(*rows, strict=True))


def _timing(chain, report):
    """Per-pixel read times of the calints."""
    from tso_steps.timing.step import PixelTimingStep

    model = PixelTimingStep().run(str(chain.calints))
    offsets = model.pixel_read_offsets
    report.stage(
        "tso_pixel_timing",
        None,
        f"pixels read over {np.ptp(offsets):.4f} s of a {model.meta.exposure.frame_time:.5f} s "
        "frame (the time stamps of the first and last pixel read differ by this much)",
    )


def _rms_after_mean(values):
    values = np.asarray(values, dtype=float)
    return float(np.sqrt(np.nanmean((values - np.nanmean(values)) ** 2)))


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
