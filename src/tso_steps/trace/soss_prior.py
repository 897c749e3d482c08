"""NIRISS/SOSS trace shapes from the pupil-wheel position (pastasoss) as a prior.

The GR700XD's pupil wheel settles a few hundredths of a degree from its commanded position,
which rotates the strongly curved SOSS traces; ``pastasoss.get_soss_traces`` predicts both
orders' traces for any ``PWCPOS`` (SUBSTRIP256 rows, DMS orientation).  Here that prediction
is the shape of the reference trace, and the data decide the two free parameters the physics
leaves open: the wheel angle actually reached (``pwcpos + dpwcpos``) and a cross-dispersion
offset ``dy`` (target acquisition), one of each for the exposure, shared by both orders.  They
are fitted by robust weighted least squares to the per-column centres of the exposure, so
contaminated or faint columns cannot bend the trace.  The centres are measured in pastasoss's
own centre convention (:mod:`~tso_steps.trace.soss_centre`), so ``dy`` is where the star is,
not the difference between two definitions of the centre of SOSS's two-horned profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.stats import MAD_TO_SIGMA
from tso_steps.trace.soss_centre import soss_profile_centre

__all__ = [
    "SOSS_PWCPOS_RANGE",
    "SossPrior",
    "SossTracePrior",
    "fit_soss_orders",
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
    """Fit pastasoss's trace of one order (wheel angle and offset free) to its column centres.

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
    clip, iterations : float, int
        See :func:`fit_soss_orders`.

    Returns
    -------
    SossPrior
    """
    fits = fit_soss_orders({order: (centers, errors)}, pwcpos, subarray, ystart, clip, iterations)
    return fits[order]


class _Order:
    """One order's measured centres and pastasoss model during a joint fit."""

    def __init__(self, order, centers, errors, pwcpos, subarray, ystart):
        self.order = order
        self.centers = np.asarray(centers, dtype=np.float64)
        self.args = (order, self.centers.size, subarray, ystart)
        self.header = soss_prior_centres(pwcpos, *self.args)
        errors = np.asarray(errors, dtype=np.float64)
        self.good = (
            np.isfinite(self.centers)
            & np.isfinite(errors)
            & (errors > 0)
            & np.isfinite(self.header)
        )
        self.errors = np.where(self.good, errors, np.inf)
        self.weight = 1.0 / self.errors
        self.model = self.header

    def design(self, pwcpos, dy):
        """Model at ``pwcpos``, its slope in PWCPOS, and the columns usable for the fit."""
        self.model = soss_prior_centres(pwcpos, *self.args) + dy
        plus = soss_prior_centres(pwcpos + _DERIVATIVE_STEP, *self.args) + dy
        slope = (plus - self.model) / _DERIVATIVE_STEP
        use = self.good & np.isfinite(slope) & np.isfinite(self.model)
        return slope, use

    def reweight(self, clip):
        """Robust weights and kept columns from the residuals about the current model."""
        residual = self.centers - self.model
        use = self.good & np.isfinite(self.model)
        extra = MAD_TO_SIGMA * np.median(np.abs(residual[use])) if use.any() else 0.0
        self.weight = 1.0 / np.sqrt(self.errors**2 + extra**2)
        kept = self.good & np.isfinite(self.model) & (np.abs(residual * self.weight) <= clip)
        changed = kept.sum() != self.good.sum()
        if kept.sum() >= 3:
            self.good = kept
        return changed


def fit_soss_orders(measured, pwcpos, subarray="SUBSTRIP256", ystart=None, clip=4.0, iterations=6):
    """Fit one wheel angle and one offset, shared by the orders, to their column centres.

    The pupil wheel has one angle and the star one position per exposure, so both orders
    move together; fitting them jointly keeps the faint, short order 2 (whose columns all
    lie on one side of its pivot, where a rotation and an offset are nearly degenerate) from
    turning its model's shape errors into a wheel angle of its own.

    Parameters
    ----------
    measured : dict
        ``order -> (centers, errors)``: per-column centres and 1-sigma errors, shape
        ``(n_disp,)`` (NaN: not measured).
    pwcpos : float
        Header pupil-wheel position, degrees.
    subarray : str
    ystart : int, optional
        See :func:`soss_prior_centres`.
    clip : float
        Columns whose residual exceeds ``clip`` times the robust scatter of their order's
        normalised residuals are left out, iteratively.
    iterations : int
        Gauss-Newton / rejection rounds.

    Returns
    -------
    dict
        ``order -> SossPrior``, all with the same ``dpwcpos`` and ``dy``.
    """
    orders = [_Order(k, c, e, pwcpos, subarray, ystart) for k, (c, e) in measured.items()]
    dpw, dy = 0.0, 0.0
    if sum(int(o.good.sum()) for o in orders) >= 3:
        # Weights: per-column error plus the scatter of each order's columns about the model,
        # re-estimated every round.  Real columns scatter about any model far more than their
        # photon errors (profile changes, contaminants), so noise-only weights would let a
        # few bright columns decide the fit.
        for _ in range(iterations):
            rows, rhs = [], []
            for o in orders:
                slope, use = o.design(pwcpos + dpw, dy)
                w = o.weight[use]
                rows.append(np.stack([slope[use], np.ones(use.sum())], axis=1) * w[:, None])
                rhs.append((o.centers[use] - o.model[use]) * w)
            step, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
            dpw += float(step[0])
            dy += float(step[1])
            changed = False
            for o in orders:
                o.design(pwcpos + dpw, dy)
                changed |= o.reweight(clip)
            if abs(step[0]) < 1e-5 and abs(step[1]) < 1e-4 and not changed:
                break
    low, high = SOSS_PWCPOS_RANGE
    if not low <= pwcpos + dpw <= high:
        log.warning(
            "Fitted PWCPOS %.4f deg is outside pastasoss's calibrated range %.3f-%.3f deg; "
            "the prior trace is an extrapolation.",
            pwcpos + dpw,
            low,
            high,
        )
    return {o.order: SossPrior(o.model, o.header, dpw, dy, o.good) for o in orders}


@dataclass
class SossTracePrior:
    """pastasoss's trace of one SOSS order, as a prior for :func:`reference_trace`.

    Centres are measured in pastasoss's convention (:meth:`profile_centre`).  Priors built
    with the same ``shared`` dictionary fit one wheel angle and one offset to all their
    orders together (:func:`fit_soss_orders`); without it each order is fitted alone.

    Attributes
    ----------
    pwcpos : float
        Header pupil-wheel position, degrees.
    order : int
    subarray : str
    ystart : int or None
    shared : dict or None
        ``order -> (centers, errors)`` of every order measured so far, common to the priors
        of one exposure (filled by :meth:`fit`).
    last : SossPrior or None
        The most recent fit (set by :meth:`fit`).

    Examples
    --------
    >>> shared = {}
    >>> priors = [SossTracePrior(245.778671, k, shared=shared) for k in (1, 2)]
    >>> ref = reference_trace(median, variance, norders=2, priors=priors)  # doctest: +SKIP
    """

    pwcpos: float
    order: int
    subarray: str = "SUBSTRIP256"
    ystart: int | None = None
    shared: dict | None = None
    last: SossPrior | None = None

    def initial(self, n_disp):
        """Centres at the header's PWCPOS (first guess of the windows)."""
        return soss_prior_centres(self.pwcpos, self.order, n_disp, self.subarray, self.ystart)

    @staticmethod
    def profile_centre(u, value):
        """pastasoss's centre of a profile (:func:`~.soss_centre.soss_profile_centre`)."""
        return soss_profile_centre(u, value)

    def fit(self, centers, errors):
        """Fit wheel angle and offset to this order's centres (and the shared orders')."""
        measured = self.shared if self.shared is not None else {}
        measured[self.order] = (centers, errors)
        fits = fit_soss_orders(measured, self.pwcpos, self.subarray, self.ystart)
        self.last = fits[self.order]
        return self.last
