"""1/f-aware extraction: the spectrum and the readout-stripe offsets fitted together.

Correlated read noise (1/f, pre-amplifier offsets) adds one offset ``c_l`` to every pixel of
a fast-axis line ``l`` of one output (a *stripe*).  Summing or weighting pixels as if their
noise were independent passes that offset into the flux; here every integration's band is
modelled as ``D = f_x P + c_l`` and solved by weighted least squares for all ``f_x`` and
``c_l`` at once (pixels outside the profile pin the offsets of their stripes).  Where a
stripe has no pixel outside the profile (NIRCam grism: the rows under the trace), a Gaussian
prior ``c ~ N(0, sigma_c^2)`` with ``sigma_c^2`` measured from the stripes that do keeps the
problem regular; this is the generalised least-squares solution with the offsets
marginalised, in the spirit of covariance-weighted extraction.

The normal equations are reduced to the stripe offsets (the flux of each column is
eliminated, since every column's flux meets only its own pixels), solved sparsely, and the
flux variance includes the offsets' uncertainty.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as splinalg

__all__ = ["stripe_labels", "stripe_prior", "solve_stripes"]


def stripe_labels(amplifier, line, noutputs):
    """Integer label of every pixel's stripe (one fast-axis line of one output).

    Parameters
    ----------
    amplifier, line : ndarray of int, same shape
        Output number and slow-axis line index of every pixel.
    noutputs : int

    Returns
    -------
    ndarray of int
    """
    return np.asarray(line, int) * int(noutputs) + np.asarray(amplifier, int)


def stripe_prior(residual, weight, labels, background, groups=None):
    """Variance of the stripe offsets, measured from pixels outside the profile.

    Parameters
    ----------
    residual : ndarray, shape ``(nints, nrow, n_disp)``
        Data minus the standard extraction's model.
    weight : ndarray, shape ``(nints, nrow, n_disp)``
        Inverse variance (0: unused pixel).
    labels : ndarray of int, shape ``(nrow, n_disp)``
        Stripe label of each band pixel.
    background : ndarray of bool, shape ``(nints, nrow, n_disp)``
        Pixels outside the profile.
    groups : ndarray of int, shape ``(nrow, n_disp)``, optional
        Output of each pixel: the median stripe offset of each output and integration is
        removed first (it is fitted separately).

    Returns
    -------
    float
        Excess variance of the per-stripe means over their white-noise expectation (at least
        1 % of that expectation), data units squared.
    """
    nints = residual.shape[0]
    uniq, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    index = (np.arange(nints)[:, None, None] * uniq.size + inverse[None]).ravel()
    w = np.where(background, weight, 0.0).ravel()
    size = nints * uniq.size
    wsum = np.bincount(index, w, size)
    rsum = np.bincount(index, w * residual.ravel(), size)
    count = np.bincount(index, (w > 0).astype(float), size)
    ok = (count >= 3) & (wsum > 0)
    if ok.sum() < 3:
        return 0.0
    mean = np.full(size, np.nan)
    mean[ok] = rsum[ok] / wsum[ok]
    mean = mean.reshape(nints, uniq.size)
    if groups is not None:
        group_of = np.zeros(uniq.size, int)
        group_of[inverse.ravel()] = np.asarray(groups).ravel()
        for g in np.unique(group_of):
            sel = group_of == g
            with np.errstate(all="ignore"):
                level = np.nanmedian(mean[:, sel], axis=1, keepdims=True)
            mean[:, sel] -= np.nan_to_num(level)
    mean = mean.ravel()[ok]
    noise = 1.0 / wsum[ok]
    excess = np.mean(mean**2) - np.mean(noise)
    return float(max(excess, 0.01 * np.mean(noise)))


def solve_stripes(data, profile, weight, label_sets):
    """Joint weighted least-squares fit of the flux per column and the stripe offsets.

    Parameters
    ----------
    data : ndarray, shape ``(nrow, n_disp)``
        Band pixels of one integration (background subtracted).
    profile : ndarray, shape ``(nrow, n_disp)``
        Normalised profile (0 outside the aperture; NaN columns skipped).
    weight : ndarray, shape ``(nrow, n_disp)``
        Inverse variance of each pixel (0: unused).
    label_sets : list of tuple
        Offset families ``(labels, prior_variance)`` or ``(labels, prior_variance, values)``:
        the parameter each pixel belongs to (int array ``(nrow, n_disp)``), the variance of
        the family's Gaussian prior, and the pixel's coefficient (default 1), e.g. stripes
        per line and output with the measured 1/f variance, and per output a low-order
        polynomial in the line index with a loose prior (the slow part of the 1/f noise,
        interpolated under the trace from the lines either side).

    Returns
    -------
    flux : ndarray, shape ``(n_disp,)``
    variance : ndarray, shape ``(n_disp,)``
        Flux variance including the offsets' uncertainty.
    """
    nrow, ndisp = data.shape
    prof = np.nan_to_num(profile)
    w = np.where(np.isfinite(data), weight, 0.0)
    d = np.where(w > 0, data, 0.0)
    a = np.sum(prof**2 * w, axis=0)
    rf = np.sum(prof * d * w, axis=0)
    have = a > 0
    inv_a = np.where(have, 1.0 / np.where(have, a, 1.0), 0.0)
    label_sets = [tuple(f) + (None,) * (3 - len(f)) for f in label_sets if f[1] > 0]
    if not label_sets:
        return np.where(have, rf * inv_a, np.nan), np.where(have, inv_a, np.nan)
    npix = nrow * ndisp
    pix = np.arange(npix)
    cols, rows, vals, prior = [], [], [], []
    start = 0
    for lab, var, values in label_sets:
        uniq, inverse = np.unique(lab, return_inverse=True)
        rows.append(pix)
        cols.append(start + inverse.ravel())
        vals.append(np.ones(npix) if values is None else np.asarray(values, float).ravel())
        prior.append(np.full(uniq.size, 1.0 / var))
        start += uniq.size
    xc = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(npix, start),
    )
    wdiag = sparse.diags(w.ravel())
    xf = sparse.csr_matrix((prof.ravel(), (pix, np.tile(np.arange(ndisp), nrow))), (npix, ndisp))
    ncc = xc.T @ wdiag @ xc + sparse.diags(np.concatenate(prior))
    b = xf.T @ wdiag @ xc  # couples column fluxes to offsets
    schur = ncc - b.T @ sparse.diags(inv_a) @ b
    rhs = xc.T @ (w * d).ravel() - b.T @ (rf * inv_a)
    lu = splinalg.splu(sparse.csc_matrix(schur))
    offsets = lu.solve(rhs)
    flux = (rf - b @ offsets) * inv_a
    bt = b.T.toarray()
    extra = np.sum(bt * lu.solve(bt), axis=0) * inv_a**2
    return np.where(have, flux, np.nan), np.where(have, inv_a + extra, np.nan)
