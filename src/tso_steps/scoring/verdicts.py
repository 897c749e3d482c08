"""Verdicts of ``tso-steps demo``: each step judged against the injected truth, in plain words.

A correction step is judged by the error left against the truth after it ran and the error
an uncorrected reduction would have had: "improved", "did nothing" (the two agree within
``tolerance``) or "worse than uncorrected".  A measurement step (trace, centroid, jitter) is
judged the same way, its "uncorrected" error being the injected motion itself (what a
constant position would miss).  The summary states every verdict in the same words, so a
step that changed nothing or did harm is never reported as a success.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "IMPROVED",
    "NOTHING",
    "WORSE",
    "classify",
    "judge_correction",
    "judge_depth",
    "judge_recall",
    "judge_scatter",
    "judge_spectrum",
]

IMPROVED = "improved"
NOTHING = "did nothing"
WORSE = "worse than uncorrected"


def classify(before, after, tolerance=0.05):
    """Compare an error against the truth without (``before``) and with the step (``after``).

    Parameters
    ----------
    before, after : float
        Error without and with the step (same unit, >= 0).
    tolerance : float
        Relative change below which the step is said to have done nothing.

    Returns
    -------
    str
        :data:`IMPROVED`, :data:`NOTHING` or :data:`WORSE`.
    """
    before, after = float(before), float(after)
    if not (np.isfinite(before) and np.isfinite(after)):
        return NOTHING
    scale = max(abs(before), np.finfo(float).tiny)
    if abs(after - before) <= tolerance * scale:
        return NOTHING
    return IMPROVED if after < before else WORSE


def judge_correction(what, before, after, unit, floor=None, tolerance=0.05, digits=4):
    """One sentence on a step's effect on an error measured against the truth.

    Parameters
    ----------
    what : str
        What the error is (e.g. "1/f stripes left in the group differences").
    before, after : float
        Error without and with the step.
    unit : str
    floor : float, optional
        Error below which the quantity cannot be measured on these data (e.g. the white-noise
        error of a line estimate); when ``before`` is below it, doing nothing is the right
        outcome and the sentence says so.
    tolerance : float
        See :func:`classify`.
    digits : int
        Significant digits printed.

    Returns
    -------
    verdict : str
        :data:`IMPROVED`, :data:`NOTHING` or :data:`WORSE`.
    text : str
    """
    verdict = classify(before, after, tolerance)
    b, a = f"{before:.{digits}g}", f"{after:.{digits}g}"
    if verdict == IMPROVED:
        text = f"improved: {what} cut from {b} to {a} {unit}"
    elif verdict == WORSE:
        text = f"WORSE THAN UNCORRECTED: {what} rose from {b} to {a} {unit}"
    else:
        text = f"DID NOTHING: {what} {b} {unit} without the step, {a} {unit} with it"
    if floor is not None and np.isfinite(floor):
        if before <= floor:
            text += (
                f"; the injected level is below the {floor:.{digits}g} {unit} at which it can be "
                "measured on these data, so leaving it is the right outcome"
            )
        else:
            text += f" (measurable down to {floor:.{digits}g} {unit})"
    return verdict, text


def judge_depth(pull, limit=3.0):
    """Words for a recovered transit depth ``pull`` sigma away from the injected one.

    Parameters
    ----------
    pull : float
        (recovered - injected) / error.
    limit : float
        Pulls beyond this many sigma are called biased.

    Returns
    -------
    str
    """
    if not np.isfinite(pull):
        return "no depth could be fitted"
    if abs(pull) <= limit:
        return f"consistent with the injected depth ({pull:+.1f} sigma)"
    return f"BIASED: {pull:+.1f} sigma from the injected depth"


def judge_recall(found, total, good=0.99):
    """Words for a detection recall (jumps, outliers).

    Parameters
    ----------
    found, total : int
        Injected events detected, and injected events.
    good : float
        Recall at and above which the detection is called complete.

    Returns
    -------
    str
    """
    if total == 0:
        return "nothing was injected to find"
    recall = found / total
    if recall >= good:
        return f"found {found} of {total} ({recall:.1%})"
    return f"MISSED {total - found} of {total} (recall {recall:.1%})"


def judge_spectrum(chi2, limit=2.0):
    """Words for the transmission spectrum's chi-square per channel against the truth.

    Parameters
    ----------
    chi2 : float
        Mean squared pull of the channels.
    limit : float
        Above this the spectrum is called inconsistent with the truth.

    Returns
    -------
    str
    """
    if chi2 <= limit:
        return f"consistent with the injected spectrum (chi2/channel {chi2:.2f})"
    return f"INCONSISTENT with the injected spectrum (chi2/channel {chi2:.2f})"


def judge_scatter(measured, expected, limit=1.5):
    """Words for a light curve's scatter against the noise the reduction itself reports.

    Parameters
    ----------
    measured : float
        Scatter about the fit, relative flux.
    expected : float
        Median per-integration error the products report (relative flux); NaN if unknown.
    limit : float
        Ratios above this are called too noisy.

    Returns
    -------
    str
    """
    text = f"scatter {measured * 1e6:.0f} ppm per integration"
    if not (np.isfinite(expected) and expected > 0):
        return text
    ratio = measured / expected
    words = f"{ratio:.2f} x the {expected * 1e6:.0f} ppm the products' errors predict"
    if ratio > limit:
        return f"TOO NOISY: {text}, {words}"
    return f"{text} ({words})"
