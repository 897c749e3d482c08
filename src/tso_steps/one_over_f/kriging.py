"""Conditional mean of the 1/f at every pixel's read time (``method='gp'``).

Per frame, the residual of every output (frame minus the static scene, slow-by-slow offsets
removed) is, in read-time units (:mod:`tso_steps.one_over_f.readtime`),

    y = c_a + B beta + x + e

with ``c_a`` a free constant per output, ``x`` the 1/f (a Gaussian process in read time with
the covariance measured on the unilluminated pixels, :mod:`tso_steps.one_over_f.tickcov`),
``e`` white noise of known variance and ``B beta`` the source: nothing on unilluminated
units; on illuminated units (observed only when the source is modelled) the scene's source
image times free coefficients - one per knot of a piecewise-linear spectrum along the
dispersion (so the spectrum, and any transit-depth spectrum, is free in every frame) and two
for a shift of the profile.  What identifies the 1/f under the source is therefore the
profile across the trace, not the spectrum.  Generalised least squares gives ``c`` and
``beta``; the conditional mean of ``x`` at every tick,

    x_hat(t) = C(t, obs) S^-1 (y - c - B beta),    S = C(obs, obs) + diag(noise),

plus ``c`` is the stripe removed.  The source coefficients are discarded: only the 1/f is
subtracted.  ``S`` is factorised once per run; each frame costs two triangular solves and an
FFT convolution.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse

from tso_steps.one_over_f.readtime import LIT, ReadTimeline, build_units
from tso_steps.one_over_f.tickcov import TickCovariance, fit_tick_covariance
from tso_steps.stats import evenly_spaced, nanmedian_last, robust_std_last

__all__ = ["ReadTimeKriging", "fit_read_time_model", "source_basis"]

# frames convolved at once (each holds a few float64 arrays of the frame's tick length)
_FRAMES_PER_CONVOLUTION = 4


def source_basis(source, dispersion_axis=None, spacing=16.0, threshold=None):
    """Images whose combinations model a frame's source: free spectrum and profile shifts.

    Parameters
    ----------
    source : ndarray, shape ``(ny, nx)``
        Source image of the scene (background removed); NaN counts as 0.
    dispersion_axis : int or None
        Array axis of the dispersion; None (imaging): the source image itself.
    spacing : float
        Pixels between the knots of the piecewise-linear spectrum along the dispersion.
    threshold : float, optional
        Extent of the spectrum: where the source summed across the dispersion exceeds this
        (default 1e-3 of its maximum).

    Returns
    -------
    list of ndarray
        ``source * hat_j`` for every knot (or the source), then its two derivatives.
    """
    image = np.nan_to_num(np.asarray(source, dtype=np.float64))
    shifts = list(np.gradient(image, axis=(0, 1)))
    if dispersion_axis is None:
        return [image, *shifts]
    profile = np.clip(image, 0, None).sum(axis=1 - dispersion_axis)
    limit = 1e-3 * profile.max() if threshold is None else threshold
    lit = np.flatnonzero(profile > limit)
    if lit.size < 2:
        return [image, *shifts]
    first, last = lit[0], lit[-1]
    knots = np.linspace(first, last, max(2, int(round((last - first) / spacing)) + 1))
    coordinate = np.arange(image.shape[dispersion_axis], dtype=np.float64)
    hats = []
    for j in range(knots.size):
        hat = np.interp(
            coordinate,
            knots,
            np.eye(knots.size)[j],
            left=float(j == 0),
            right=float(j == knots.size - 1),
        )
        hats.append(image * (hat[None, :] if dispersion_axis == 1 else hat[:, None]))
    return [*hats, *shifts]


class ReadTimeKriging:
    """The fitted model of one run: units, their covariance, factorised once.

    Parameters
    ----------
    layout : `~tso_steps.readout.LineLayout`
    dark, usable : ndarray of bool, shape ``(n_lines, n_fast)``
        Unilluminated pixels, and pixels that can be measured (line view).
    cov : ndarray, shape ``(n_ticks, namp, namp)``
        Read-time covariance (:func:`~tso_steps.one_over_f.tickcov.fit_tick_covariance`).
    weights : ndarray, shape ``(n_lines, n_fast)``
        Inverse white-noise variance of every pixel (0: not used).
    basis : list of ndarray, optional
        Source images (line view, :func:`source_basis`); given, the illuminated units are
        observed too; None: only the unilluminated ones.
    size : int
        Reads per unit.
    budget : int
        Largest number of observations.
    kappa : float
        Clipping threshold of the unit means.
    """

    def __init__(
        self, layout, dark, usable, cov, weights, basis=None, size=16, budget=4096, kappa=4.0
    ):
        self.shape = layout.ticks.shape
        self.timeline = ReadTimeline.from_layout(layout)
        self.kappa = kappa
        self.covariance = TickCovariance(cov)
        tl = self.timeline
        usable_t = tl.series(usable) & (tl.series(weights) > 0)
        self.weights = np.where(usable_t, tl.series(weights), 0.0)
        self.units = build_units(tl, tl.series(dark), usable_t, size, budget, basis is not None)
        self.obs = self.units.observations()
        n_obs = self.units.n_obs
        namp = tl.namp
        # fixed noise and regressors of every observation (same pixels in every frame)
        unit_weight = self._unit_sums(self.weights[None])[0]
        obs_weight = np.zeros(n_obs)
        used = self.units.group >= 0
        np.add.at(obs_weight, self.units.group[used], unit_weight[used])
        noise = 1.0 / np.maximum(obs_weight, 1e-300)
        regressors = [np.eye(namp)[self.obs[0]]]  # free constant per output
        self._profile = None
        if basis is not None:
            lit_means, self._profile = self._lit_basis(basis, n_obs)
            regressors.append(lit_means)
        self.regressors = np.concatenate(regressors, axis=1)
        matrix = self.covariance.between(self.obs, self.obs)
        matrix[np.diag_indices(n_obs)] += noise
        self._factor = scipy.linalg.cho_factor(matrix, lower=True, overwrite_a=True)
        self._solved_regressors = scipy.linalg.cho_solve(self._factor, self.regressors)
        normal = self.regressors.T @ self._solved_regressors
        if self._profile is not None:
            normal[namp:, namp:] += self._profile["normal"]
        self._normal_inverse = np.linalg.pinv(normal, hermitian=True)
        self.namp = namp

    def _lit_basis(self, basis, n_obs):
        """Source regressors of the illuminated observations, and their within-unit part.

        A unit's mean carries the 1/f and the source; the deviations of its pixels from that
        mean carry the source only (the 1/f hardly changes within a unit), e.g. the profile
        across the trace when it runs along the fast axis.  Those deviations enter the fit
        of the source coefficients as a plain weighted least-squares term.
        """
        units = self.units
        lit = np.flatnonzero((units.kind == LIT) & (units.group >= 0))
        members = units.members[lit]
        owner = np.repeat(np.arange(lit.size), members.shape[1]).reshape(members.shape)
        keep = members >= 0
        pixels, owner = members[keep], owner[keep]
        weight = self.weights[pixels]
        # pixel x basis matrix, sparse: a knot's image is zero outside its two intervals
        rows, cols, vals = [], [], []
        for j, image in enumerate(basis):
            column = self.timeline.series(np.asarray(image, dtype=np.float64))[pixels]
            nonzero = np.flatnonzero(column)
            rows.append(nonzero)
            cols.append(np.full(nonzero.size, j))
            vals.append(column[nonzero])
        shape = (pixels.size, len(basis))
        images = scipy.sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
        )
        unit_weight = np.bincount(owner, weight, minlength=lit.size)
        safe = np.where(unit_weight > 0, unit_weight, 1.0)
        averaging = scipy.sparse.csr_matrix(
            (weight / safe[owner], (owner, np.arange(pixels.size))), shape=(lit.size, pixels.size)
        )
        means = np.asarray((averaging @ images).todense())
        weighted = scipy.sparse.diags(weight) @ images
        normal = np.asarray((images.T @ weighted).todense())
        normal -= (means * unit_weight[:, None]).T @ means
        regressors = np.zeros((n_obs, len(basis)))
        regressors[units.group[lit]] = means
        profile = {
            "pixels": pixels,
            "owner": lit[owner],
            "weight": weight,
            "images": images,
            "unit_means": means,
            "unit_of": owner,
            "normal": normal,
        }
        return regressors, profile

    def _profile_rhs(self, values, unit_level):
        """Within-unit right-hand side of the source fit, per frame: ``(nframes, nbasis)``."""
        prof = self._profile
        dev = values[:, prof["pixels"]] - unit_level[:, prof["owner"]]
        keep = np.isfinite(dev) & (dev * dev * prof["weight"] <= self.kappa**2)
        dev = np.where(keep, dev, 0.0) * prof["weight"]
        # sum_p w_p dev_p (P_p - mean_u): the mean part vanishes up to the clipping
        rhs = (prof["images"].T @ dev.T).T
        per_unit = np.zeros((dev.shape[0], prof["unit_means"].shape[0]))
        np.add.at(per_unit.T, prof["unit_of"], dev.T)
        return rhs - per_unit @ prof["unit_means"]

    def _unit_sums(self, values):
        """Sum of ``values`` (``(..., npix)``) over each unit's pixels."""
        pad = self.units.members < 0
        index = np.where(pad, 0, self.units.members)
        return np.where(pad, 0.0, values[..., index]).sum(axis=-1)

    @property
    def n_obs(self):
        """int : Observations of every frame."""
        return self.units.n_obs

    def estimate(self, residual_lines):
        """The 1/f (plus the per-output constants) at every pixel of every frame.

        Parameters
        ----------
        residual_lines : ndarray, shape ``(nframes, n_lines, n_fast)``
            Residual frames in line view (odd/even differences removed; NaN: unusable).

        Returns
        -------
        ndarray of float32, shape like ``residual_lines``
        """
        tl = self.timeline
        values = tl.series(residual_lines)
        level, _, unit_level = self.units.levels(values, self.weights, self.kappa)
        solved = scipy.linalg.cho_solve(self._factor, level.T)
        rhs = self.regressors.T @ solved
        if self._profile is not None:
            rhs[self.namp :] += self._profile_rhs(values, unit_level).T
        coef = self._normal_inverse @ rhs
        weights = (solved - self._solved_regressors @ coef).T
        out = np.empty(values.shape, dtype=np.float32)
        amp, start, stop = self.obs
        for lo in range(0, values.shape[0], _FRAMES_PER_CONVOLUTION):
            hi = min(lo + _FRAMES_PER_CONVOLUTION, values.shape[0])
            ticks = self.covariance.smear(weights[lo:hi], amp, start, stop)
            out[lo:hi] = ticks[:, tl.amp, tl.tick] + coef[: self.namp, lo:hi].T[:, tl.amp]
        return tl.to_lines(out, self.shape)


def fit_read_time_model(
    layout,
    residuals,
    dark,
    usable,
    source,
    basis=None,
    size=16,
    budget=4096,
    kappa=4.0,
    max_frames=32,
):
    """Measure the read-time covariance and noise on residual frames and build the model.

    Parameters
    ----------
    layout : `~tso_steps.readout.LineLayout`
    residuals : ndarray, shape ``(nframes, n_lines, n_fast)``
        Sample residual frames in line view, odd/even differences removed but not the
        output levels (NaN: unusable).
    dark, usable : ndarray of bool, shape ``(n_lines, n_fast)``
        Unilluminated pixels; measurable pixels.
    source : ndarray, shape ``(n_lines, n_fast)``
        Source image (for the photon noise of the illuminated pixels).
    basis, size, budget, kappa
        As in :class:`ReadTimeKriging`.
    max_frames : int
        Frames (spread over the sample) used for the covariance.

    Returns
    -------
    ReadTimeKriging
    """
    tl = ReadTimeline.from_layout(layout)
    pick = evenly_spaced(np.arange(residuals.shape[0]), max_frames)
    values = tl.series(residuals[pick]).astype(np.float64)
    dark_t = tl.series(dark) & tl.series(usable)
    finite = np.isfinite(values)
    dark_values = np.where(dark_t & finite, values, np.nan)
    # cosmic rays: 5 robust sigma from each frame and output's median
    centre = np.zeros_like(values)
    sigma = np.zeros_like(values)
    for amp in range(tl.namp):
        cols = tl.amp == amp
        centre[:, cols] = nanmedian_last(dark_values[:, cols])[:, None]
        sigma[:, cols] = robust_std_last(dark_values[:, cols], min_count=1)[:, None]
    ok = dark_t & finite & (np.abs(np.nan_to_num(values - centre)) <= 5 * sigma)
    series = np.zeros((pick.size, tl.namp, tl.n_ticks))
    observed = np.zeros(series.shape, dtype=bool)
    series[:, tl.amp, tl.tick] = np.where(ok, values, 0.0)
    observed[:, tl.amp, tl.tick] = ok
    cov, white = fit_tick_covariance(series, observed)
    del series, observed
    signal = np.clip(np.nan_to_num(tl.series(source)), 0.0, None)
    slope = _photon_slope(
        tl, values, usable_t=tl.series(usable), dark=dark_t, signal=signal, white=white
    )
    variance = white[tl.amp] + slope * signal
    weights_t = np.where(tl.series(usable), 1.0 / np.maximum(variance, 1e-300), 0.0)
    weights = tl.to_lines(weights_t, layout.ticks.shape)
    return ReadTimeKriging(layout, dark, usable, cov, weights, basis, size, budget, kappa)


def _photon_slope(tl, values, usable_t, dark, signal, white):
    """Excess white variance per unit of source signal, from adjacent reads of one output.

    Adjacent reads differ by the pixels' white noise (the 1/f hardly changes in one tick):
    half the variance over frames of the difference of two illuminated neighbours, less the
    read noise, over their mean signal.
    """
    if values.shape[0] < 5:
        return 0.0
    pair = (tl.amp[1:] == tl.amp[:-1]) & (tl.tick[1:] == tl.tick[:-1] + 1)
    pair &= usable_t[1:] & usable_t[:-1] & ~dark[1:] & ~dark[:-1]
    mean_signal = 0.5 * (signal[1:] + signal[:-1])[pair]
    bright = mean_signal > 10.0 * np.sqrt(np.median(white))
    if bright.sum() < 10:
        return 0.0
    index = np.flatnonzero(pair)[bright]
    diff = values[:, index + 1] - values[:, index]
    half_var = 0.5 * robust_std_last(np.moveaxis(diff, 0, -1), min_count=3) ** 2
    excess = (half_var - white[tl.amp[index]]) / mean_signal[bright]
    excess = excess[np.isfinite(excess)]
    return float(max(np.median(excess), 0.0)) if excess.size else 0.0
