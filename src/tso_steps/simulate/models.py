"""Datamodel plumbing: readout/exposure metadata and the ``int_times`` table.

Times
-----
Integration ``i`` (0-based) starts ``i * duration`` after the exposure start, where
``duration`` is one reset frame plus all frames of the ramp (:class:`ReadPlan`).  Its start is
the start of its reset frame and its end the end of its last read frame; ``int_mid`` is the
average.  BJD_TDB values are stored, like the MJD_UTC ones, as MJD-style numbers (days):
``BJD_TDB = MJD_UTC + (TT_MINUS_UTC + BARYCENTRIC_CORRECTION) / 86400``, i.e. TT-UTC plus a
fixed light-travel-time correction to the solar-system barycentre (a constant stands in for
the real, pointing-dependent value, which changes by < 0.1 s over a typical TSO).

Exposure keywords
-----------------
``TGROUP = (NFRAMES + GROUPGAP) * TFRAME``; ``EFFINTTM = (NGROUPS - 1) * TGROUP + NFRAMES *
TFRAME`` (the last group's mean read time minus the first's, plus the first group);
``EFFEXPTM = XPOSURE = NINTS * EFFINTTM``; ``TMEASURE = NINTS * (NGROUPS - 1) * TGROUP``;
``DURATION = TELAPSE = NINTS * duration``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
from astropy.time import Time

__all__ = [
    "BARYCENTRIC_CORRECTION",
    "TT_MINUS_UTC",
    "int_times_table",
    "set_metadata",
]

log = logging.getLogger("stpipe.tso_steps.simulate")

#: TT - UTC in seconds (37 leap seconds + 32.184 s), valid since 2017.
TT_MINUS_UTC = 69.184
#: Fixed barycentric light-travel-time correction applied to every simulated time, seconds.
BARYCENTRIC_CORRECTION = 120.0

_INT_TIMES_DTYPE = [
    ("integration_number", "i4"),
    ("int_start_MJD_UTC", "f8"),
    ("int_mid_MJD_UTC", "f8"),
    ("int_end_MJD_UTC", "f8"),
    ("int_start_BJD_TDB", "f8"),
    ("int_mid_BJD_TDB", "f8"),
    ("int_end_BJD_TDB", "f8"),
]


def to_bjd_tdb(mjd_utc):
    """Simulated BJD_TDB (MJD-style, days) of an MJD_UTC time (see the module notes)."""
    return np.asarray(mjd_utc, float) + (TT_MINUS_UTC + BARYCENTRIC_CORRECTION) / 86400.0


def int_times_table(nints, start_mjd, plan):
    """The ``int_times`` table of a simulated exposure.

    Parameters
    ----------
    nints : int
    start_mjd : float
        Exposure start, MJD (UTC).
    plan : ReadPlan

    Returns
    -------
    ndarray
        Structured array with the columns of the ``int_times`` schema.
    """
    duration = plan.integration_duration / 86400.0
    start = start_mjd + np.arange(nints) * duration
    end = start + duration
    table = np.zeros(nints, dtype=_INT_TIMES_DTYPE)
    table["integration_number"] = np.arange(1, nints + 1)
    for name, value in (("start", start), ("mid", 0.5 * (start + end)), ("end", end)):
        table[f"int_{name}_MJD_UTC"] = value
        table[f"int_{name}_BJD_TDB"] = to_bjd_tdb(value)
    return table


def set_metadata(
    model,
    *,
    mode,
    element,
    subarray,
    window,
    noutputs,
    readpatt,
    plan,
    nints,
    start_mjd,
    target,
    product,
):
    """Fill the metadata of a simulated RampModel or CubeModel.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.RampModel` or `~stdatamodels.jwst.datamodels.CubeModel`
        Modified in place.
    mode : ModeSpec
    element : Element
    subarray : Subarray
    window : tuple of int
        ``(y0, x0, ny, nx)`` of the simulated array within the subarray.
    noutputs : int
    readpatt : str
    plan : ReadPlan
    nints : int
    start_mjd : float
        Exposure start, MJD (UTC).
    target : str
        Target name.
    product : {"uncal", "rateints"}
        Sets BUNIT and the file name suffix.
    """
    y0, x0, ny, nx = window
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = mode.instrument
    meta.instrument.detector = mode.detector
    meta.instrument.filter = element.filter
    for key, value in (
        ("pupil", element.pupil),
        ("grating", element.grating),
        ("fixed_slit", element.fixed_slit),
        ("channel", mode.channel),
        ("module", mode.module),
    ):
        if value is not None:
            setattr(meta.instrument, key, value)

    exp = meta.exposure
    exp.type = mode.exp_type
    exp.readpatt = readpatt
    exp.nframes = plan.nframes
    exp.groupgap = plan.groupgap
    exp.frame_divisor = plan.nframes
    exp.ngroups = plan.ngroups
    exp.nints = nints
    exp.integration_start = 1
    exp.integration_end = nints
    exp.noutputs = noutputs
    exp.nresets_at_start = 1
    exp.nresets_between_ints = 1
    exp.drop_frames1 = 0
    exp.drop_frames3 = 0
    exp.nsamples = 1
    exp.sample_time = 10.0
    exp.frame_time = plan.frame_time
    exp.group_time = (plan.nframes + plan.groupgap) * plan.frame_time
    effint = (plan.ngroups - 1) * exp.group_time + plan.nframes * plan.frame_time
    exp.integration_time = effint
    exp.exposure_time = nints * effint
    exp.effective_exposure_time = nints * effint
    exp.measurement_time = nints * (plan.ngroups - 1) * exp.group_time
    exp.duration = nints * plan.integration_duration
    exp.elapsed_exposure_time = nints * plan.integration_duration
    end_mjd = start_mjd + nints * plan.integration_duration / 86400.0
    mid_mjd = 0.5 * (start_mjd + end_mjd)
    for name, value in (("start", start_mjd), ("mid", mid_mjd), ("end", end_mjd)):
        setattr(exp, f"{name}_time", value)
        setattr(exp, f"{name}_time_mjd", value)
        setattr(exp, f"{name}_time_tdb", float(to_bjd_tdb(value)))

    sub = meta.subarray
    sub.name = subarray.name
    sub.xstart = subarray.xstart + x0
    sub.ystart = subarray.ystart + y0
    sub.xsize = nx
    sub.ysize = ny
    sub.fastaxis = mode.fastaxis
    sub.slowaxis = mode.slowaxis

    meta.visit.tsovisit = True
    meta.target.proposer_name = target
    meta.target.catalog_name = target
    start = Time(start_mjd, format="mjd", scale="utc")
    iso = start.isot
    meta.observation.date = iso[:10]
    meta.observation.time = iso[11:23]
    meta.observation.date_beg = iso
    meta.observation.date_end = Time(end_mjd, format="mjd", scale="utc").isot
    meta.date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    meta.filename = f"sim_{mode.exp_type.lower()}_{product}.fits"
    meta.bunit_data = "DN" if product == "uncal" else "DN/s"
    if product != "uncal":
        meta.bunit_err = "DN/s"
    model.int_times = int_times_table(nints, start_mjd, plan)
