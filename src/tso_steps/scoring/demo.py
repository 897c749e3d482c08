"""Scores of ``tso-steps demo``: every step of a simulated chain against the injected truth.

Each function adds one line per step to the demo's report (worded by
:mod:`tso_steps.scoring.verdicts`) and writes the step's figure (:mod:`tso_steps.demo_plots`).
The definitions (injected depth, recovered depth, 1/f stripes) are those stated in
:mod:`tso_steps.demo`.
"""

from __future__ import annotations

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

from tso_steps.scoring.verdicts import (
    judge_correction,
    judge_depth,
    judge_recall,
    judge_scatter,
    judge_spectrum,
)

__all__ = ["injected_depth", "score_chain"]

JUMP_DET = dqflags.group["JUMP_DET"]


def score_chain(chain, report, imaging):
    """Score every step of a simulated chain and add the lines and figures to ``report``.

    Parameters
    ----------
    chain : `~tso_steps.pipelines.simulated.SimulatedChain`
    report : object
        The demo's report (``stage``, ``lines``, ``products``, ``out``, ``prefix``).
    imaging : bool
        Imaging (photometry) rather than spectroscopy.
    """
    _detector_level(chain, report)
    _positions(chain, report, imaging)
    _outliers(chain, report)
    if imaging:
        _photometry(chain, report)
    else:
        _spectra(chain, report)
    _timing(chain, report)


def _detector_level(chain, report):
    """Score tso_jump and tso_one_over_f on the saved ramps; plot the 1/f before and after."""
    from stdatamodels.jwst import datamodels

    from tso_steps.demo_plots import plot_one_over_f
    from tso_steps.readout import ReadoutGeometry
    from tso_steps.scoring import group_difference_noise, score_jump_flags

    sim = chain.sim
    if "ramp" in chain.intermediate:
        with datamodels.RampModel(chain.intermediate["ramp"]) as ramp:
            rays, unused = _hits_in_used_groups(ramp.groupdq, sim.truth.cosmic_rays)
            score = score_jump_flags(ramp.groupdq, rays, group_difference_noise(sim))
        found = int(round(score["recall"] * score["n_hits"])) if score["n_hits"] else 0
        report.stage(
            "tso_jump",
            None,
            f"injected jumps >= 6 sigma: {judge_recall(found, score['n_hits'])}; "
            f"{score['fp_isolated']:.1e} flags per pixel-group away from any injected hit"
            + (
                f"; {unused} hits in groups the ramp fit does not use (DO_NOT_USE, e.g. MIRI's "
                "last frame) not counted"
                if unused
                else ""
            ),
        )
    if "oneoverf" not in chain.intermediate or sim.truth.group_noise is None:
        return
    with datamodels.RampModel(chain.intermediate["oneoverf"]) as corrected:
        # group differences the ramp fit uses: not next to a group that is DO_NOT_USE in
        # every pixel (MIRI's firstframe / lastframe)
        dropped = np.all(corrected.groupdq & dqflags.group["DO_NOT_USE"] != 0, axis=(0, 2, 3))
        used = ~(dropped[1:] | dropped[:-1])
        after = np.diff(corrected.data, axis=1)[:, used]
        dark = corrected.one_over_f_mask if corrected.hasattr("one_over_f_mask") else None
    before = np.diff(sim.ramp.data, axis=1)[:, used]
    injected = np.diff(sim.truth.group_noise, axis=1)[:, used]
    left = after - (before - injected)
    fast = ReadoutGeometry.from_model(sim.ramp).fast_array_axis  # of a (y, x) image
    stripes_before = _stripe_rms(injected, fast)
    stripes_after = _stripe_rms(left, fast)
    floor = _stripe_floor(group_difference_noise(sim), dark, fast)
    _, text = judge_correction(
        "1/f stripes (rms of the per-line median along the fast axis of the correlated "
        "noise, all pixels, every group difference the ramp fit uses)",
        stripes_before,
        stripes_after,
        "DN",
        floor=floor,
        digits=3,
    )
    report.stage("tso_one_over_f", None, text)
    path = report.out / f"{report.prefix}_one_over_f.png"
    report.products.append(
        plot_one_over_f(
            before[0, 0],
            after[0, 0],
            injected[0, 0],
            left[0, 0],
            path,
            stripes=(_stripe_rms(injected[:1, :1], fast), _stripe_rms(left[:1, :1], fast)),
            fast_axis=fast,
        )
    )


def _used_groups(groupdq, rays):
    """True for injected hits whose group difference the ramp fit uses.

    A hit in a group flagged DO_NOT_USE (MIRI's ``lastframe``/``firstframe``), or right after
    one, never reaches the rateints; no jump or outlier step needs to find it.
    """
    i, g, y, x = (np.asarray(rays[k]) for k in ("integration", "group", "y", "x"))
    dnu = dqflags.group["DO_NOT_USE"]
    g0 = np.clip(g, 0, groupdq.shape[1] - 1)
    before = np.clip(g0 - 1, 0, None)
    bad = ((groupdq[i, g0, y, x] | groupdq[i, before, y, x]) & dnu) != 0
    return ~(bad & (g >= 1))


def _hits_in_used_groups(groupdq, rays):
    """The injected hits of :func:`_used_groups`, and how many were left out."""
    if not len(rays):
        return rays, 0
    used = _used_groups(groupdq, rays)
    return rays[used], int((~used).sum())


def _stripe_rms(noise, fast_axis):
    """Rms of the per-line median along the fast axis of ``(..., ny, nx)`` group differences."""
    axis = noise.ndim - 2 + fast_axis
    return float(np.sqrt(np.nanmean(np.nanmedian(noise, axis=axis) ** 2)))


def _stripe_floor(sigma, dark, fast_axis):
    """White-noise error of one line's level measured on its unilluminated pixels, DN.

    ``1.2533 sigma / sqrt(n)`` (the error of a median of ``n`` Gaussian samples) with the
    median group-difference noise ``sigma`` of the dark pixels and their median count per line.
    """
    if dark is None or not np.any(dark):
        return float("nan")
    dark = np.asarray(dark, bool)
    per_line = np.median(dark.sum(axis=fast_axis))
    if per_line < 1:
        return float("nan")
    return float(1.2533 * np.median(sigma[dark]) / np.sqrt(per_line))


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
        for axis in ("x", "y"):
            injected = np.asarray(getattr(truth, f"shift_{axis}"), dtype=float)
            _, text = judge_correction(
                f"centroid {axis} error against the injected jitter (rms after the mean)",
                _rms_after_mean(injected),
                _rms_after_mean(table[f"centroid_{axis}"] - injected),
                "px",
            )
            report.stage(f"tso_centroid ({axis})", None, text)
    if not imaging and "trace_position" in table.colnames:
        injected = np.asarray(truth.shift_cross_dispersion, dtype=float)
        _, text = judge_correction(
            "trace position error against the injected cross-dispersion jitter (rms after "
            "the mean; without the step it is the jitter itself)",
            _rms_after_mean(injected),
            _rms_after_mean(table["trace_position"] - injected),
            "px",
        )
        report.stage("tso_trace", None, text)
    if not imaging and "shift_dispersion" in table.colnames:
        measured = np.asarray(table["shift_dispersion"], dtype=float)
        injected = np.asarray(truth.shift_dispersion, dtype=float)
        if np.isfinite(measured).any():
            _, text = judge_correction(
                "dispersion-shift error against the injected jitter (rms after the mean)",
                _rms_after_mean(injected),
                _rms_after_mean(measured - injected),
                "px",
            )
            text += "; frames re-registered before photom"
        else:
            text = (
                "DID NOTHING along the dispersion: spectrum too featureless to measure the "
                "shifts (left uncorrected)"
            )
        report.stage("tso_jitter", None, text)
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
        noise = np.nanmedian(np.asarray(model.err, dtype=float), axis=0)
    counts = flags.sum(axis=0)
    truth = chain.sim.truth
    rays = truth.cosmic_rays
    left = _hits_left_by_jump(chain, rays)
    effect = np.zeros(flags.shape)
    index = tuple(np.asarray(rays[name])[left] for name in ("integration", "y", "x"))
    np.add.at(effect, index, np.asarray(rays["rate_effect"], dtype=float)[left])
    hits = effect >= 6.0 * noise[None]
    false = int((flags & (effect == 0)).sum())
    report.stage(
        "tso_outlier",
        None,
        f"{int(flags.sum())} samples flagged ({flags.mean():.1e} of all pixel-integrations); "
        f"of the {len(rays)} injected cosmic rays {int(left.sum())} reach the rateints (not "
        f"flagged by tso_jump, in groups the ramp fit uses); "
        + (
            "of those >= 6 sigma in the rateints "
            + judge_recall(int(flags[hits].sum()), int(hits.sum()))
            if hits.any()
            else "none of them is >= 6 sigma in the rateints, so there was nothing to find"
        )
        + f"; {false} flags ({false / flags.size:.1e} of all samples) where nothing was injected",
    )
    path = report.out / f"{report.prefix}_outliers.png"
    report.products.append(plot_outliers(counts, truth.cosmic_rays, path, int(flags.sum())))


def _hits_left_by_jump(chain, rays):
    """Which injected hits reach the rateints: not flagged by tso_jump, in a group ramp_fit uses."""
    from stdatamodels.jwst import datamodels

    left = np.ones(len(rays), bool)
    if "ramp" not in chain.intermediate or not len(rays):
        return left
    i, g, y, x = (np.asarray(rays[k]) for k in ("integration", "group", "y", "x"))
    with datamodels.RampModel(chain.intermediate["ramp"]) as ramp:
        groupdq = ramp.groupdq
        jumped = (groupdq[i, np.clip(g, 0, None), y, x] & JUMP_DET) != 0
        used = _used_groups(groupdq, rays)
    return ~(jumped & (g >= 1)) & used


def _photometry(chain, report):
    """White-light (aperture) transit depth of an imaging exposure."""
    from astropy.table import Table

    table = Table.read(chain.light_curve, format="ascii.ecsv")
    expected = np.nan
    for name in ("net_aperture_sum_err", "aperture_sum_err"):
        if name in table.colnames:
            flux = chain.light_curve_flux()
            expected = float(np.nanmedian(np.asarray(table[name], float) / np.abs(flux)))
            break
    _light_curve(
        chain, report, chain.light_curve_flux(), "tso_aperture", "aperture photometry", expected
    )


def _white_light_error(x1dints_path):
    """Median relative error of the white light the x1dints' FLUX_ERROR predicts."""
    from stdatamodels.jwst import datamodels

    with datamodels.open(x1dints_path) as x1d:
        table = x1d.spec[0].spec_table
        flux = np.asarray(table["FLUX"], dtype=float)
        error = np.asarray(table["FLUX_ERROR"], dtype=float)
    good = np.isfinite(flux) & np.isfinite(error)
    total = np.sum(np.where(good, flux, 0.0), axis=1)
    noise = np.sqrt(np.sum(np.where(good, error, 0.0) ** 2, axis=1))
    with np.errstate(all="ignore"):
        return float(np.nanmedian(noise / np.abs(total)))


def _light_curve(chain, report, flux, step, label, expected=np.nan):
    """Fit depth and baseline of a measured light curve (injected shape); report and plot it."""
    from tso_steps.demo_plots import plot_light_curve
    from tso_steps.scoring import fit_transit_scale

    truth = chain.sim.truth
    fit = fit_transit_scale(flux, truth.light_curve)
    depth = injected_depth(truth.light_curve)
    report.stage(
        step,
        None,
        f"{label}: injected depth {depth * 1e6:.0f} ppm (deepest point of the injected curve), "
        f"recovered {fit.scale * depth * 1e6:.0f} +- {fit.scale_error * depth * 1e6:.0f} ppm "
        f"(least-squares fit, depth and baseline free): {judge_depth(fit.pull)}; "
        f"{judge_scatter(fit.residual_rms, expected)}",
    )
    path = report.out / f"{report.prefix}_white_light.png"
    report.products.append(plot_light_curve(truth.times, flux, truth.light_curve, fit, path, label))
    return fit


def injected_depth(light_curve):
    """Injected depth: the deepest point of an injected relative light curve, ``1 - min``.

    The one definition of "injected depth" in the demo (white light and spectral channels).

    Parameters
    ----------
    light_curve : array-like
        Injected relative flux per integration.

    Returns
    -------
    float
    """
    return 1.0 - float(np.nanmin(np.asarray(light_curve, dtype=float)))


def _spectra(chain, report):
    """White-light curve and transmission spectrum from the x1dints."""
    from tso_steps.demo_plots import plot_transmission

    expected = _white_light_error(chain.x1dints)
    _light_curve(chain, report, chain.light_curve_flux(), "tso_extract", "white light", expected)

    spectrum = _transmission_spectrum(chain.x1dints, chain.sim.truth)
    if spectrum is None:
        return
    wavelength, injected, recovered, error = spectrum
    pulls = (recovered - injected) / error
    report.stage(
        "transmission spectrum",
        None,
        f"{len(wavelength)} channels (injected depth per channel defined as for the white "
        f"light); recovered minus injected: median {np.median(recovered - injected) * 1e6:+.0f} "
        f"ppm, worst {np.max(np.abs(pulls)):.1f} sigma; {judge_spectrum(np.mean(pulls**2))}",
    )
    path = report.out / f"{report.prefix}_transmission.png"
    report.products.append(plot_transmission(wavelength, injected, recovered, error, path))


def _transmission_spectrum(x1dints_path, truth, nchannels=16):
    """Per-channel transit depths of order 1 against the injected ones."""
    from stdatamodels.jwst import datamodels

    from tso_steps.scoring import fit_transit_scale

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
        depth = injected_depth(injected_curve)
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
