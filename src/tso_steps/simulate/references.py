"""Small synthetic calibration reference files matching a simulation, for offline jwst runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

__all__ = ["write_noise_references"]


def write_noise_references(model, truth, directory):
    """Write GAIN and READNOISE reference files that match a simulated exposure.

    jwst's ``jump`` and ``ramp_fit`` (and so ``calwebb_detector1``) need them; with these
    files passed as ``override_gain`` / ``override_readnoise`` they run without CRDS.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The simulated ramp or rateints (instrument, detector and subarray are copied).
    truth : `~tso_steps.simulate.SimulationTruth`
        Supplies the gain (e-/DN) and the per-frame white noise.
    directory : str or `~pathlib.Path`
        Where to write ``gain.fits`` and ``readnoise.fits``.

    Returns
    -------
    dict of str to str
        ``{"override_gain": path, "override_readnoise": path}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shape = model.data.shape[-2:]
    overrides = {}
    for name, cls, value in (
        ("gain", datamodels.GainModel, truth.gain),
        # READNOISE references hold the CDS noise: sqrt(2) x the per-frame noise
        ("readnoise", datamodels.ReadnoiseModel, np.sqrt(2.0 * truth.frame_variance)),
    ):
        ref = cls(data=np.full(shape, value, np.float32))
        ref.meta.instrument.name = model.meta.instrument.name
        ref.meta.instrument.detector = model.meta.instrument.detector
        for key in ("name", "xstart", "ystart", "xsize", "ysize", "fastaxis", "slowaxis"):
            setattr(ref.meta.subarray, key, getattr(model.meta.subarray, key))
        ref.meta.reftype = name.upper()
        ref.meta.author, ref.meta.pedigree = "tso_steps.simulate", "DUMMY"
        ref.meta.description, ref.meta.useafter = "synthetic", "2022-01-01T00:00:00"
        path = directory / f"{name}.fits"
        ref.save(path)
        overrides[f"override_{name}"] = str(path)
    return overrides
