"""Real JWST frames of tests/data/real/ as datamodels with the headers calwebb writes."""

from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

REAL = Path(__file__).parent / "data" / "real"
SOSS_FRAME = REAL / "jw01512001001_03102_00001_nis_demo_pwcpos_245.778671.npy"
SOSS_PWCPOS = 245.778671
F277W_FRAME = REAL / "exotedrf_soss_f277w_median_cut_x0-767.npy"
DONUT_FRAME = REAL / "eureka_wasp39_nircam_f210m_wlp8_medflux_cut_x292-803.npy"
NIRSPEC_FRAME = REAL / "eureka_nirspec_prism_pid6456_medflux.npy"
#: Eureka's mean per-integration Gaussian trace centre of the NIRSpec exposure, 0-based row.
NIRSPEC_EUREKA_CENTRE = 13.744
#: Eureka's centroid of the same integrations, in the cut-out's 0-based pixels (x, y).
DONUT_EUREKA_CENTROID = (548.57 - 292, 161.48)
# Pixels far below the background (-68188 DN/s at worst) are DO_NOT_USE pixels the frame kept.
_DEAD_BELOW = -50.0
_READ_NOISE = 0.3  # DN/s per pixel per integration, a typical SOSS rateints level


def soss_frame():
    """The program 1512 median SOSS rateints frame (DN/s, 256 x 2048) and its bad pixels."""
    frame = np.load(SOSS_FRAME).astype(np.float64)
    return frame, frame < _DEAD_BELOW


def soss_cube(nints=4, seed=0, pwcpos=SOSS_PWCPOS, gain_time=50.0):
    """A NIS_SOSS rateints CubeModel: the real frame plus independent noise per integration.

    Parameters
    ----------
    nints : int
    seed : int
    pwcpos : float or None
        PWCPOS written to the header (None: keyword absent).
    gain_time : float
        Electrons per DN/s of the noise model (sets the photon noise).
    """
    frame, bad = soss_frame()
    rng = np.random.default_rng(seed)
    rate = np.where(bad, 0.0, frame)
    var_p = np.clip(rate, 0.0, None) / gain_time
    var_r = np.full(rate.shape, _READ_NOISE**2)
    data = rate + rng.normal(size=(nints, *rate.shape)) * np.sqrt(var_p + var_r)
    model = datamodels.CubeModel(data.astype(np.float32))
    model.var_poisson = np.broadcast_to(var_p, data.shape).astype(np.float32)
    model.var_rnoise = np.broadcast_to(var_r, data.shape).astype(np.float32)
    model.err = np.sqrt(model.var_poisson + model.var_rnoise)
    model.dq = np.broadcast_to(np.where(bad, 1, 0), data.shape).astype(np.uint32)
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = "NIRISS"
    meta.instrument.detector = "NIS"
    meta.instrument.filter = "CLEAR"
    meta.instrument.pupil = "GR700XD"
    if pwcpos is not None:
        meta.instrument.pupil_position = float(pwcpos)
    meta.exposure.type = "NIS_SOSS"
    meta.exposure.readpatt = "NISRAPID"
    meta.exposure.nints = nints
    meta.exposure.ngroups = 9
    meta.exposure.nframes = 1
    meta.exposure.groupgap = 0
    meta.exposure.noutputs = 1
    meta.exposure.frame_time = 5.494
    meta.exposure.group_time = 5.494
    meta.exposure.integration_time = 9 * 5.494
    meta.subarray.name = "SUBSTRIP256"
    meta.subarray.xstart, meta.subarray.ystart = 1, 1793
    meta.subarray.xsize, meta.subarray.ysize = 2048, 256
    meta.subarray.fastaxis, meta.subarray.slowaxis = -2, -1
    meta.visit.tsovisit = True
    meta.observation.date = "2022-07-06"
    meta.observation.time = "00:00:00.000"
    meta.program.pid = "1512"
    meta.bunit_data = "DN/s"
    meta.bunit_err = "DN/s"
    start = 59766.0
    duration = 10 * 5.494 / 86400.0
    table = np.zeros(
        nints,
        dtype=[
            ("integration_number", "i4"),
            *[
                (f"int_{w}_{s}", "f8")
                for s in ("MJD_UTC", "BJD_TDB")
                for w in ("start", "mid", "end")
            ],
        ],
    )
    table["integration_number"] = np.arange(1, nints + 1)
    for scale in ("MJD_UTC", "BJD_TDB"):
        begin = start + np.arange(nints) * duration
        table[f"int_start_{scale}"] = begin
        table[f"int_mid_{scale}"] = begin + duration / 2
        table[f"int_end_{scale}"] = begin + duration
    model.int_times = table
    return model


def f277w_frame():
    """The exoTEDRF SOSS F277W median frame cut-out (DN/s, 256 x 768, no header)."""
    return np.load(F277W_FRAME).astype(np.float64)


def donut_cube(shifts, seed=0, read_noise=8.0):
    """NRC_TSIMAGE rateints from the real WASP-39 weak-lens frame, shifted per integration.

    Each integration is the frame (electrons) with its sky level removed, moved by
    ``shifts[i] = (dx, dy)`` pixels (cubic spline), the sky put back, plus photon and read
    noise.  The frame is itself a median of 4 noisy integrations, so its pixel noise moves
    with the source: shifts are measured against a slightly noisy truth.

    Parameters
    ----------
    shifts : ndarray, shape ``(nints, 2)``
    seed : int
    read_noise : float
        Electrons per pixel per integration.
    """
    from scipy import ndimage

    frame = np.load(DONUT_FRAME).astype(np.float64)
    sky = float(np.median(frame[:40]))
    source = frame - sky
    variance = np.clip(frame, 0.0, None) + read_noise**2
    rng = np.random.default_rng(seed)
    nints = len(shifts)
    data = np.empty((nints, *frame.shape))
    for i, (dx, dy) in enumerate(shifts):
        moved = ndimage.shift(source, (dy, dx), order=3, mode="constant") + sky
        data[i] = moved + rng.normal(size=frame.shape) * np.sqrt(variance)
    model = _cube_with_noise_arrays(data, frame, read_noise)
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = "NIRCAM"
    meta.instrument.detector = "NRCA3"
    meta.instrument.filter = "F210M"
    meta.instrument.pupil = "WLP8"
    meta.instrument.channel = "SHORT"
    meta.exposure.type = "NRC_TSIMAGE"
    meta.exposure.nints = nints
    meta.visit.tsovisit = True
    meta.observation.date = "2022-07-30"
    meta.observation.time = "19:28:00.000"
    return model


def _cube_with_noise_arrays(data, frame, read_noise):
    """A CubeModel of ``data`` with the Poisson (from ``frame``) and read-noise variances."""
    model = datamodels.CubeModel(data.astype(np.float32))
    model.var_poisson = np.broadcast_to(np.clip(frame, 0.0, None), data.shape).astype(np.float32)
    model.var_rnoise = np.full(data.shape, read_noise**2, dtype=np.float32)
    model.err = np.sqrt(model.var_poisson + model.var_rnoise)
    model.dq = np.zeros(data.shape, dtype=np.uint32)
    return model


def nirspec_cube(shifts, seed=0, read_noise=10.0):
    """NRS_BRIGHTOBJ rateints from the real PID 6456 PRISM frame, shifted across the dispersion.

    Integration ``i`` is the frame (electrons, background-subtracted) moved by ``shifts[i]``
    rows (cubic spline), plus photon and read noise.
    """
    from scipy import ndimage

    frame = np.load(NIRSPEC_FRAME).astype(np.float64)
    variance = np.clip(frame, 0.0, None) + read_noise**2
    rng = np.random.default_rng(seed)
    data = np.stack(
        [
            ndimage.shift(frame, (dy, 0.0), order=3, mode="nearest")
            + rng.normal(size=frame.shape) * np.sqrt(variance)
            for dy in shifts
        ]
    )
    model = _cube_with_noise_arrays(data, frame, read_noise)
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = "NIRSPEC"
    meta.instrument.detector = "NRS1"
    meta.instrument.filter = "CLEAR"
    meta.instrument.grating = "PRISM"
    meta.exposure.type = "NRS_BRIGHTOBJ"
    meta.exposure.nints = len(shifts)
    meta.visit.tsovisit = True
    meta.subarray.name = "SUB512"
    meta.observation.date = "2024-07-12"
    meta.observation.time = "11:16:00.000"
    meta.program.pid = "6456"
    return model
