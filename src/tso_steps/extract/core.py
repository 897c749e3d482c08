"""Extraction of one spectral order from a cube: band, background, profile, flux."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.extract.background import column_levels, smooth_background
from tso_steps.extract.band import Band, make_band
from tso_steps.extract.breathing import random_walk_smooth, width_estimates
from tso_steps.extract.optimal import Extraction, box_extract, horne_extract, poisson_scale
from tso_steps.extract.profile import (
    Profile,
    build_profile,
    normalise_profile,
)
from tso_steps.extract.stripes import solve_stripes, stripe_prior
from tso_steps.parallel import Progress
from tso_steps.stats import evenly_spaced

__all__ = ["ExtractOptions", "OrderResult", "default_halfwidth", "extract_order"]

log = logging.getLogger("stpipe.tso_steps.extract")

#: Bytes of one band-sized float64 array of a chunk of integrations (the extraction holds
#: about fifteen at once): a few MB keeps the Horne loop's arrays near the CPU caches
#: (16 MB: about 10 % more CPU on a 107-integration SOSS segment; values the same to
#: rounding)
_CHUNK_BYTES = 4e6


@dataclass
class OrderResult:
    """Everything :func:`extract_order` produced for one order.

    Attributes
    ----------
    extraction : `~tso_steps.extract.optimal.Extraction`
    background : ndarray, shape ``(nints, n_disp)``
        Background per pixel subtracted before extraction (data units).
    band : `~tso_steps.extract.band.Band`
    profile : `~tso_steps.extract.profile.Profile` or None
        Over the columns from the first to the last traced one (``band.lit``).
    kappa : float
        Poisson variance per unit signal used in the model variance.
    widths : ndarray, shape ``(nints,)`` or None
        Relative change of the profile's width in every integration (``fit_width``).
    """

    extraction: Extraction
    background: np.ndarray
    band: Band
    profile: Profile | None
    kappa: float
    widths: np.ndarray | None = None


def default_halfwidth(fwhm):
    """Aperture half-width for a trace FWHM: ``max(3, ceil(1.5 * fwhm + 1))`` pixels.

    About 3.5 sigma of a Gaussian core plus a pixel for the trace's motion; for the wide
    NIRISS/SOSS profile (FWHM ~ 21 px) it reaches the trace step's own window.

    Parameters
    ----------
    fwhm : float
        Cross-dispersion FWHM, pixels.

    Returns
    -------
    float
    """
    return float(max(3.0, np.ceil(1.5 * fwhm + 1.0)))


@dataclass(frozen=True)
class ExtractOptions:
    """Settings of :func:`extract_order` (the ``tso_extract`` spec; see the step).

    Attributes
    ----------
    halfwidth : float
        Aperture half-width, pixels.
    method : {'optimal', 'box'}
    background_width : int
        Rows beyond the aperture on either side used for the background (0: no background).
    background_window : int
        Columns the background is averaged over.
    background_static : bool
        One background for all integrations (else one per integration).
    profile_window : int
        Columns the profile is fitted over; 0: chosen from the data
        (:func:`~tso_steps.extract.profile.choose_profile_window`).
    fit_width : bool
        Optimal only: measure the profile's width in every integration (PSF breathing,
        :mod:`~tso_steps.extract.breathing`) and extract with the profile of that width.
    clip_sigma : float
        Outlier rejection threshold (sigma) inside the optimal extraction (0: off).
    max_iterations : int
        Maximum rejection iterations.
    line_degree : int
        With the stripe maps of :func:`extract_order`: per output, the degree of the
        polynomial in the line index fitted as well.
    chunk : int
        Integrations extracted at a time with the stripe fit (which pools its prior over a
        chunk); without it, at most this many and about 4 MB per band-sized array.
    profile_ints : int
        At most this many evenly spaced integrations build the profile.
    """

    halfwidth: float
    method: str = "optimal"
    background_width: int = 4
    background_window: int = 31
    background_static: bool = True
    profile_window: int = 0
    fit_width: bool = True
    clip_sigma: float = 5.0
    max_iterations: int = 4
    line_degree: int = 2
    chunk: int = 64
    profile_ints: int = 200


def extract_order(
    cube,
    var_poisson,
    var_rnoise,
    bad,
    center,
    shifts,
    options,
    *,
    true_profile=None,
    labels=None,
    amplifiers=None,
    lines=None,
):
    """Extract one order from every integration.

    Parameters
    ----------
    cube, var_poisson, var_rnoise : ndarray, shape ``(nints, n_cross, n_disp)``
        Data and variances, dispersion along the last axis.
    bad : ndarray of bool, shape ``(nints, n_cross, n_disp)``
        Unusable samples.
    center : ndarray, shape ``(n_disp,)``
        Reference trace centre, pixels (NaN: order absent).
    shifts : ndarray, shape ``(nints,)``
        Cross-dispersion shift of every integration's trace, pixels.
    options : ExtractOptions
    true_profile : ndarray, shape ``(nints, n_cross, n_disp)``, optional
        A known profile (e.g. a simulation's noiseless source): used instead of the fitted
        one, for reference extractions.
    labels : ndarray of int, shape ``(n_cross, n_disp)``, optional
        Readout-stripe label of every pixel (:func:`~tso_steps.extract.stripes.stripe_labels`):
        with it, the optimal extraction fits the stripe offsets jointly with the flux.
    amplifiers : ndarray of int, shape ``(n_cross, n_disp)``, optional
        Output of every pixel (with ``labels``): one more offset per output is fitted.
    lines : ndarray, shape ``(n_cross, n_disp)``, optional
        Slow-axis line index of every pixel (with ``labels`` and ``amplifiers``): per output a
        polynomial of degree ``options.line_degree`` in the line index is fitted as well.

    Returns
    -------
    OrderResult
    """
    o = options
    halfwidth, clip = o.halfwidth, o.clip_sigma
    nints, n_cross = cube.shape[0], cube.shape[-2]
    band = make_band(center, int(np.ceil(halfwidth)) + 1 + int(o.background_width), n_cross)
    shifts = np.asarray(shifts, float)
    size = o.chunk
    if labels is None:
        # integrations are extracted independently: chunks of about _CHUNK_BYTES per
        # band-sized float64 array keep the temporaries small (the 1/f-aware fit pools its
        # stripe prior over a chunk, so it keeps ``options.chunk``)
        size = max(1, min(size, int(_CHUNK_BYTES // (8 * band.rows.size))))
    chunks = [np.arange(k, min(k + size, nints)) for k in range(0, nints, size)]

    def load(sel, sky=None):
        # the variances stay in their own precision (float32 in a file: exact, half the
        # memory); every sum they enter is done in float64
        data = _band_pixels(band, cube, sel, np.float64)
        vp = _band_pixels(band, var_poisson, sel, _exact_dtype(var_poisson))
        vr = _band_pixels(band, var_rnoise, sel, _exact_dtype(var_rnoise))
        good = ~_band_pixels(band, bad, sel, bool) & band.valid[None]
        good &= np.isfinite(data) & np.isfinite(vp) & np.isfinite(vr)
        if sky is not None:
            data -= sky[sel][:, None, :]
            data[~good] = 0.0
        return data, vp, vr, good

    bkg = np.zeros((nints, band.lit.size))
    if o.background_width > 0:
        levels, counts = [], []
        for sel in chunks:
            data, _, _, good = load(sel)
            level, count = column_levels(data, good, band.offset, shifts[sel], halfwidth)
            levels.append(level)
            counts.append(count)
        bkg = smooth_background(
            np.concatenate(levels), np.concatenate(counts), o.background_window, o.background_static
        )
    # from here on only the columns from the first to the last traced one: every later pass
    # is per column (an untraced column gets NaN and adds only zeros to the smoothed
    # profile equations), and a short order (SOSS order 2: 57 % of the columns) costs less.
    # ``load`` reads the cropped arrays and band.
    full_band, full_bkg, span = band, bkg, _traced_span(band.lit)
    cropped = span.stop - span.start < band.lit.size
    if cropped:
        cube, var_poisson, var_rnoise, bad, true_profile, labels, amplifiers, lines = (
            None if a is None else np.asarray(a)[..., span]
            for a in (cube, var_poisson, var_rnoise, bad, true_profile, labels, amplifiers, lines)
        )
        band = Band(*(getattr(band, f)[..., span] for f in ("rows", "offset", "valid", "lit")))
        bkg = bkg[:, span]
    # the profile (and the Poisson scale) from up to ``profile_ints`` evenly spaced usable
    # integrations: a lost one must not shift the even/odd split of the held-out choice
    usable = np.flatnonzero(_usable_integrations(band, cube, bad, chunks))
    if usable.size == 0:
        usable = np.arange(nints)
    sample = evenly_spaced(usable, o.profile_ints)
    data, vp, vr, good = load(sample, bkg)
    kappa = poisson_scale(data + bkg[sample][:, None, :], vp, good)  # all the charge
    variance = np.add(vp, vr, dtype=np.float64)
    del vp
    profile = widths = None
    if true_profile is None:
        profile = build_profile(
            data,
            variance,
            good,
            band.offset,
            shifts[sample],
            halfwidth,
            o.profile_window,
            clip,
            var_rnoise=vr,
            kappa=kappa,
            sky=bkg[sample],
        )
        if not o.profile_window:
            log.info(
                "Profile fitted over %d columns (chosen by held-out residuals)", profile.window
            )
    del data, variance, vr, good
    if profile is not None and o.fit_width and o.method == "optimal":
        profile.release()  # one profile's tables at a time: the sharp one's, then these
        widths = _profile_widths(load, chunks, profile, shifts, kappa, bkg, o)
        profile.sharp = None  # its tables served the widths only: not kept for the extraction
    out = {
        name: np.full((nints, band.lit.size), np.nan)
        for name in ("flux", "var_poisson", "var_rnoise", "npixels")
    }
    rejected = np.zeros((nints, band.lit.size), int)
    prior = []
    if profile is not None:
        profile.by_phase = True  # its tables serve every integration
    progress = Progress(log, "tso_extract", len(chunks), unit="chunks of integrations")
    for sel in chunks:
        data, vp, vr, good = load(sel, bkg)
        if true_profile is None:
            prof = profile.evaluate(shifts[sel], None if widths is None else widths[sel])
        else:
            inside = np.abs(band.offset[None] - shifts[sel][:, None, None]) <= halfwidth
            prof = band.gather(np.asarray(true_profile[sel], dtype=np.float64))
            prof = normalise_profile(np.where(inside & band.valid[None], prof, 0.0))
        if o.method == "box":
            res = box_extract(data, vp, vr, good, band.offset, shifts[sel], halfwidth, prof)
        else:
            res = horne_extract(
                data, prof, vr, kappa, good, clip=clip, iterations=o.max_iterations, sky=bkg[sel]
            )
            if labels is not None:
                families = _stripe_families(band, labels, amplifiers, lines, o.line_degree)
                sky_var = kappa * np.clip(bkg[sel], 0, None)[:, None, :]
                prior.append(
                    _fit_stripes(res, data, prof, vr + sky_var, kappa, families, good, clip)
                )
        for name in out:
            out[name][sel] = getattr(res, name)
        rejected[sel] = res.rejected
        progress.update()
    out["flux"][:, ~band.lit] = np.nan
    if cropped:  # back to every column: untraced ones as the per-column passes leave them
        ndisp = full_band.lit.size
        out = {
            name: _uncrop(v, span, ndisp, 0 if name == "npixels" else np.nan)
            for name, v in out.items()
        }
        rejected = _uncrop(rejected, span, ndisp, 0)
    result = Extraction(rejected=rejected, **out)
    if prior:
        result.stripe_prior = float(np.mean(prior))
    return OrderResult(
        extraction=result,
        background=full_bkg,
        band=full_band,
        profile=profile,
        kappa=kappa,
        widths=widths,
    )


def _traced_span(lit):
    """Slice from the first to the last traced column (all columns when none is traced)."""
    cols = np.flatnonzero(lit)
    return slice(int(cols[0]), int(cols[-1]) + 1) if cols.size else slice(0, lit.size)


def _uncrop(values, span, ndisp, fill):
    """Per-column ``values`` of the traced span at full width, ``fill`` beyond it.

    ``fill`` is what an untraced column gets: NaN flux and variances, no pixels, nothing
    rejected.
    """
    full = np.full(values.shape[:-1] + (ndisp,), fill, dtype=values.dtype)
    full[..., span] = values
    return full


def _profile_widths(load, chunks, profile, shifts, kappa, bkg, o):
    """Relative profile width of every integration, smoothed in time (PSF breathing)."""
    nints = shifts.size
    estimate, variance = np.full(nints, np.nan), np.full(nints, np.nan)
    sharp = profile.sharp or profile
    sharp.by_phase = True  # its tables serve every integration
    for sel in chunks:
        data, _, vr, good = load(sel, bkg)
        (prof, derivative), sky = sharp.evaluate_with_width(shifts[sel]), bkg[sel]
        res = horne_extract(
            data, prof, vr, kappa, good, clip=o.clip_sigma, iterations=o.max_iterations, sky=sky
        )
        flux = np.nan_to_num(res.flux)
        # variance vr + kappa * max(flux P + sky, 0), in one buffer
        var = np.nan_to_num(prof)
        np.multiply(flux[:, None, :], var, out=var)
        var += sky[:, None, :]
        np.clip(var, 0.0, None, out=var)
        var *= kappa
        var += vr
        # a smooth flux model: one integration's noisy column fluxes would bias the weights
        level = flux @ profile.spectrum / max(float(profile.spectrum @ profile.spectrum), 1e-300)
        smooth = level[:, None] * profile.spectrum[None, :]
        estimate[sel], variance[sel] = width_estimates(
            data, prof, derivative, var, res.used, smooth
        )
    widths, step = random_walk_smooth(estimate, variance)
    log.info(
        "Profile width: %.2g %% rms change over the integrations (random-walk step %.2g %%)",
        100 * np.std(widths),
        100 * np.sqrt(step),
    )
    return widths


def _usable_integrations(band, cube, bad, chunks):
    """Integrations with at least one usable, finite band pixel."""
    usable = np.zeros(sum(sel.size for sel in chunks), bool)
    for sel in chunks:
        good = ~_band_pixels(band, bad, sel, bool) & band.valid[None]
        good &= np.isfinite(_band_pixels(band, cube, sel, np.float32))
        usable[sel] = good.any(axis=(1, 2))
    return usable


def _exact_dtype(array):
    """float32 for float32 (or smaller) arrays, else float64: a copy that loses nothing."""
    return np.result_type(np.asarray(array).dtype, np.float32)


def _band_pixels(band, array, sel, dtype):
    """``band.gather(array[sel])`` as ``dtype``, reading only the band's pixels.

    Indexing the band directly (not whole frames first) keeps the pieces band-sized; one
    flat index into each integration's frame is a third of the work of a 3-d fancy index.
    """
    n_disp = band.rows.shape[1]
    flat = (band.rows * n_disp + np.arange(n_disp)).ravel()
    out = np.empty((len(sel),) + band.rows.shape, dtype=dtype)
    for k, i in enumerate(np.asarray(sel)):
        out[k] = np.take(array[i], flat).reshape(band.rows.shape)
    return out


def _stripe_families(band, labels, amplifiers, lines, degree):
    """Offset families on the band: stripes, then per output 1, l, l^2... in the line index."""
    families = [band.gather(labels)]
    if amplifiers is None:
        return families
    amps = band.gather(amplifiers)
    families.append((amps, None))
    if lines is not None and degree > 0:
        line = band.gather(np.asarray(lines, float))
        span = max(np.ptp(line[band.valid]) / 2.0, 1.0) if band.valid.any() else 1.0
        u = (line - np.mean(line[band.valid])) / span
        families += [(amps, u**j) for j in range(1, degree + 1)]
    return families


def _fit_stripes(result, data, prof, var_rnoise, kappa, families, good, clip):
    """Replace the flux of a Horne extraction by the joint flux + stripe-offset solution.

    Returns the stripe prior variance used.
    """
    prof = np.nan_to_num(prof)
    model = np.nan_to_num(result.flux)[:, None, :] * prof
    var = var_rnoise + kappa * np.clip(model, 0.0, None)
    outside = good & ~(prof > 0)
    if clip > 0:  # cosmic rays on the pixels that pin the offsets
        outside &= (data - model) ** 2 <= clip**2 * var
    weight = np.where(result.used | outside, 1.0 / var, 0.0)
    labels = families[0]
    groups = families[1][0] if len(families) > 1 else None
    prior = stripe_prior(data - model, weight, labels, outside, groups=groups)
    sets = [(labels, prior)]
    if groups is not None:
        # output-level terms get their own measured prior: without 1/f they stay near zero
        # instead of adding the noise of per-integration offsets to the flux
        level = stripe_prior(data - model, weight, groups, outside)
        sets += [(lab, level, val) for lab, val in families[1:]]
    total = result.var_poisson + result.var_rnoise
    for i in range(data.shape[0]):
        flux, variance = solve_stripes(data[i], prof[i], weight[i], sets)
        scale = variance / total[i]
        result.flux[i] = flux
        result.var_poisson[i] *= scale
        result.var_rnoise[i] *= scale
    return prior
