"""The model adapter of the outlier rejection: models in, arrays out, flags back in.

The algorithm (:mod:`tso_steps.outlier.cube`, :mod:`tso_steps.outlier.detect`) works on
numpy arrays; this module reads a rateints/calints cube or the spectra of an x1dints into
them, builds the motion regressors from ``tso_vectors`` (or from shifts measured on the
data), and writes the flags back: DQ bits OR'ed in, flagged values NaN (or the model value
with ``replace``).
"""

import logging

import numpy as np

from tso_steps.inputs import DO_NOT_USE, OUTLIER
from tso_steps.motion import measure_shifts, motion_design_matrix
from tso_steps.stats import nanmedian_over_frames
from tso_steps.vectors import get_vectors

__all__ = [
    "MOTION_COLUMNS",
    "apply_flags",
    "apply_spectral_flags",
    "cube_arrays",
    "motion_design",
    "measured_motion",
    "spectral_series",
    "typical_noise",
]

log = logging.getLogger("stpipe.tso_steps.outlier")

#: tso_vectors columns that describe the motion of the source, in order of preference.
MOTION_COLUMNS = (
    "shift_dispersion",
    "shift_cross_dispersion",
    "trace_position",
    "centroid_x",
    "centroid_y",
)

#: Arrays of a cube product that become NaN at a flagged (not replaced) sample.
_CUBE_VALUE_ARRAYS = ("data", "err", "var_poisson", "var_rnoise", "var_flat")

#: x1dints columns that become NaN at a flagged (not replaced) sample.
_SPEC_VALUE_COLUMNS = (
    "FLUX",
    "FLUX_ERROR",
    "FLUX_VAR_POISSON",
    "FLUX_VAR_RNOISE",
    "FLUX_VAR_FLAT",
    "SURF_BRIGHT",
    "SB_ERROR",
    "SB_VAR_POISSON",
    "SB_VAR_RNOISE",
    "SB_VAR_FLAT",
)


def cube_arrays(model):
    """``(data, err, dq)`` of a cube product; ``err``/``dq`` None when absent or misshapen."""
    data = model.data
    err = model.err if model.hasattr("err") and model.err.shape == data.shape else None
    dq = model.dq if model.hasattr("dq") and model.dq.shape == data.shape else None
    return data, err, dq


def spectral_series(spec):
    """``(flux, flux_error, bad)`` of one x1dints spectrum, ``(nints, nbins)`` float64."""
    table = spec.spec_table
    flux = np.asarray(table["FLUX"], dtype=np.float64)
    flux_error = np.asarray(table["FLUX_ERROR"], dtype=np.float64)
    bad = (np.asarray(table["DQ"]) & DO_NOT_USE) != 0
    return flux, flux_error, bad


def measured_motion(frames, reference=None):
    """Shifts measured on the data, along the axes where motion exceeds the noise, or None.

    Parameters
    ----------
    frames : ndarray, shape ``(nints, ...)``
        Images or spectra (NaN where unusable).
    reference : ndarray or None
        The reference frame (default: the median of ``frames``).

    Returns
    -------
    ndarray of shape ``(nints, naxes)`` or None
    """
    try:
        result = measure_shifts(frames, reference=reference, max_pixels=4000, calibrate=False)
    except ValueError as error:
        log.warning("Could not measure motion: %s", error)
        return None
    keep = result.significant_axes()
    log.info(
        "Measured shifts: RMS %s px, per-frame error %s px",
        ", ".join(f"{v:.3g}" for v in np.nanstd(result.shifts, axis=0)),
        ", ".join(f"{v:.2g}" for v in np.nanmedian(result.errors, axis=0)),
    )
    if not keep.any():
        return None
    return result.shifts[:, keep]


def motion_design(model, motion, degree, measure):
    """The motion regressors: ``tso_vectors`` columns or shifts measured by ``measure()``.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Its ``tso_vectors`` are read (a column of NaN carries no motion and is skipped).
    motion : {'auto', 'vectors', 'measure', 'none'}
        The step's ``motion`` parameter.
    degree : int
        1: the shifts; 2: also their squares and products.
    measure : callable
        Returns measured shifts ``(nints, naxes)`` or None; called only when needed.

    Returns
    -------
    design : ndarray or None
        ``(nints, nterms)`` design matrix, None without motion terms.
    source : str
        What the regressors came from, for the log.
    rms : float
        Root-sum-square of the motion vectors' rms, pixels (0 without motion terms).

    Raises
    ------
    ValueError
        ``motion='vectors'`` but ``tso_vectors`` holds no motion column.
    """
    if motion == "none":
        return None, "none", 0.0
    vectors = get_vectors(model)
    present = [
        c
        for c in MOTION_COLUMNS
        if c in vectors.colnames and np.isfinite(np.asarray(vectors[c], dtype=float)).any()
    ]
    if motion == "vectors" and not present:
        raise ValueError(
            f"motion='vectors' but tso_vectors has none of the columns {MOTION_COLUMNS}."
        )
    if present and motion in ("auto", "vectors"):
        shifts = np.stack([np.asarray(vectors[c], dtype=np.float64) for c in present], 1)
        source = "tso_vectors " + ", ".join(present)
    else:
        shifts = measure()
        source = "shifts measured against the median frame"
        if shifts is None:
            log.info("No significant motion: no motion regressors")
            return None, "none", 0.0
    design = motion_design_matrix(shifts, order=degree)
    rms = np.nanstd(shifts, axis=0)
    log.info(
        "Motion regressors from %s (RMS %s px): %d terms",
        source,
        ", ".join(f"{v:.3g}" for v in rms),
        design.shape[1],
    )
    return design, source, float(np.sqrt(np.nansum(rms**2)))


def typical_noise(err, nsample=9):
    """Per-pixel noise of one sample: the median ERR of a few integrations spread in time."""
    if err is None:
        return None
    nints = err.shape[0]
    picks = np.unique(np.linspace(0, nints - 1, min(nsample, nints)).astype(int))
    # by slabs: the values of np.nanmedian on a float64 copy, without its cube-sized temporaries
    return nanmedian_over_frames(err[picks])


def apply_flags(model, indices, values, replace):
    """OR the flags into a cube's DQ and blank (or replace) the flagged samples.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Changed in place; a DQ array is created when it has none.
    indices : ndarray of int
        Flat indices of the flagged samples.
    values : ndarray
        The model values at those samples (used with ``replace``).
    replace : bool
        True: the data take ``values`` and DQ gets OUTLIER only; False: OUTLIER and
        DO_NOT_USE, and the data, ERR and variances become NaN.
    """
    data = model.data
    if not (model.hasattr("dq") and model.dq.shape == data.shape):
        model.dq = np.zeros(data.shape, dtype=np.uint32)
    dq = model.dq
    if replace:
        np.put(data, indices, values)
        np.put(dq, indices, dq.flat[indices] | np.uint32(OUTLIER))
        return
    np.put(dq, indices, dq.flat[indices] | np.uint32(OUTLIER | DO_NOT_USE))
    for name in _CUBE_VALUE_ARRAYS:
        if model.hasattr(name) and getattr(model, name).shape == data.shape:
            np.put(getattr(model, name), indices, np.nan)


def apply_spectral_flags(table, flags, predicted, replace):
    """The same for one x1dints ``spec_table`` (flags ``(nints, nbins)`` of bool)."""
    if replace:
        flux = table["FLUX"]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = predicted / flux
        flux[flags] = predicted[flags]
        if "SURF_BRIGHT" in table.dtype.names:
            table["SURF_BRIGHT"][flags] *= ratio[flags]
        table["DQ"][flags] |= np.uint32(OUTLIER)
        return
    table["DQ"][flags] |= np.uint32(OUTLIER | DO_NOT_USE)
    for name in _SPEC_VALUE_COLUMNS:
        if name in table.dtype.names:
            table[name][flags] = np.nan
