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


def _image_axes(ax):
    ax.set_xlabel("column x (px)", fontsize=8)
    ax.set_ylabel("row y (px)", fontsize=8)


def _line_medians(image, fast_axis):
    return np.nanmedian(image, axis=fast_axis)


def plot_one_over_f(before, after, residual_before, residual_after, path, stripes, fast_axis=1):
    """One group difference before and after 1/f correction, and the correlated noise left.

    Top row: the group difference as read and as corrected, on one colour scale.  Middle row:
    the injected correlated noise and what the step left of it, on one symmetric colour
    scale.  Bottom: the per-line medians along the fast axis of the two (the stripes), whose
    rms is the summary's "1/f stripes" (here for this one group difference).

    Parameters
    ----------
    before, after : ndarray, shape (ny, nx)
        The group difference as read and as corrected, DN.
    residual_before, residual_after : ndarray, shape (ny, nx)
        The injected correlated noise, and the corrected difference minus the simulation
        without correlated noise (what is left), DN.
    path : `~pathlib.Path`
    stripes : tuple of float
        Stripe rms (DN) of ``residual_before`` and ``residual_after``, as in the summary.
    fast_axis : int
        Array axis (0 = y, 1 = x) along which the detector reads fast.

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    fig, axes = plt.subplots(3, 2, figsize=(11, 9))
    scene = np.nanpercentile(np.concatenate([before.ravel(), after.ravel()]), [5, 99.5])
    limit = 3.0 * np.nanstd(residual_before)
    rows = (
        ((before, "group difference as read"), (after, "after tso_one_over_f"), scene, "gray"),
        (
            (residual_before, f"injected correlated noise: stripes {stripes[0]:.2f} DN rms"),
            (residual_after, f"correlated noise left: stripes {stripes[1]:.2f} DN rms"),
            (-limit, limit),
            "RdBu_r",
        ),
    )
    for r, (left, right, (vmin, vmax), cmap) in enumerate(rows):
        for c, (image, title) in enumerate((left, right)):
            ax = axes[r, c]
            shown = ax.imshow(
                image,
                origin="lower",
                aspect="auto",
                vmin=vmin,
                vmax=vmax,
                cmap=cmap,
                interpolation="none",
            )
            pixels = np.sqrt(np.nanmean(image**2))
            ax.set_title(f"{title}\n(all pixels: rms {pixels:.2f} DN)", fontsize=8)
            _image_axes(ax)
            fig.colorbar(shown, ax=ax, fraction=0.04, label="DN per group difference")
    ax = fig.add_subplot(3, 1, 3)
    axes[2, 0].remove()
    axes[2, 1].remove()
    line_name = "row y" if fast_axis == 1 else "column x"
    for image, label in ((residual_before, "injected"), (residual_after, "left after the step")):
        ax.plot(_line_medians(image, fast_axis), lw=0.8, label=label)
    ax.set_xlabel(f"line ({line_name}, px)")
    ax.set_ylabel("median along the fast axis (DN)")
    ax.set_title(
        f"stripes: per-line median of the correlated noise over all pixels of the line "
        f"(rms {stripes[0]:.2f} -> {stripes[1]:.2f} DN)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    changed = "" if np.any(before != after) else " - the step changed nothing"
    fig.suptitle(f"1/f and amplifier offsets: first integration, first group difference{changed}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_outliers(counts, cosmic_rays, path, flagged=None):
    """Where tso_outlier flagged, and where cosmic rays were injected, neither hiding the other.

    Parameters
    ----------
    counts : ndarray, shape (ny, nx)
        Number of integrations flagged OUTLIER per pixel.
    cosmic_rays : `~astropy.table.Table`
        The simulation's hits (``x``, ``y``).
    path : `~pathlib.Path`
    flagged : int, optional
        Total flags (default ``counts.sum()``).

    Returns
    -------
    `~pathlib.Path`
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    shown = ax.imshow(
        counts,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="none",
        vmin=0,
        vmax=max(1, int(counts.max())),
    )
    fig.colorbar(shown, ax=ax, label="integrations flagged per pixel")
    ny, nx = counts.shape
    size = 14 if max(ny, nx) < 300 else 6
    if len(cosmic_rays):
        ax.scatter(
            cosmic_rays["x"],
            cosmic_rays["y"],
            s=size * 3,
            facecolors="none",
            edgecolors="tab:cyan",
            linewidths=0.6,
            label=f"injected cosmic rays ({len(cosmic_rays)}; most caught by tso_jump first)",
        )
    yy, xx = np.nonzero(counts)
    total = int(counts.sum()) if flagged is None else int(flagged)
    ax.scatter(
        xx,
        yy,
        s=size,
        marker="s",
        color="tab:red",
        linewidths=0,
        label=f"flagged by tso_outlier ({total} flags on {yy.size} pixels)",
    )
    _image_axes(ax)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_title("tso_outlier flags (red squares, on top) and injected hits (cyan circles)")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_light_curve(times, flux, injected, fit, path, label="white light"):
    """Normalised light curve with the injected transit and a least-squares fit of it.

    The fit (:func:`~tso_steps.scoring.fit_transit_scale`) has the depth and the
    baseline free and the shape held at the injected one; "depth" is the deepest point of a
    curve (``1 - min``), as in the demo's summary.

    Parameters
    ----------
    times : array-like
        Mid-times, days.
    flux : array-like
        Measured flux per integration.
    injected : array-like
        Injected relative flux.
    fit : `~tso_steps.scoring.TransitFit`
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
        label=f"least-squares fit (depth, baseline free), depth {fit.scale * depth * 1e6:.0f} "
        f"+- {fit.scale_error * depth * 1e6:.0f} ppm",
    )
    ax.set_xlabel("time since first integration (hours)")
    ax.set_ylabel("relative flux (flux / fitted baseline)")
    ax.set_title(
        f"{label}: scatter about the fit {fit.residual_rms * 1e6:.0f} ppm per integration",
        fontsize=10,
    )
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
    ax.set_ylabel("transit depth, deepest point of the curve (ppm)")
    ax.set_title("Transmission spectrum (least-squares depth per channel)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
