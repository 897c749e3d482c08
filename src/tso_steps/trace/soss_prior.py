"""NIRISS/SOSS trace shapes from the pupil-wheel position (pastasoss) as a prior.

The GR700XD's pupil wheel settles a few hundredths of a degree from its commanded position,
which rotates the strongly curved SOSS traces; ``pastasoss.get_soss_traces`` predicts both
orders' traces for any ``PWCPOS`` (SUBSTRIP256 rows, DMS orientation).  Here that prediction
is the shape of the reference trace, and the data decide the two free parameters the physics
leaves open: the wheel angle actually reached (``pwcpos + dpwcpos``) and a cross-dispersion
offset ``dy`` (target acquisition).  They are fitted by robust weighted least squares to the
per-column centres of the exposure, so contaminated or faint columns cannot bend the trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.stats import MAD_TO_SIGMA

__all__ = [
    "SOSS_PWCPOS_RANGE",
    "SossPrior",
    "SossTracePrior",
    "fit_soss_prior",
    "soss_prior_centres",
]

log = logging.getLogger("stpipe.tso_steps.trace")

#: Pupil-wheel range (deg) over which pastasoss's trace models were calibrated.
SOSS_PWCPOS_RANGE = (245.656, 245.923)
#: Rows by which each SOSS subarray's first row lies above SUBSTRIP256's (pastasoss's frame).
_ROW_SHIFT = {"SUBSTRIP256": 0, "SUBSTRIP96": 10, "FULL": -1792}
_SUBSTRIP256_YSTART = 1793
_DERIVATIVE_STEP = 0.01  # deg, finite-difference step in PWCPOS


def _row_shift(subarray, ystart):
    """Rows to subtract from pastasoss's SUBSTRIP256 rows to land on this subarray."""
    if ystart is not None and int(ystart) > 0:
        return int(ystart) - _SUBSTRIP256_YSTART
    key = str(subarray).upper()
    if key not in _ROW_SHIFT:
        raise ValueError(
            f"tso_trace: no SOSS row offset is known for subarray {subarray!r} and the "
            "header has no SUBSTRT2; set meta.subarray.ystart or run with soss_prior=False."
        )
    return _ROW_SHIFT[key]


def soss_prior_centres(pwcpos, order, n_disp, subarray="SUBSTRIP256", ystart=None):
    """pastasoss's trace of one order on this array: a centre per dispersion column.

    Parameters
    ----------
    pwcpos : float
        Pupil-wheel position, degrees (header keyword ``PWCPOS``).
    order : int
        Spectral order (1 or 2).
    n_disp : int
        Columns of the array.
    subarray : str
        SUBARRAY name (sets the row offset when ``ystart`` is not given).
    ystart : int, optional
        1-based full-frame row of the subarray's first row (``SUBSTRT2``).

    Returns
    -------
    ndarray, shape ``(n_disp,)``
        0-based row of the trace centre; NaN where pastasoss does not model the order.
    """
    import pastasoss

    trace = pastasoss.get_soss_traces(pwcpos=float(pwcpos), order=str(int(order)), interp=True)
    x = np.asarray(trace.x, dtype=np.float64)
    y = np.asarray(trace.y, dtype=np.float64) - _row_shift(subarray, ystart)
    columns = np.arange(n_disp, dtype=np.float64)
    out = np.interp(columns, x, y, left=np.nan, right=np.nan)
    return out


@dataclass
class SossPrior:
    """Fitted pastasoss trace of one order.

    Attributes
    ----------
    center : ndarray, shape ``(n_disp,)``
        The fitted trace (NaN where pastasoss does not model the order).
    header : ndarray, shape ``(n_disp,)``
        pastasoss's trace at the header's PWCPOS, unshifted.
    dpwcpos, dy : float
        Fitted wheel-angle correction (deg) and cross-dispersion offset (px).
    used : ndarray of bool, shape ``(n_disp,)``
        Columns that the robust fit kept.
    """

    center: np.ndarray
    header: np.ndarray
    dpwcpos: float
    dy: float
    used: np.ndarray


def fit_soss_prior(
    centers,
    errors,
    pwcpos,
    order,
    subarray="SUBSTRIP256",
    ystart=None,
    clip=4.0,
    iterations=6,
):
    """Fit pastasoss's trace (wheel angle and offset free) to measured column centres.

    Parameters
    ----------
    centers, errors : ndarray, shape ``(n_disp,)``
        Measured per-column centres and their 1-sigma errors (NaN: not measured).
    pwcpos : float
        Header pupil-wheel position, degrees.
    order : int
    subarray : str
    ystart : int, optional
        See :func:`soss_prior_centres`.
    clip : float
        Columns whose residual exceeds ``clip`` times the robust scatter of the normalised
        residuals (at least ``clip`` sigma) are left out, iteratively.
    iterations : int
        Gauss-Newton / rejection rounds.

    Returns
    -------
    SossPrior
    """
    n_disp = centers.size
    header = soss_prior_centres(pwcpos, order, n_disp, subarray, ystart)
    good = np.isfinite(centers) & np.isfinite(errors) & (errors > 0) & np.isfinite(header)
    dpw, dy = 0.0, 0.0
    if good.sum() < 3:
        return SossPrior(header.copy(), header, 0.0, 0.0, good)
    # Weights: per-column error plus the scatter of the columns about the model, re-estimated
    # every round.  Real columns scatter about any model far more than their photon errors
    # (profile changes, contaminants), so noise-only weights would let a few bright
    # columns decide the fit.
    errors = np.where(good, errors, np.inf)
    weight = 1.0 / errors
    model = header
    for _ in range(iterations):
        plus = soss_prior_centres(pwcpos + dpw + _DERIVATIVE_STEP, order, n_disp, subarray, ystart)
        model = soss_prior_centres(pwcpos + dpw, order, n_disp, subarray, ystart) + dy
        slope = (plus + dy - model) / _DERIVATIVE_STEP
        use = good & np.isfinite(slope) & np.isfinite(model)
        basis = np.stack([slope[use], np.ones(use.sum())], axis=1) * weight[use, None]
        rhs = (centers[use] - model[use]) * weight[use]
        step, *_ = np.linalg.lstsq(basis, rhs, rcond=None)
        dpw += float(step[0])
        dy += float(step[1])
        model = soss_prior_centres(pwcpos + dpw, order, n_disp, subarray, ystart) + dy
        residual = centers - model
        extra = MAD_TO_SIGMA * np.median(np.abs(residual[use]))
        weight = 1.0 / np.sqrt(errors**2 + extra**2)
        norm = residual * weight
        new = good & np.isfinite(model) & (np.abs(norm) <= clip)
        converged = abs(step[0]) < 1e-5 and abs(step[1]) < 1e-4
        if (converged and new.sum() == good.sum()) or new.sum() < 3:
            break
        good = new
    low, high = SOSS_PWCPOS_RANGE
    if not low <= pwcpos + dpw <= high:
        log.warning(
            "Order %d: fitted PWCPOS %.4f deg is outside pastasoss's calibrated range "
            "%.3f-%.3f deg; the prior trace is an extrapolation.",
            order,
            pwcpos + dpw,
            low,
            high,
        )
    return SossPrior(model, header, dpw, dy, good)


@dataclass
class SossTracePrior:
    """pastasoss's trace of one SOSS order, as a prior for :func:`reference_trace`.

    Attributes
    ----------
    pwcpos : float
        Header pupil-wheel position, degrees.
    order : int
    subarray : str
    ystart : int or None
    last : SossPrior or None
        The most recent fit (set by :meth:`fit`).

    Examples
    --------
    >>> prior = SossTracePrior(245.778671, 1)  # doctest: +SKIP
    >>> ref = reference_trace(median, variance, norders=1, priors=[prior])  # doctest: +SKIP
    """

    pwcpos: float
    order: int
    subarray: str = "SUBSTRIP256"
    ystart: int | None = None
    last: SossPrior | None = None

    def initial(self, n_disp):
        """Centres at the header's PWCPOS (first guess of the windows)."""
        return soss_prior_centres(self.pwcpos, self.order, n_disp, self.subarray, self.ystart)

    def fit(self, centers, errors):
        """Fit wheel angle and offset to measured centres; see :func:`fit_soss_prior`."""
        self.last = fit_soss_prior(
            centers, errors, self.pwcpos, self.order, self.subarray, self.ystart
        )
        return self.last
