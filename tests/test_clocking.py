"""The simulator's readout model and the production one, held to the published frame times.

The simulator (``tso_steps.simulate.clocking``) and the steps (``tso_steps.readout``) each
have their own model of the detector clocking.  They are checked here against the frame
times JWST publishes, then against each other pixel by pixel, so that a timing or 1/f test
that compares a step with the simulator's truth compares two independent implementations.
"""

import numpy as np
import pytest

from tso_steps.readout import ReadoutGeometry
from tso_steps.simulate import MODES, simulate_tso
from tso_steps.simulate.clocking import DetectorClock

JDOX = "https://jwst-docs.stsci.edu"
_NIRCAM = f"{JDOX}/jwst-near-infrared-camera/nircam-instrumentation/nircam-detector-overview"
_NIRISS = (
    f"{JDOX}/jwst-near-infrared-imager-and-slitless-spectrograph/niriss-instrumentation/"
    "niriss-detector-overview"
)
_NIRSPEC = f"{JDOX}/jwst-near-infrared-spectrograph/nirspec-instrumentation/nirspec-detectors"
_MIRI = f"{JDOX}/jwst-mid-infrared-instrument"
NIRCAM_READOUT = f"{_NIRCAM}/nircam-detector-readout"
NIRCAM_SUBARRAYS = f"{_NIRCAM}/nircam-detector-subarrays"
NIRISS_SUBARRAYS = f"{_NIRISS}/niriss-detector-subarrays"
NIRSPEC_SUBARRAYS = f"{_NIRSPEC}/nirspec-detector-subarrays"
MIRI_SUBARRAYS = f"{_MIRI}/miri-instrumentation/miri-detector-overview/miri-detector-subarrays"
MIRI_LRS_TSO = f"{_MIRI}/miri-observing-modes/miri-time-series-observations/miri-lrs-tsos"

# (instrument, DMS shape, FASTAXIS, SLOWAXIS, NOUTPUTS, SUBSTRT1, SUBSTRT2, TFRAME as
# published (a string: its last digit sets the tolerance), source).  "formula" marks a value
# evaluated from the tframe formula printed on the cited page, all others are quoted.
PUBLISHED = [
    ("NIRCAM", (2048, 2048), -1, 2, 4, 1, 1, "10.73677", NIRCAM_READOUT),  # FULL
    # SUBGRISM256 with 4 and with 1 output (formula)
    ("NIRCAM", (256, 2048), -1, 2, 4, 1, 1, "1.34669", NIRCAM_SUBARRAYS),
    ("NIRCAM", (256, 2048), -1, 2, 1, 1, 1, "5.31480", NIRCAM_SUBARRAYS),
    ("NIRCAM", (64, 64), -1, 2, 1, 169, 169, "0.05016", NIRCAM_SUBARRAYS),  # SUB64P (formula)
    ("NIRISS", (256, 2048), -2, -1, 1, 1, 1793, "5.494", NIRISS_SUBARRAYS),  # SUBSTRIP256
    ("NIRISS", (96, 2048), -2, -1, 1, 1, 1803, "2.214", NIRISS_SUBARRAYS),  # SUBSTRIP96
    ("NIRSPEC", (32, 2048), 2, 1, 1, 1, 1032, "0.90156", NIRSPEC_SUBARRAYS),  # SUB2048
    ("MIRI", (416, 72), 1, 2, 4, 1, 529, "0.15904", MIRI_SUBARRAYS),  # SLITLESSPRISM
    ("MIRI", (416, 72), 1, 2, 4, 1, 529, "0.159", MIRI_LRS_TSO),  # SLITLESSPRISM, rounded
    ("MIRI", (1024, 1032), 1, 2, 4, 1, 1, "2.775", MIRI_SUBARRAYS),  # FULL, "nominal"
]


def _tolerance(text):
    decimals = len(text.split(".")[1])
    return 0.5 * 10.0**-decimals


@pytest.mark.parametrize(
    "instrument, shape, fastaxis, slowaxis, noutputs, xstart, ystart, published, source",
    PUBLISHED,
)
def test_both_readout_models_give_the_published_frame_time(
    instrument, shape, fastaxis, slowaxis, noutputs, xstart, ystart, published, source
):
    tolerance = _tolerance(published)
    clock = DetectorClock(instrument, shape, fastaxis, slowaxis, noutputs, xstart, ystart)
    geometry = ReadoutGeometry(
        instrument, shape, fastaxis, slowaxis, noutputs, xstart=xstart, ystart=ystart
    )
    assert clock.frame_time == pytest.approx(float(published), abs=tolerance), source
    assert geometry.frame_time == pytest.approx(float(published), abs=tolerance), source


def _cases():
    """Every simulated mode, subarray and output count, plus crops with odd origins."""
    for spec in MODES.values():
        for sub in spec.subarrays:
            for noutputs in spec.noutputs:
                yield spec, sub.shape, noutputs, sub.xstart, sub.ystart
    nircam, miri = MODES["NRC_TSGRISM"], MODES["MIR_LRS-SLITLESS"]
    yield nircam, (32, 128), 4, 501, 11
    yield miri, (40, 24), 4, 23, 600  # starts mid-group: groups on its left are skipped
    yield miri, (8, 12), 4, 1021, 1017  # reaches the right reference group


@pytest.mark.parametrize("spec, shape, noutputs, xstart, ystart", list(_cases()))
def test_simulator_schedule_agrees_with_production_pixel_by_pixel(
    spec, shape, noutputs, xstart, ystart
):
    axes = (spec.instrument, shape, spec.fastaxis, spec.slowaxis, noutputs)
    clock = DetectorClock(*axes, xstart=xstart, ystart=ystart)
    geometry = ReadoutGeometry(*axes, xstart=xstart, ystart=ystart)
    assert clock.frame_ticks == geometry.frame_ticks
    np.testing.assert_array_equal(clock.ticks, geometry.read_ticks())
    np.testing.assert_array_equal(clock.outputs, geometry.amplifier_map())
    np.testing.assert_array_equal(clock.positions, geometry.line_position())
    # every output reads each pixel once, at a distinct tick within the frame
    for k in range(noutputs):
        ticks = clock.ticks[clock.outputs == k]
        assert np.unique(ticks).size == ticks.size
    assert 0 <= clock.ticks.min() and clock.ticks.max() < clock.frame_ticks


def test_hxrg_outputs_read_alternating_directions():
    clock = DetectorClock("NIRCAM", (2, 16), 1, 2, 4)
    # four stripes of 4 columns; the second and fourth are read right to left
    np.testing.assert_array_equal(clock.ticks[0], [0, 1, 2, 3, 3, 2, 1, 0] * 2)
    np.testing.assert_array_equal(clock.ticks[1] - clock.ticks[0], 4 + 12)
    np.testing.assert_array_equal(clock.outputs[0], np.repeat(np.arange(4), 4))


def test_simulated_frame_time_is_the_simulator_clock():
    sim = simulate_tso(
        "NRS_BRIGHTOBJ", nints=2, ngroups=2, subarray="SUB512", products=("rateints",), seed=1,
        jitter=False, cosmic_rays=False, one_over_f=False, background=False,
    )  # fmt: skip
    assert sim.rateints.meta.exposure.frame_time == pytest.approx(0.22572, abs=5e-7)


@pytest.mark.parametrize(
    "args, match",
    [
        (("NIRCAM", (16, 30), -1, 2, 4), "do not divide among 4 outputs"),
        (("MIRI", (416, 72), 1, 2, 1), "4 outputs"),
        (("MIRI", (416, 72), 1, 2, 4, 1, 700), "not on the 1024 x 1032 MIRI detector"),
        (("FGS", (64, 64), 1, 2, 1), "no readout model"),
    ],
)
def test_impossible_readouts_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        DetectorClock(*args)
