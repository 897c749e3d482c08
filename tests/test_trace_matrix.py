"""tso_trace on profiles it was not written for: modes x PSF families x breathing.

The families (:mod:`tso_steps.simulate.psf_families`) are drawn independently of the
tracer's profile model; breathing changes the FWHM by per-cent amounts (smooth drift plus
a step at the tilt event).  Every cell compares the per-integration position error with the
Cramer-Rao bound of that cell's true profile and noise, and with the simple baseline (a
flux-weighted centre per column).  Cells where tso_trace does not yet reach 1.15 x CRB are
marked ``xfail(strict=True)`` with the ratio measured when they were written, so a fix that
reaches the target shows up as XPASS and the mark must then go.
"""

import functools
import logging
import warnings

import numpy as np
import pytest

from tso_steps.scoring import score_trace_shifts, simulate_trace_case
from tso_steps.simulate import simulate_tso
from tso_steps.simulate.psf_families import Breathing, get_family
from tso_steps.trace import measure_trace

CROPS = {
    "NRC_TSGRISM": (40, 128),
    "NIS_SOSS": (80, 128),
    "NRS_BRIGHTOBJ": (32, 128),
    "MIR_LRS-SLITLESS": (128, 40),
}
FAMILIES = ("diffraction", "undersampled", "moffat")
NINTS = 60
# Cells measured above 1.15 x CRB on seed 3 (ratio in the reason; before the fit against the
# mean frame with the information window, the two shift models and the smoothed width: on
# main at 463ff05).
KNOWN_ABOVE = {
    ("NRS_BRIGHTOBJ", "diffraction", False): "1.21x CRB (1.45x before): the width "
    "estimates follow the shifts (slope -0.19) and the smoothed width with them (7.4 edf)",
    ("NRS_BRIGHTOBJ", "undersampled", True): "1.18x CRB (1.17x before)",
    ("NRS_BRIGHTOBJ", "moffat", False): "1.27x CRB (1.41x before)",
    ("NRS_BRIGHTOBJ", "moffat", True): "1.24x CRB (1.25x before)",
    ("MIR_LRS-SLITLESS", "diffraction", True): "1.28x CRB (1.17x before; on seeds 1, 2, 4, 5 "
    "0.93-1.20x, before 1.28-1.70x): the width change leaks into the shift (-0.29 px per "
    "unit)",
}


@functools.cache
def _scores(mode, family, breathing):
    """(tso_trace error, flux-weighted-centre error, CRB), px, for one matrix cell."""
    logging.disable(logging.INFO)
    try:
        sim = simulate_trace_case(mode, family, breathing, seed=3, nints=NINTS, crop=CROPS[mode])
        ref, positions, _ = measure_trace(sim.rateints)
    finally:
        logging.disable(logging.NOTSET)
    score = score_trace_shifts(sim, positions.shift, ref.center[0], ref.halfwidth[0])
    return score["trace"], score["com"], score["crb"]


def _params():
    for mode in CROPS:
        for family in FAMILIES:
            for breathing in (False, True):
                marks = ()
                if (mode, family, breathing) in KNOWN_ABOVE:
                    reason = KNOWN_ABOVE[mode, family, breathing]
                    marks = (pytest.mark.xfail(strict=True, reason=reason),)
                yield pytest.param(mode, family, breathing, marks=marks)


@pytest.mark.parametrize(("mode", "family", "breathing"), list(_params()))
def test_position_error_is_within_cramer_rao(mode, family, breathing):
    error, com, crb = _scores(mode, family, breathing)
    print(f"{mode} {family} breathing={breathing}: {error / crb:.3f} CRB (centre {com / crb:.3f})")
    assert error <= 1.15 * crb


@pytest.mark.parametrize(
    ("mode", "family", "breathing"),
    [(m, f, b) for m in CROPS for f in FAMILIES for b in (False, True)],
)
def test_position_error_is_not_worse_than_flux_weighted_centre(mode, family, breathing):
    error, com, crb = _scores(mode, family, breathing)
    assert error <= com


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fwhm", [1.6, 2.4, 21.0])
def test_breathing_keeps_the_profile_centroid(family, fwhm):
    # Noiseless pixel values on a wide array: their centroid is the truth whatever the width.
    profile = get_family(family, fwhm)
    rows = np.arange(-400, 401, dtype=float)[:, None] - 0.3
    centroids = []
    for scale in (0.98, 1.0, 1.03):
        values = profile.pixel_values(rows, np.array([fwhm * scale]))
        assert abs(values.sum() - 1) < 2e-3
        centroids.append(np.sum(values * rows) / values.sum())
    # A 5 % width change moves the sampled centroid by far less than any CRB of the matrix
    # (>= 0.0019 px); what remains is the intra-pixel response's (the undersampled family's
    # gradient across the pixel) and the tabulation's (Moffat wings), <= 6e-4 px.
    assert np.ptp(centroids) < 1e-3
    # The profile is drawn about its centroid (the undersampled family's asymmetric pixel
    # response moves the sampled centroid by 0.02 px, a constant).
    assert abs(centroids[1]) < 0.03


def test_breathing_is_a_drift_plus_a_step_and_default_output_is_unchanged():
    kwargs = dict(nints=30, ngroups=2, seed=4, crop=(32, 64), products=("rateints",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = simulate_tso("NRS_BRIGHTOBJ", **kwargs)
        again = simulate_tso("NRS_BRIGHTOBJ", breathing=False, psf_family="default", **kwargs)
        breathing = simulate_tso(
            "NRS_BRIGHTOBJ",
            breathing=Breathing(amplitude=0.02, step=0.01, step_integration=12),
            **kwargs,
        )
    np.testing.assert_array_equal(plain.rateints.data, again.rateints.data)
    np.testing.assert_array_equal(plain.truth.width_scale, 1.0)
    scale = breathing.truth.width_scale
    assert abs(abs(scale[12] - scale[11]) - 0.01) < 0.003
    assert 0.015 < np.ptp(scale) < 0.04
    # The jitter, photon and read noise streams are those of the plain run.
    np.testing.assert_array_equal(plain.truth.shifts, breathing.truth.shifts)
    positions = breathing.truth.trace_positions()
    expected = plain.truth.trace_center[None] + plain.truth.shift_cross_dispersion[:, None, None]
    lit = np.isfinite(expected)
    np.testing.assert_allclose(positions[lit], expected[lit], atol=0.02)
