"""Diagnostic figures of ``tso-steps demo`` (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_light_curve",
    "plot_one_over_f",
    "plot_outliers",
    "plot_positions",
    "plot_transmission",
]

#: Per-integration position and width columns plotted, with the truth to compare.
_POSITION_PANELS = (
    ("trace_position", "trace position (px)", "shift_cross_dispersion"),
    ("trace_width", "trace width, FWHM (px)", None),
    ("shift_dispersion", "shift along dispersion (px)", "shift_dispersion"),
    ("centroid_x", "centroid x (px)", "shift_x"),
    ("centroid_y", "centroid y (px)", "shift_y"),
    ("psf_width_x", "PSF width x, FWHM (px)", None),
    ("psf_width_y", "PSF width y, FWHM (px)", None),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hours(times):
    times = np.asarray(times, dtype=float)
    return (times - times[0]) * 24.0


def plot_positions(table, truth, path):
    """Measured positions and widths against time, with the injected jitter.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Exported ``tso_vectors`` (with ``int_mid_BJD_TDB``).
    truth : `~tso_steps.simulate.SimulationTruth`
    path : `~pathlib.Path`

    Returns
    -------
    `~pathlib.Path` or None
        None when the table holds no position column.
    """
    panels = [panel for panel in _POSITION_PANELS if panel[0] in table.colnames]
    if not panels:
        return None
    plt = _pyplot()
    hours = _hours(table["int_mid_BJD_TDB"])
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
    fig.suptitle("Where the light fell in each integration", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_one_over_f(before, after, residual_before, residual_after, path):
    """One group difference before and after 1/f correction, and its correlated residual.

    Parameters
    ----------
    before, after : ndarray, shape (ny, nx)
        The group difference as read and as corrected, DN.
    residual_before, residual_after : ndarray, shape (ny, nx)
        The same minus the simulation without correlated noise: the 1/f left, DN.
    path : `~pathlib.Path`

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    panels = (
        (before, "group difference, as read"),
        (after, "after tso_one_over_f"),
        (residual_before, "injected correlated noise"),
        (residual_after, "correlated noise left"),
    )
    limit = 3.0 * np.nanstd(residual_before)
    scene = np.nanpercentile(before, [5, 99.5])
    tall = before.shape[0] > 2 * before.shape[1]
    fig, axes = plt.subplots(1 if tall else 4, 4 if tall else 1, figsize=(10, 8))
    for k, (ax, (image, title)) in enumerate(zip(np.ravel(axes), panels, strict=True)):
        vmin, vmax = (scene[0], scene[1]) if k < 2 else (-limit, limit)
        shown = ax.imshow(image, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="gray")
        rms = np.sqrt(np.nanmean(image**2)) if k >= 2 else None
        ax.set_title(title + (f" (rms {rms:.2f} DN)" if rms is not None else ""), fontsize=8)
        fig.colorbar(shown, ax=ax, fraction=0.03)
    fig.suptitle("1/f and amplifier offsets, first integration, first group difference")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_outliers(counts, cosmic_rays, path):
    """Integrations flagged per pixel, with the injected cosmic rays.

    Parameters
    ----------
    counts : ndarray, shape (ny, nx)
        Number of integrations flagged OUTLIER per pixel.
    cosmic_rays : `~astropy.table.Table`
        The simulation's hits (``x``, ``y``).
    path : `~pathlib.Path`

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    shown = ax.imshow(counts, origin="lower", aspect="auto", cmap="magma", interpolation="none")
    fig.colorbar(shown, ax=ax, label="integrations flagged")
    if len(cosmic_rays):
        ax.plot(cosmic_rays["x"], cosmic_rays["y"], "c+", ms=4, mew=0.6, alpha=0.6)
    ax.set_title(
        f"tso_outlier: {int(counts.sum())} flags; cyan + = injected cosmic rays "
        f"({len(cosmic_rays)}, most already caught by tso_jump at group level)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_light_curve(times, flux, injected, fit, path, label="white light"):
    """Normalised light curve with the injected and the fitted transit.

    Parameters
    ----------
    times : array-like
        Mid-times, days.
    flux : array-like
        Measured flux per integration.
    injected : array-like
        Injected relative flux.
    fit : `~tso_steps.simulate.scoring.TransitFit`
    path : `~pathlib.Path`
    label : str

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    hours = _hours(times)
    injected = np.asarray(injected, dtype=float)
    depth = 1.0 - np.nanmin(injected)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(hours, np.asarray(flux) / fit.baseline, ".", ms=4, label=f"{label}, measured")
    ax.plot(hours, injected, "-", lw=1.5, label=f"injected, depth {depth * 1e6:.0f} ppm")
    ax.plot(
        hours,
        1.0 - fit.scale * (1.0 - injected),
        "--",
        lw=1.2,
        label=f"fitted, depth {fit.scale * depth * 1e6:.0f} +- {fit.scale_error * depth * 1e6:.0f}"
        " ppm",
    )
    ax.set_xlabel("time since first integration (hours)")
    ax.set_ylabel("relative flux")
    ax.set_title(f"{label}: scatter {fit.residual_rms * 1e6:.0f} ppm per integration")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_transmission(wavelength, injected, recovered, error, path, unit="micron"):
    """Recovered transit depth per spectral channel over the injected one.

    Parameters
    ----------
    wavelength, injected, recovered, error : array-like
        Channel centres, injected and recovered depths (fractions) and 1-sigma errors.
    path : `~pathlib.Path`
    unit : str

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(wavelength, np.asarray(injected) * 1e6, "-", lw=1.5, label="injected")
    ax.errorbar(
        wavelength,
        np.asarray(recovered) * 1e6,
        yerr=np.asarray(error) * 1e6,
        fmt="o",
        ms=4,
        label="recovered (tso_extract)",
    )
    ax.set_xlabel(f"wavelength ({unit})")
    ax.set_ylabel("transit depth (ppm)")
    ax.set_title("Transmission spectrum")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
