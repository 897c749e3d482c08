"""Spatial profile of a spectral trace fitted from the exposure, finer than the pixels.

Every band pixel (see :mod:`tso_steps.extract.band`) of every integration ``i``, divided by a
smooth model of the column's flux (the mean spectrum times the integration's white-light
level), is one sample of the pixel-integrated profile ``P(u)`` at the offset
``u = row - centre_x - s_i`` of its centre from that integration's trace.  A curved or tilted
trace, jitter and tilt events put the pixels of neighbouring columns and integrations at many
sub-pixel phases, so ``P`` is fitted as a continuous function, a cubic B-spline profile seen
through the pixel boxes (:mod:`tso_steps.extract.pixel_spline`), by weighted least squares.
Nothing is interpolated between pixels: an undersampled trace (a 1.3 px FWHM core) is
described by the phases it was seen at, where resampling a median frame is not
(Horne 1986 builds the profile from the data; Marsh 1989 fits it along a curved trace).

The profile may change along the dispersion: each column's least-squares equations are
summed over ``window`` neighbouring columns (triangular weights), a window chosen by how well
the profile predicts held-out integrations.  The same coefficients give the profile's
derivative under a change of width (PSF breathing, :mod:`tso_steps.extract.breathing`).
Evaluated profiles are clipped to non-negative values, cut to the aperture and normalised
per column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tso_steps.extract.breathing import width_estimates
from tso_steps.extract.pixel_spline import NormalEquations, PixelSpline
from tso_steps.extract.profile_table import Profile, normalise_profile
from tso_steps.stats import evenly_spaced, nanmedian_last

__all__ = ["Profile", "build_profile", "choose_profile_window", "normalise_profile"]

#: Spacing of the tables the profile is evaluated from, pixels (linear interpolation: the
#: error is below 1e-4 of the peak for a 1.3 px FWHM core)
_TABLE_STEP = 1.0 / 64
#: Shift bins (pixels) in which integrations are pooled for the fit: far below the knot
#: spacing, so pooling changes the fitted profile by < 1e-4 of its peak
_SHIFT_STEP = 1.0 / 32
#: Samples (integrations or shift bins x band rows x columns) per block of columns of the
#: normal equations
_BLOCK_SAMPLES = 2**19
#: Curvature penalties tried (relative to the data's weight, :meth:`NormalEquations.solve`):
#: from one that only fills what no sample constrains to one that smooths a faint profile
PENALTY_CANDIDATES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Band samples (integrations x rows x columns) of the held-out integrations that score the
#: candidate windows and penalties, at most (but at least ``_HELD_OUT_MIN`` integrations):
#: every candidate is evaluated on each sample, while the training half (pooled in shift
#: bins) stays cheap.  A choice per exposure: 14 integrations of a SOSS SUBSTRIP256 band
_HELD_OUT_SAMPLES = 2**21
_HELD_OUT_MIN = 8


@dataclass
class _Fit:
    """What the profile fit needs of a set of integrations (all arrays ``(n, nrow, n_disp)``)."""

    data: np.ndarray
    good: np.ndarray
    shifts: np.ndarray
    offset: np.ndarray
    spline: PixelSpline
    reach: float  # samples whose centre lies within this of the trace are fitted

    def equations(self, flux, variance):
        """Normal equations of ``data / flux ~ P(u)``, integrations pooled in shift bins."""
        n, nrow, ndisp = self.data.shape
        pool, centres = _shift_pool(self.shifts)
        # blocks of columns keep the temporaries small; a column's equations come from its
        # own samples only, so the sums are those of one pass
        size = max(16, _BLOCK_SAMPLES // max(n * nrow, 1))
        parts = []
        for c0 in range(0, ndisp, size):
            cut = slice(c0, min(c0 + size, ndisp))
            offset = self.offset[:, cut]
            f, v = flux[..., cut], variance[..., cut]
            u = offset[None] - self.shifts[:, None, None]
            use = self.good[..., cut] & (np.abs(u) <= self.reach) & (f > 0) & (v > 0)
            del u
            with np.errstate(all="ignore"):
                weight = np.where(use, f**2 / v, 0.0).reshape(n, -1)
                weighted = np.where(use, f * self.data[..., cut] / v, 0.0).reshape(n, -1)
            del use
            weight, weighted = pool @ weight, pool @ weighted
            width = offset.shape[1]
            u = (offset[None] - centres[:, None, None]).reshape(centres.size, -1)
            cols = np.broadcast_to(np.arange(width), (centres.size, nrow, width))
            keep = weight > 0
            parts.append(
                NormalEquations.accumulate(
                    self.spline,
                    u[keep],
                    cols.reshape(centres.size, -1)[keep],
                    weight[keep],
                    weighted[keep] / weight[keep],
                    width,
                )
            )
        return NormalEquations.concatenate(parts)


def _shift_pool(shifts):
    """Linear-interpolation weights pooling integrations into shift bins, and bin centres."""
    shifts = np.asarray(shifts, float)
    nbins = int(np.ceil(np.ptp(shifts) / _SHIFT_STEP)) + 2
    if nbins >= shifts.size:
        return np.eye(shifts.size), shifts
    centres = shifts.min() + _SHIFT_STEP * np.arange(nbins)
    pos = (shifts - centres[0]) / _SHIFT_STEP
    low = np.clip(np.floor(pos).astype(int), 0, nbins - 2)
    t = pos - low
    pool = np.zeros((nbins, shifts.size))
    pool[low, np.arange(shifts.size)] = 1 - t
    pool[low + 1, np.arange(shifts.size)] += t
    return pool, centres


def _triangle_sum(values, half, cumulative=False):
    """Running sum with weights ``1 - |j| / (half + 1)``, ``|j| <= half``, along the last axis.

    Samples beyond the ends count as zero.  A triangle is a box of ``half + 1`` samples
    convolved with itself, so two cumulative-sum box filters give it in O(n) whatever the
    window.  ``cumulative``: ``values`` are already ``np.cumsum(values, axis=-1)`` (which does
    not depend on the window, so windows tried in turn share it).  The zero padding of the
    ends is implicit (adding zeros is exact): the result is the same, bit for bit, as
    filtering padded copies.
    """
    size = half + 1
    n = values.shape[-1]
    c = values if cumulative else np.cumsum(values, axis=-1)
    # first box: c[k] - c[k - size], with c = 0 before the start and c[n - 1] past the end
    box = np.empty(values.shape[:-1] + (n + size,))
    box[..., :n] = c
    box[..., n:] = c[..., -1:]
    box[..., size:] -= c
    # second box, centred: the same differences of the cumulative sum of the first
    np.cumsum(box, axis=-1, out=box)
    out = box[..., size - 1 : size - 1 + n].copy()
    out[..., 1:] -= box[..., : n - 1]
    out /= size
    return out


class _Smoother:
    """Equations summed over any window > 1, sharing one cumulative sum between windows.

    Parameters
    ----------
    equations : NormalEquations
    keep : bool
        Keep the equations themselves too (for ``window=1``); else only their cumulative
        sums are held.
    """

    def __init__(self, equations, keep=False):
        self.equations = equations if keep else None
        self._cumulative = NormalEquations(
            np.cumsum(equations.band, axis=-1), np.cumsum(equations.rhs, axis=-1)
        )

    def __call__(self, window):
        """:func:`_smooth` of the equations."""
        if window <= 1:
            return self.equations
        half = int(window) // 2
        return NormalEquations(
            _triangle_sum(self._cumulative.band, half, cumulative=True),
            _triangle_sum(self._cumulative.rhs, half, cumulative=True),
        )


def _smooth(equations, window):
    """Equations summed over ``window`` columns (triangular weights)."""
    if window > 1:
        return equations.smoothed(lambda a: _triangle_sum(a, int(window) // 2))
    return equations


def _solve(equations, spline, offset, halfwidth, window, penalty, smoothed=None):
    """The :class:`Profile` of equations summed over ``window`` columns.

    ``smoothed``: ``_smooth(equations, window)`` when already at hand.  The profile's tables
    are made from the coefficients when first used.
    """
    equations = _smooth(equations, window) if smoothed is None else smoothed
    coeffs = equations.solve(penalty)

    def tabulate(kind):
        return spline.table(coeffs, _TABLE_STEP, kind=kind)[1]

    grid = spline.grid(_TABLE_STEP)
    return Profile(
        grid, None, None, offset, float(halfwidth), int(window), float(penalty), tabulate=tabulate
    )


def _column_flux(data, profile, variance, good):
    """Weighted least-squares flux of every column with a normalised profile.

    ``sum(w P D) / sum(w P^2)`` with ``w = 1 / V`` on good pixels of positive profile and
    variance (else 0), in blocks of columns (the same sums, in cache-sized temporaries).
    """
    flux = np.empty((data.shape[0], data.shape[2]))
    for cut in _column_blocks(data.shape):
        p = np.nan_to_num(profile[..., cut])
        v = variance[..., cut]
        ok = good[..., cut] & (p > 0) & (v > 0)
        wp = np.divide(1.0, v, out=np.zeros(ok.shape), where=ok)
        wp *= p
        with np.errstate(all="ignore"):
            num = np.sum(wp * data[..., cut], axis=1)
            wp *= p
            flux[:, cut] = np.nan_to_num(num / np.sum(wp, axis=1))
    return flux


def _smooth_flux(flux, lit):
    """Median spectrum times each integration's white-light level (bright columns), and it."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spectrum = np.nan_to_num(np.nanmedian(np.where(flux != 0, flux, np.nan), axis=0))
        spectrum = np.where(lit, spectrum, 0.0)
        bright = spectrum > 0.2 * np.max(spectrum, initial=0.0)
        level = flux[:, bright].sum(axis=1) / max(spectrum[bright].sum(), 1e-300)
    return spectrum[None, :] * np.where(np.isfinite(level), level, 0.0)[:, None], spectrum


def _column_blocks(shape):
    """Slices of dispersion columns holding about ``_BLOCK_SAMPLES`` samples each."""
    n, nrow, ndisp = shape
    size = max(16, _BLOCK_SAMPLES // max(n * nrow, 1))  # columns are independent
    return [slice(c0, min(c0 + size, ndisp)) for c0 in range(0, ndisp, size)]


def _median_frame(data, good):
    """Median over integrations of every band pixel (0 where none is usable)."""
    median = np.empty(data.shape[1:])
    for cut in _column_blocks(data.shape):
        # integrations last, one partition per pixel (nanmedian_last: np.nanmedian's values;
        # good samples are finite)
        block = np.where(good[..., cut], data[..., cut], np.nan)
        block = np.ascontiguousarray(np.moveaxis(block, 0, -1))
        median[:, cut] = np.nan_to_num(nanmedian_last(block, overwrite=True))
    return median


def _possible(data, variance, good, median, clip):
    """``good`` without samples no motion of the trace can explain.

    A shift or a change of width moves charge within a column, so no sample can exceed
    the median frame by more than the column's brightest pixel (plus ``clip`` sigma of
    noise).  Samples beyond that (a +-1e30 readout fault, a saturated cosmic ray) would set
    the first profile fit, and through it the choice of window and penalty, before the
    residual clipping could reject them.
    """
    peak = np.max(np.abs(median), axis=0)
    possible = np.array(good, dtype=bool)
    for cut in _column_blocks(data.shape):
        with np.errstate(all="ignore"):
            bound = 2.0 * peak[cut] + clip * np.sqrt(np.abs(variance[..., cut]))
            possible[..., cut] &= np.abs(data[..., cut] - median[:, cut]) <= bound
    return possible


def _first_flux(data, variance, good, offset, shifts, reach, clip, median=None):
    """Column fluxes before any profile: robust column sums near the trace."""
    median = _median_frame(data, good) if median is None else median
    flux = np.empty((data.shape[0], data.shape[2]))
    for cut in _column_blocks(data.shape):
        d, g, m = data[..., cut], good[..., cut], median[:, cut]
        near = np.abs(offset[None, :, cut] - shifts[:, None, None]) <= reach
        with np.errstate(all="ignore"):
            # samples far from the median frame (a cosmic ray, a +-1e30 readout fault) must
            # not rescale their whole integration
            typical = g & (np.abs(d - m) <= clip * np.sqrt(np.abs(variance[..., cut])))
            flux[:, cut] = np.sum(np.where(near, np.where(typical, d, m), 0.0), axis=1)
    return flux


def build_profile(
    data,
    variance,
    good,
    offset,
    shifts,
    halfwidth,
    window=0,
    clip=5.0,
    *,
    var_rnoise=None,
    kappa=0.0,
    sky=None,
    iterations=3,
):
    """Fit the profile of one order from a set of integrations.

    Parameters
    ----------
    data : ndarray, shape ``(nints, nrow, n_disp)``
        Background-subtracted band pixels (any flux unit).
    variance : ndarray, shape ``(nints, nrow, n_disp)``
        Their variance (used until a model variance exists).
    good : ndarray of bool, shape ``(nints, nrow, n_disp)``
        Usable samples.
    offset : ndarray, shape ``(nrow, n_disp)``
        Band pixel minus the reference trace centre, pixels (NaN: column not traced).
    shifts : ndarray, shape ``(nints,)``
        Trace shift of every integration, pixels.
    halfwidth : float
        Aperture half-width, pixels.
    window : int
        Dispersion columns the profile is fitted over (1: every column alone); 0: chosen by
        :func:`choose_profile_window`.  The curvature penalty is chosen the same way.
    clip : float
        Samples beyond this many sigma from the model are left out of the fit.
    var_rnoise : ndarray, shape ``(nints, nrow, n_disp)``, optional
        Read-noise variance: with it the weights become the model variance
        ``var_rnoise + kappa * max(flux * P + sky, 0)``.
    kappa : float
        Poisson variance per unit signal.
    sky : ndarray, shape ``(nints, n_disp)``, optional
        Background subtracted from ``data``.
    iterations : int
        Rounds of (profile, fluxes, model variance, clipping).

    Returns
    -------
    Profile
    """
    shifts = np.asarray(shifts, float)
    lit = np.isfinite(offset[0])
    offset = np.where(np.isfinite(offset), offset, np.nan)
    reach = float(halfwidth) + 1.0
    spline = PixelSpline(-reach, reach)
    good = good & np.isfinite(data) & lit[None, None, :]
    if np.any(np.asarray(data)[~good] != 0) or np.asarray(data).dtype != np.float64:
        data = np.where(good, data, 0.0)  # else (zero already where not good) no copy
    sky = np.zeros((data.shape[0], data.shape[2])) if sky is None else np.asarray(sky)
    median = _median_frame(data, good)
    if clip > 0:
        good = _possible(data, variance, good, median, clip)
    fit = _Fit(data, good, shifts, offset, spline, reach)
    first = _first_flux(data, variance, good, offset, shifts, reach, clip, median)
    flux, _ = _smooth_flux(first, lit)
    var = np.asarray(variance, float)
    profile = at = None
    for it in range(max(int(iterations), 1)):
        full = np.broadcast_to(flux[:, None, :], data.shape)
        if it == 0:
            window, penalty = _choose(fit, full, var, halfwidth, clip, window)
        profile = None  # the last round's tables go before the new ones come
        smoothed = _smooth(fit.equations(full, var), window)
        profile = _solve(None, spline, offset, halfwidth, window, penalty, smoothed)
        profile.by_phase = True  # its tables serve every integration of the fit
        at = profile.positions(shifts) if at is None else at
        prof = np.nan_to_num(profile.evaluate(shifts, at=at), copy=False)
        profile.release()  # made again if used: not held through the rest of the round
        column = _column_flux(data, prof, var, good)
        flux, profile.spectrum = _smooth_flux(column, lit)
        if var_rnoise is not None:
            # var_rnoise + kappa * max(flux * P + sky, 0), in one buffer
            var = np.multiply(flux[:, None, :], prof)
            var += sky[:, None, :]
            np.clip(var, 0.0, None, out=var)
            var *= kappa
            var += var_rnoise
        if clip > 0:  # cosmic rays and bad pixels the DQ missed
            resid = np.multiply(column[:, None, :], prof)
            np.subtract(data, resid, out=resid)
            resid **= 2
            fit.good = good & ~(resid > clip**2 * var)
            del resid
        del prof
    del at
    if penalty > PENALTY_CANDIDATES[0]:
        # a smoothed faint profile is biased by an amount that depends on the sub-pixel
        # phase; widths are measured against the least-biased fit
        profile.sharp = _solve(
            None, spline, offset, halfwidth, window, PENALTY_CANDIDATES[0], smoothed
        )
    return profile


#: Smoothing windows tried by :func:`choose_profile_window`, columns (a factor ~2 apart)
WINDOW_CANDIDATES = (5, 15, 31, 61, 121, 241, 481, 961, 1921, 3841)


def _choose(fit, flux, variance, halfwidth, clip, window=0):
    """Window (unless given) and then penalty of the best held-out prediction."""
    nints, _, ndisp = fit.data.shape
    if nints < 4:
        return window or WINDOW_CANDIDATES[1], PENALTY_CANDIDATES[1]
    # even integrations train (pooled in shift bins: cheap); evenly spaced odd ones, up to
    # _HELD_OUT_SAMPLES band samples, are predicted (each costs CPU for every candidate)
    train = slice(0, None, 2)
    per_int = max(fit.data[0].size, 1)
    test = evenly_spaced(np.arange(1, nints, 2), max(_HELD_OUT_MIN, _HELD_OUT_SAMPLES // per_int))
    part = _Fit(
        fit.data[train], fit.good[train], fit.shifts[train], fit.offset, fit.spline, fit.reach
    )
    smoother = _Smoother(part.equations(flux[train], variance[train]), keep=window == 1)
    del part
    d, good, var = fit.data[test], fit.good[test], variance[test]
    inside = np.abs(fit.offset[None] - fit.shifts[test][:, None, None]) <= halfwidth
    cap = clip**2 if clip > 0 else np.inf
    smoothed, costs, at = {}, {}, []

    def cost(window, penalty):
        if (window, penalty) in costs:
            return costs[window, penalty]
        if window not in smoothed:
            smoothed.clear()  # windows are tried one after the other: keep one
            smoothed[window] = smoother(window)
        profile = _solve(None, fit.spline, fit.offset, halfwidth, window, penalty, smoothed[window])
        if not at:
            at.append(profile.positions(fit.shifts[test]))
        p, derivative = profile.evaluate_with_width(fit.shifts[test], at[0])
        del profile  # its tables are not needed for the held-out residuals
        p = np.nan_to_num(p, copy=False)
        column = _column_flux(d, p, var, good)
        resid = d - column[:, None, :] * p
        # samples the extraction would reject (a cosmic ray, a +-1e30 readout fault) are
        # left out of the column fluxes and widths: one would otherwise set its whole
        # integration's width and so decide the choice
        with np.errstate(all="ignore"):
            kept = good & ~(resid**2 > cap * var)
        column = _column_flux(d, p, var, kept)
        resid = d - column[:, None, :] * p
        # each held-out integration gets its own width: a window must not win by absorbing
        # breathing into the profile (a width step at a tilt event looks like phase structure)
        width, _, change = width_estimates(
            resid, p, derivative, var, kept & inside, column, return_change=True
        )
        del derivative
        resid = resid - np.nan_to_num(width)[:, None, None] * change
        # every aperture pixel counts, also where a noisy profile was clipped to zero; capped
        # at the rejection level: a sample the extraction would reject (a cosmic ray, a
        # corrupted pixel) must not decide
        with np.errstate(all="ignore"):
            resid = np.where(good & inside, resid**2 / var, 0.0)
        costs[window, penalty] = float(
            np.sum(np.minimum(np.nan_to_num(resid, copy=False, nan=0.0, posinf=cap), cap))
        )
        return costs[window, penalty]

    if not window:
        # past twice the band's length a window is already one profile for the whole band
        windows = [w for w in WINDOW_CANDIDATES if w <= 2 * ndisp + 1] or [WINDOW_CANDIDATES[0]]
        window = min(windows, key=lambda w: cost(w, PENALTY_CANDIDATES[1]))
    penalty = min(PENALTY_CANDIDATES, key=lambda q: cost(window, q))
    return int(window), float(penalty)


def choose_profile_window(data, variance, good, offset, shifts, halfwidth, clip=5.0):
    """Dispersion window of the profile fit that best predicts integrations it was not fitted to.

    The profile is fitted to the even integrations for each candidate window and evenly
    spaced odd ones (up to about 2 million band samples) are extracted with it
    (profile-weighted flux per column); their summed weighted residual
    ``sum((D - f P)^2 / V)`` measures the profile's noise (large for a faint source and a
    short window) plus its bias (a long window averaging over a profile that changes along
    the dispersion).  The window with the smallest held-out residual wins; candidates stop
    past twice the band's length.

    Parameters
    ----------
    data, variance, good, offset, shifts, halfwidth, clip
        As for :func:`build_profile`.

    Returns
    -------
    int
    """
    shifts = np.asarray(shifts, float)
    lit = np.isfinite(offset[0])
    reach = float(halfwidth) + 1.0
    good = good & np.isfinite(data) & lit[None, None, :]
    data = np.where(good, data, 0.0)
    median = _median_frame(data, good)
    if clip > 0:
        good = _possible(data, variance, good, median, clip)
    fit = _Fit(data, good, shifts, offset, PixelSpline(-reach, reach), reach)
    first = _first_flux(data, variance, good, offset, shifts, reach, clip, median)
    flux, _ = _smooth_flux(first, lit)
    full = np.broadcast_to(flux[:, None, :], data.shape)
    return _choose(fit, full, np.asarray(variance, float), halfwidth, clip)[0]
