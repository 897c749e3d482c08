"""Clean the residuals of the time-series reference and estimate each pixel's noise.

After the running median is subtracted, what remains in a pixel's group differences is
noise, jumps, the response to pointing changes (steep trace flanks) and the 1/f offset each
detector line picked up in that group. :func:`clean_residuals` removes the last two with
clipped, weighted fits (so the jumps do not bias them) and measures the scatter;
:func:`shrink_to_prior` stabilises that scatter for short series, towards
:func:`prior_variance` (gain and read noise given) or :func:`fit_noise_model` (fitted on the
whole frame).
"""

from __future__ import annotations

import numpy as np

from tso_steps.stats import MAD_TO_SIGMA, clipped_rms_last, nanmedian_last

__all__ = [
    "clean_residuals",
    "fit_noise_model",
    "prior_variance",
    "scatter_lower_bound",
    "shrink_to_prior",
]

# Equivalent number of samples given to the noise prior: it matters only for short series.
_PRIOR_SAMPLES = 10.0


def clean_residuals(residual, regressors, line_offsets=True, n_amps=1, interleaved=False):
    """Remove motion and line offsets from ``residual`` in place; return its scatter.

    Every estimate clips samples beyond a few sigma, so the jumps being searched for do not
    bias the corrections or the scatter.

    Parameters
    ----------
    residual : ndarray of float32, shape ``(n_slow, n_fast, ndiff, nints)``
        Group differences minus their reference, DN; NaN where unusable. Modified in place.
    regressors : ndarray of float32, shape ``(nints, 2)``, or None
        High-passed per-integration shift proxies (pixels).
    line_offsets : bool
        Remove the weighted mean residual of each line and output.
    n_amps : int
        Outputs along the fast axis.
    interleaved : bool
        Outputs interleave pixel by pixel (MIRI).

    Returns
    -------
    sigma : ndarray, shape ``(n_slow, n_fast)``
        Clipped RMS of each pixel's corrected residuals, DN.
    count : ndarray of int
        Samples it used.
    """
    settings = {"n_amps": n_amps, "interleaved": interleaved}
    shape = residual.shape
    flat = residual.reshape(shape[0], shape[1], -1)
    # residuals are centred by construction: MAD about zero needs one sort only
    # (a subsample suffices: sigma0 only sets the clipping scale of the estimates below)
    step = max(1, flat.shape[-1] // 64)
    sigma0 = MAD_TO_SIGMA * nanmedian_last(np.abs(flat[..., ::step]), min_count=3)
    with np.errstate(invalid="ignore"):
        fit = None
        if regressors is not None:
            fit = _motion_fit(residual, sigma0, regressors)
        if line_offsets:
            # motion first: on the flanks of a trace a pointing change moves whole lines
            # coherently, which the line offsets must not absorb
            offsets = _line_offsets(residual if fit is None else residual - fit, sigma0, settings)
            _subtract_offsets(residual, offsets, settings)
            if regressors is not None:
                fit = _motion_fit(residual, sigma0, regressors)
        if fit is not None:
            residual -= fit
        sigma, _ = clipped_rms_last(flat, sigma0)
        sigma, count = clipped_rms_last(flat, sigma)
    return sigma, count


def _motion_fit(clean, sigma0, regressors):
    """Per-pixel least-squares response to the shift proxies, pooled over group diffs.

    Returns the fitted motion term, shape ``(S, F, 1, I)``.
    """
    inlier = np.abs(clean) < (5.0 * sigma0)[..., None, None]
    values = np.where(inlier, clean, np.float32(0.0)).sum(axis=2)  # (S, F, I)
    counts = inlier.sum(axis=2, dtype=np.float32)
    x0, x1 = regressors[:, 0], regressors[:, 1]
    n_slow, n_fast, nints = values.shape
    # 2-D products so that numpy hands them to BLAS
    xx = (counts.reshape(-1, nints) @ np.stack([x0 * x0, x0 * x1, x1 * x1], axis=1)).reshape(
        n_slow, n_fast, 3
    )
    xy = (values.reshape(-1, nints) @ regressors).reshape(n_slow, n_fast, 2)
    det = xx[..., 0] * xx[..., 2] - xx[..., 1] ** 2
    ok = det > 1e-6 * (xx[..., 0] * xx[..., 2] + 1e-30)
    det = np.where(ok, det, 1.0)
    cx = np.where(ok, (xx[..., 2] * xy[..., 0] - xx[..., 1] * xy[..., 1]) / det, 0.0)
    cy = np.where(ok, (xx[..., 0] * xy[..., 1] - xx[..., 1] * xy[..., 0]) / det, 0.0)
    coeff = np.stack([cx, cy], axis=-1).astype(np.float32).reshape(-1, 2)
    return (coeff @ regressors.T).reshape(n_slow, n_fast, 1, nints)


def _line_view(array, settings):
    """View of ``(S, F, G, I)`` as ``(S, A, W, G*I)`` (bands) or ``(S, W, A, G*I)`` (MIRI)."""
    n_slow, n_fast = array.shape[:2]
    n_amps = settings["n_amps"] if n_fast % settings["n_amps"] == 0 else 1
    if settings["interleaved"]:
        return array.reshape(n_slow, n_fast // n_amps, n_amps, -1), 1
    return array.reshape(n_slow, n_amps, n_fast // n_amps, -1), 2


def _line_offsets(clean, sigma0, settings):
    """Weighted clipped mean residual of each line and output (1/f offsets).

    Returns offsets shaped to broadcast against :func:`_line_view` of the residuals.
    """
    use = np.abs(clean) < (4.0 * sigma0)[..., None, None]
    kept = np.where(use, clean, np.float32(0.0))
    weight = (1.0 / np.where(sigma0 > 0, sigma0, np.inf) ** 2).astype(np.float32)
    kept, axis = _line_view(kept, settings)
    use, _ = _line_view(use, settings)
    weight = weight.reshape(kept.shape[:3])
    if axis == 1:  # MIRI: put the pixels of one output last-but-one for matmul
        kept, use, weight = (np.swapaxes(a, 1, 2) for a in (kept, use, weight))
    # weighted sums along each output's pixels: (S, A, 1, W) @ (S, A, W, K), BLAS
    num = np.matmul(weight[:, :, None, :], kept)
    den = np.matmul(weight[:, :, None, :], use.astype(np.float32))
    offsets = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).astype(np.float32)
    if axis == 1:
        offsets = np.swapaxes(offsets, 1, 2)
    return offsets


def _subtract_offsets(residual, offsets, settings):
    """Subtract line offsets from ``residual`` in place."""
    view, _ = _line_view(residual, settings)
    view -= offsets


def prior_variance(level, prior, nframes):
    """Variance of a noise model, ``level / gain + readnoise**2 / nframes``, per pixel.

    Parameters
    ----------
    level : ndarray
        Typical group difference, DN.
    prior : tuple of ndarray
        ``(gain, readnoise)`` at the same pixels: e-/DN and CDS read noise (a difference of
        two frames, as in jwst READNOISE references), DN.
    nframes : int
        Frames averaged per group.

    Returns
    -------
    ndarray
        NaN where the model is not positive and finite.
    """
    gain, readnoise = prior
    with np.errstate(invalid="ignore", divide="ignore"):
        prior_var = np.abs(level) / gain + readnoise**2 / max(nframes, 1)
    return np.where(np.isfinite(prior_var) & (prior_var > 0), prior_var, np.nan)


def fit_noise_model(sigma, level, nbins=12):
    """Fit variance = a + b * level across a frame's pixels (read noise + shot noise).

    Parameters
    ----------
    sigma, level : ndarray
        Empirical scatter and typical group difference of every pixel of the frame, DN.
        The fit is over all of them, so it is the same however the frame is processed.
    nbins : int
        Quantile bins of the level.

    Returns
    -------
    callable or None
        ``model(level)`` -> variance (always positive), or None with too few pixels.
    """
    good = np.isfinite(sigma) & np.isfinite(level) & (sigma > 0)
    if good.sum() < 10 * nbins:
        return None
    x = np.abs(level[good]).astype(np.float64)
    v = sigma[good].astype(np.float64) ** 2
    edges = np.unique(np.quantile(x, np.linspace(0, 1, nbins + 1)))
    if len(edges) < 3:
        constant = np.median(v)
        return lambda lv: np.full(np.shape(lv), constant)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    xm = np.array([np.median(x[which == k]) for k in range(len(edges) - 1)])
    vm = np.array([np.median(v[which == k]) for k in range(len(edges) - 1)])
    slope, intercept = np.polyfit(xm, vm, 1)
    slope = max(slope, 0.0)
    intercept = max(intercept, 0.5 * vm.min())
    return lambda lv: intercept + slope * np.abs(lv)


def shrink_to_prior(sigma, n_samples, prior_var):
    """Shrink the empirical scatter towards a noise model (matters for short series).

    ``sigma**2`` becomes ``(n sigma**2 + 10 prior_var) / (n + 10)``: the model counts as
    ten samples. Elementwise, so any subset of pixels gives the values of the whole frame.

    Parameters
    ----------
    sigma : ndarray
        Empirical scatter, DN.
    n_samples : ndarray of int
        Samples behind each ``sigma``.
    prior_var : ndarray or None
        Model variance (NaN: no model at that pixel); None leaves ``sigma`` as it is.

    Returns
    -------
    ndarray
    """
    if prior_var is None:
        return sigma
    with np.errstate(invalid="ignore"):
        var = (n_samples * sigma**2 + _PRIOR_SAMPLES * prior_var) / (n_samples + _PRIOR_SAMPLES)
        var = np.where(np.isfinite(prior_var), var, sigma**2)
        return np.where(np.isfinite(sigma), np.sqrt(var), np.sqrt(prior_var))


def scatter_lower_bound(sigma, n_samples):
    """A value :func:`shrink_to_prior` never goes below, whatever the (positive) prior."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sigma * np.sqrt(n_samples / (n_samples + _PRIOR_SAMPLES))
