"""`simulate_tso`: a simulated TSO exposure as uncal-like ramps, rateints and the truth."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
from stdatamodels.jwst.datamodels import CubeModel, RampModel

from .clocking import DetectorClock
from .effects import (
    Background,
    CosmicRays,
    DetectorNoise,
    Ipc,
    Jitter,
    TransitParameters,
    resolve_effect,
)
from .events import ipc_kernel
from .exposure import add_rate_effect, run_integrations
from .models import int_times_table, set_metadata
from .modes import READOUT_PATTERNS, get_mode
from .noise import CorrelatedNoise, draw_cosmic_rays, jitter_offsets
from .psf_families import Breathing, breathing_scale
from .ramp import ReadPlan
from .scene import Scene
from .truth import SimulationTruth, build_truth

__all__ = ["SimulationResult", "simulate_tso"]

log = logging.getLogger("stpipe.tso_steps.simulate")

_PRODUCTS = ("ramp", "rateints")


@dataclass
class SimulationResult:
    """The products of :func:`simulate_tso`.

    Attributes
    ----------
    ramp : `~stdatamodels.jwst.datamodels.RampModel` or None
        uncal-like ramps, DN.
    rateints : `~stdatamodels.jwst.datamodels.CubeModel` or None
        Per-integration slopes, DN/s, with ERR, VAR_POISSON and VAR_RNOISE.
    truth : SimulationTruth
    """

    ramp: RampModel | None
    rateints: CubeModel | None
    truth: SimulationTruth


def simulate_tso(
    mode,
    nints=20,
    ngroups=5,
    *,
    subarray=None,
    noutputs=None,
    element=None,
    readpatt=None,
    crop=None,
    crop_origin=None,
    seed=None,
    transit=True,
    jitter=True,
    cosmic_rays=True,
    one_over_f=True,
    one_over_f_spectrum=None,
    background=True,
    photon_noise=True,
    read_noise=True,
    saturation=False,
    source=True,
    brightness=1.0,
    bias=0.0,
    flag_jumps=False,
    products=_PRODUCTS,
    keep_group_noise=False,
    start_time=60300.0,
    target="SIM-TSO",
    psf_family="default",
    breathing=False,
    ipc=False,
):
    """Simulate a JWST time-series exposure with known, switchable effects.

    Parameters
    ----------
    mode : str
        Exposure type: ``NRC_TSGRISM``, ``NRC_TSIMAGE``, ``NIS_SOSS``, ``NRS_BRIGHTOBJ`` or
        ``MIR_LRS-SLITLESS`` (see :data:`~tso_steps.simulate.MODES` for the defaults).
    nints, ngroups : int
        Integrations and groups per integration.
    subarray : str, optional
        SUBARRAY name (default per mode: SUBGRISM256, SUB64P, SUBSTRIP256, SUB2048,
        SLITLESSPRISM).
    noutputs : int, optional
        Detector outputs (NIRCam grism: 4 or 1, default 4; others fixed).
    element : str, optional
        Optical configuration: NRC_TSGRISM filter (``F322W2``, ``F444W``), NRC_TSIMAGE pupil
        (``WLP8`` defocused, ``CLEAR`` in focus), NRS_BRIGHTOBJ grating (``PRISM``,
        ``G395H``); NIS_SOSS (``CLEAR``) and MIR_LRS-SLITLESS (``P750L``) have one.
    readpatt : str, optional
        Readout pattern (sets NFRAMES and GROUPGAP); default the mode's rapid pattern.
    crop : int or tuple of int, optional
        ``(ny, nx)`` of a cut-out to simulate instead of the whole subarray (fast tests).  The
        cut-out is treated as the readout region: XSTART/YSTART/XSIZE/YSIZE describe it,
        TFRAME and TGROUP are those of reading only it
        (:attr:`~tso_steps.simulate.clocking.DetectorClock.frame_time`), 1/f noise follows its read
        order, and SUBARRAY keeps the subarray's name.  Along the fast axis its size must
        divide among the outputs.
    crop_origin : tuple of int, optional
        ``(y0, x0)`` of the cut-out in the subarray (default: centred on the source).
    seed : int or sequence of int, optional
        Seed of the random streams (jitter, cosmic rays, photon noise, read noise, correlated
        noise each have their own, so switching one effect leaves the others' realisations
        unchanged).  None: fresh entropy, recorded in ``truth.seed``.
    transit : bool, mapping or TransitParameters
        Quadratic limb-darkened transit; spectroscopic modes add a transmission spectrum.
    jitter : bool, float, mapping or Jitter
        Per-integration pointing random walk (a float: its RMS, pixels) and tilt event.
    cosmic_rays : bool, float, mapping or CosmicRays
        Cosmic-ray hits (a float: rate per pixel per second).
    one_over_f : bool, mapping or DetectorNoise
        Read-order 1/f noise, pre-amp offsets and odd/even offsets.
    one_over_f_spectrum : mapping, optional
        Shape of the 1/f spectrum, replacing those fields of ``one_over_f``: ``alpha``
        (power-law index), ``knee`` (Hz, flat below) and ``white`` (white fraction of the
        variance); see :class:`~tso_steps.simulate.DetectorNoise`.
    background : bool, float, mapping or Background
        Smooth background (a float: its mean, electrons/s per pixel).
    photon_noise : bool
        Poisson noise of the collected charge.
    read_noise : bool or float
        White read noise per frame (True: the mode's value, a float: DN).
    saturation : bool or float
        Clip at a full well and flag SATURATED groups (True: the mode's level, a float: DN).
    source : bool
        Render the star (False: background and detector effects only).
    brightness : float
        Multiplies the mode's default source rates.
    bias : float
        Constant level added to every group, DN.
    flag_jumps : bool
        "As if jump had run": set JUMP_DET in GROUPDQ at each hit's first group (hits from
        group 1 on) and in the rateints DQ, and compute those rateints slopes with the hit
        removed.  Default False: DQ stays clean and the hits stay in the rateints.
    products : sequence of str
        Any of ``"ramp"`` and ``"rateints"``.  Without ``"ramp"`` no 4-D array is kept:
        integrations are simulated and fitted one at a time.
    keep_group_noise : bool
        Keep the correlated noise of every group in ``truth.group_noise`` (memory: one more
        ramp-sized float32 array).
    start_time : float
        Exposure start, MJD (UTC).
    target : str
        Target name (TARGPROP, TARGNAME).
    psf_family : str
        Cross-dispersion profile of spectroscopic modes: ``"default"`` (the mode's
        Gaussian/Lorentzian components), ``"diffraction"``, ``"undersampled"`` or ``"moffat"``
        (see :mod:`~tso_steps.simulate.psf_families`: shapes made independently of what
        ``tso_trace`` models).
    breathing : bool, mapping or Breathing
        PSF width breathing: a smooth FWHM drift plus a step at the tilt event (per-cent
        level, drawn from the seed), about the profile's centroid; the per-integration FWHM
        factor is ``truth.width_scale``.
    ipc : bool, float, mapping or Ipc
        Inter-pixel capacitance (a number: the side-neighbour coupling ``alpha``): the read
        frames are the collected charge convolved with a 3 x 3 kernel; the truth's
        ``source_image`` is convolved alike and ``truth.cosmic_rays`` lists what each hit
        leaks into its neighbours (rows of kind ``ipc``).  Large cosmic-ray events
        (snowballs, showers) are switched on through ``cosmic_rays``
        (:class:`CosmicRays` ``snowball_rate``, ``shower_rate``).

    Returns
    -------
    SimulationResult
        ``ramp`` (RampModel, DN), ``rateints`` (CubeModel, DN/s) and ``truth``.

    Notes
    -----
    Per integration: the scene (source with its transit flux at the integration mid-time and
    its jitter offset, plus background) gives the photo-current; charge accumulates with
    Poisson increments between reads, cosmic rays add from their hit time on, each frame gets
    read noise and correlated noise, and groups average NFRAMES frames.  The rateints are the
    ordinary least-squares slopes of the stored groups; VAR_POISSON and VAR_RNOISE are the
    exact variances of that estimator for the noiseless rate and the per-frame white noise
    (read noise plus the per-frame 1/f and odd/even variance), ERR their summed square root.
    With a read pattern of NFRAMES > 1 the covariance of the averaged frames is included.
    Where jwst's ramp_fit weights groups optimally, its slopes of bright pixels differ slightly
    from these least-squares slopes; for read-noise-limited pixels the two coincide.

    Memory: with ``"ramp"`` the 4-D float32 ramp and its uint8 GROUPDQ are kept; the
    rateints and ``truth.one_over_f`` add four float32 and one uint32 cube.  A full
    SUBGRISM256 exposure of 100 integrations x 5 groups holds about 2.7 GB in total.

    Examples
    --------
    A quick, noiseless NIRCam grism cut-out with nothing but the transit:

    >>> sim = simulate_tso("NRC_TSGRISM", nints=30, ngroups=3, crop=(32, 128), seed=1,
    ...                    jitter=False, cosmic_rays=False, one_over_f=False, background=False,
    ...                    photon_noise=False, read_noise=False, products=("rateints",))
    >>> white = sim.rateints.data.sum(axis=(1, 2))
    >>> bool(abs(white.min() / white[0] - sim.truth.light_curve.min()) < 1e-6)
    True
    """
    t_start = time.perf_counter()
    spec = get_mode(mode)
    sub = spec.subarray(subarray)
    elem = spec.element(element)
    noutputs = spec.noutputs[0] if noutputs is None else int(noutputs)
    if noutputs not in spec.noutputs:
        raise ValueError(f"{spec.exp_type} supports noutputs {spec.noutputs}, got {noutputs}.")
    readpatt = spec.readpatt[0] if readpatt is None else str(readpatt).upper()
    if readpatt not in spec.readpatt:
        raise ValueError(f"{spec.exp_type} supports readpatt {spec.readpatt}, got {readpatt!r}.")
    products = tuple(products)
    if not products or set(products) - set(_PRODUCTS):
        raise ValueError(f"products must be a non-empty subset of {_PRODUCTS}, got {products}.")
    if nints < 1 or ngroups < 2:
        raise ValueError("Need nints >= 1 and ngroups >= 2.")

    window = spec.crop_window(sub, elem, crop, crop_origin)
    shape = window[2:]
    try:
        clock = DetectorClock(
            spec.instrument,
            shape,
            spec.fastaxis,
            spec.slowaxis,
            noutputs,
            xstart=sub.xstart + window[1],
            ystart=sub.ystart + window[0],
        )
    except ValueError as err:
        raise ValueError(f"crop {shape} does not fit the readout: {err}") from err
    plan = ReadPlan(ngroups, *READOUT_PATTERNS[readpatt], clock.frame_time)

    effects = {
        "transit": resolve_effect(transit, TransitParameters, "transit"),
        "jitter": resolve_effect(jitter, Jitter, "jitter"),
        "cosmic_rays": resolve_effect(cosmic_rays, CosmicRays, "cosmic_rays"),
        "one_over_f": resolve_effect(one_over_f, DetectorNoise, "one_over_f"),
        "background": resolve_effect(background, Background, "background"),
        "photon_noise": bool(photon_noise),
        "read_noise": spec.read_noise if read_noise is True else float(read_noise or 0.0),
        "saturation": spec.full_well if saturation is True else (float(saturation) or None),
        "source": bool(source),
        "breathing": resolve_effect(breathing, Breathing, "breathing"),
        "ipc": resolve_effect(ipc, Ipc, "ipc"),
    }
    kernel = ipc_kernel(effects["ipc"])
    seq = np.random.SeedSequence(seed)
    # A sixth stream for breathing leaves the first five (and every existing result) as they were.
    rng_jitter, rng_cr, rng_photon, rng_read, rng_corr, rng_breathe = (
        np.random.default_rng(s) for s in seq.spawn(6)
    )
    tilt_at = None if effects["jitter"] is None else effects["jitter"].tilt_integration
    width_scale = breathing_scale(effects["breathing"], nints, rng_breathe, tilt_at)

    int_times = int_times_table(nints, start_time, plan)
    if effects["transit"] is not None:
        effects["transit"] = effects["transit"].resolved(
            int_times["int_start_BJD_TDB"][0], int_times["int_end_BJD_TDB"][-1]
        )
    scene = Scene(
        spec,
        sub,
        elem,
        window,
        int_times["int_mid_BJD_TDB"],
        effects["transit"],
        brightness,
        source,
        psf_family=psf_family,
        width_scale=width_scale,
    )
    bg = effects["background"]
    background_e = np.zeros(shape)
    if bg is not None:
        background_e = scene.background(
            spec.background_rate if bg.rate is None else bg.rate,
            spec.background_gradient if bg.gradient is None else bg.gradient,
            spec.background_step if bg.step is None else (bg.step or None),
        )
    shifts = jitter_offsets(effects["jitter"], nints, rng_jitter)
    crs = draw_cosmic_rays(effects["cosmic_rays"], nints, shape, plan, rng_cr, ipc=kernel)
    add_rate_effect(crs, plan)
    noise_cfg = effects["one_over_f"]
    if noise_cfg is not None and one_over_f_spectrum:
        noise_cfg = effects["one_over_f"] = replace(noise_cfg, **dict(one_over_f_spectrum))
    correlated = None if noise_cfg is None else CorrelatedNoise(noise_cfg, clock, rng_corr)
    frame_var = effects["read_noise"] ** 2 + (
        0.0 if noise_cfg is None else noise_cfg.frame_variance
    )

    arrays = run_integrations(
        scene,
        background_e,
        shifts,
        crs,
        correlated,
        plan,
        gain=spec.gain,
        rng_photon=rng_photon if photon_noise else None,
        rng_read=rng_read,
        read_noise=effects["read_noise"],
        frame_variance=frame_var,
        full_well=effects["saturation"],
        bias=bias,
        flag_jumps=flag_jumps,
        want_ramp="ramp" in products,
        want_cube="rateints" in products,
        keep_group_noise=keep_group_noise,
        ipc=kernel,
    )

    meta = dict(
        mode=spec,
        element=elem,
        subarray=sub,
        window=window,
        noutputs=noutputs,
        readpatt=readpatt,
        plan=plan,
        nints=nints,
        start_mjd=start_time,
        target=target,
    )
    ramp_model = rate_model = None
    if arrays.ramp is not None:
        ramp_model = RampModel(
            data=arrays.ramp, groupdq=arrays.groupdq, pixeldq=np.zeros(shape, np.uint32)
        )
        set_metadata(ramp_model, product="uncal", **meta)
    if arrays.data is not None:
        rate_model = CubeModel(
            data=arrays.data,
            dq=arrays.dq,
            err=np.sqrt(arrays.var_poisson + arrays.var_rnoise),
            var_poisson=arrays.var_poisson,
            var_rnoise=arrays.var_rnoise,
            var_flat=np.zeros_like(arrays.data),
        )
        set_metadata(rate_model, product="rateints", **meta)

    truth = build_truth(
        spec, sub, elem, scene, shifts, crs, background_e, arrays, effects, frame_var, seq, plan
    )
    log.info(
        "Simulated %s %s %dx%d, %d integrations x %d groups in %.1f s (effects on: %s)",
        spec.exp_type,
        sub.name,
        *shape,
        nints,
        ngroups,
        time.perf_counter() - t_start,
        ", ".join(k for k, v in effects.items() if v not in (None, False, 0.0)),
    )
    return SimulationResult(ramp_model, rate_model, truth)
