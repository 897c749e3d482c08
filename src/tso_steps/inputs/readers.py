"""Model -> array readers: variances, bad samples, median variance; lost integrations."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from tso_steps.inputs.dq import DO_NOT_USE, GROUP_DO_NOT_USE

__all__ = [
    "VARIANCE_NAMES",
    "bad_samples",
    "error_variance",
    "flag_lost_integrations",
    "flag_nonfinite",
    "lost_in",
    "lost_integrations",
    "median_variance",
    "variance_arrays",
]

log = logging.getLogger("stpipe.tso_steps.inputs")

#: Variance arrays of a rateints/calints product, in the order they are summed.
VARIANCE_NAMES = ("var_poisson", "var_rnoise", "var_flat")


def _usable(array, shape):
    if array is None or array.shape != shape:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bool(np.nanmax(array) > 0) if array.size else False


def variance_arrays(model, names=VARIANCE_NAMES):
    """The model's usable variance arrays (same shape as the data, some positive value).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    names : tuple of str
        Which arrays to read.

    Returns
    -------
    dict of str to ndarray
        The arrays themselves (no copy), in the order of ``names``.
    """
    shape = model.data.shape
    parts = {}
    for name in names:
        array = getattr(model, name, None) if model.hasattr(name) else None
        if _usable(array, shape):
            parts[name] = array
    return parts


def error_variance(model):
    """``ERR**2`` as float64 when the model has a usable ERR array, else None.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`

    Returns
    -------
    ndarray or None
    """
    err = getattr(model, "err", None) if model.hasattr("err") else None
    if not _usable(err, model.data.shape):
        return None
    return np.asarray(err, dtype=np.float64) ** 2


def bad_samples(model, bits=DO_NOT_USE, nonfinite=True, integration=None):
    """Samples not to use: DQ has any of ``bits`` (and, by default, the data are not finite).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        A rateints/calints model; a 2-D DQ applies to every integration.
    bits : int
        DQ bits that make a sample unusable.
    nonfinite : bool
        Also mark NaN and infinite data.
    integration : int, optional
        Only this integration (0-based): no cube-sized temporaries.

    Returns
    -------
    ndarray of bool
        Shape of ``model.data``, or of one integration.
    """
    full = model.data.shape
    if integration is None and len(full) == 3 and full[0] > 1:
        # one integration at a time: no cube-sized isfinite, dq & bits or != 0 temporaries
        bad = np.empty(full, dtype=bool)
        for i in range(full[0]):
            bad[i] = bad_samples(model, bits, nonfinite, integration=i)
        return bad
    index = slice(None) if integration is None else integration
    data = model.data[index]
    bad = ~np.isfinite(data) if nonfinite else np.zeros(data.shape, dtype=bool)
    dq = getattr(model, "dq", None) if model.hasattr("dq") else None
    if dq is not None and dq.size:
        if dq.shape == full:
            bad |= (dq[index] & bits) != 0
        elif dq.shape == full[1:]:
            frame = (dq & bits) != 0
            bad |= frame if integration is not None else frame[None]
    return bad


def lost_in(model, bits=DO_NOT_USE):
    """Integrations of a model with no usable sample, read one integration at a time.

    The same as ``lost_integrations(bad_samples(model, bits))`` without a cube of flags
    (or of ``dq & bits``) in memory.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    bits : int

    Returns
    -------
    ndarray of bool, shape ``(nints,)``
    """
    nints = model.data.shape[0]
    return np.array([bad_samples(model, bits, integration=i).all() for i in range(nints)])


def median_variance(model, rows=None, samples=1 << 18):
    """Per-pixel variance image (median over integrations) for fit weights, or None.

    From ``var_poisson + var_rnoise + var_flat`` (else ``err**2``) of a rateints/calints
    model.  The median over integrations decouples the weights from each integration's own
    noise (jwst's VAR_POISSON is computed from the measured slope).  Slabs of rows keep
    the working copy small; each pixel's median is the same whatever the slab.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.CubeModel`
    rows : int, optional
        Rows per slab (default: about ``samples`` samples per slab).
    samples : int
        Samples per slab when ``rows`` is None (2 MB of float64: slabs of 16 rows of a
        2000-integration SUB64P cube were 16 MB per variance array, and with their sum and
        ``np.nanmedian``'s copies added 130 MB to the step's peak).

    Returns
    -------
    ndarray, shape ``(ny, nx)``, or None
    """
    shape = model.data.shape
    parts = [getattr(model, name, None) for name in VARIANCE_NAMES]
    parts = [p for p in parts if p is not None and p.shape == shape]
    if not parts and model.err is not None and model.err.shape == shape:
        parts = [model.err]
        squared = True
    else:
        squared = False
    if not parts:
        return None
    var = np.empty(shape[1:], dtype=np.float64)
    if rows is None:
        per_row = max(int(np.prod(shape, dtype=np.int64)) // max(shape[1], 1), 1)
        rows = max(1, int(samples) // per_row)
    for y0 in range(0, shape[1], rows):
        rows_of = [np.asarray(p[:, y0 : y0 + rows], dtype=np.float64) for p in parts]
        slab = rows_of[0] ** 2 if squared else np.sum(rows_of, axis=0)
        slab[~np.isfinite(slab) | (slab <= 0)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            var[y0 : y0 + rows] = np.nanmedian(slab, axis=0)
    if not np.isfinite(var).any():
        return None
    return var


# --- lost integrations --------------------------------------------------------------------
def lost_integrations(bad):
    """Integrations with no usable sample at all.

    Parameters
    ----------
    bad : ndarray of bool, shape ``(nints, ...)``

    Returns
    -------
    ndarray of bool, shape ``(nints,)``
    """
    return bad.reshape(bad.shape[0], -1).all(axis=1)


def flag_lost_integrations(model, lost, step, what):
    """Mark integrations a step could not measure: DO_NOT_USE in DQ and one log line.

    The step sets the values it could not measure to NaN itself; this ORs DO_NOT_USE into
    the integrations' DQ (a 3-D DQ array; other bits are kept) and logs the count.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel` or None
        The step's output model (not the caller's input); None: log only.
    lost : ndarray of bool, shape ``(nints,)``
    step : str
        The step's alias.
    what : str
        What is NaN for them, e.g. ``'trace_shift'``.

    Returns
    -------
    int
        The number of lost integrations.
    """
    lost = np.asarray(lost, dtype=bool)
    count = int(lost.sum())
    if not count:
        return 0
    if model is not None and model.hasattr("dq"):
        dq = model.dq
        if dq is not None and dq.ndim == 3 and dq.shape[0] == lost.size:
            dq[lost] |= DO_NOT_USE
    numbers = ", ".join(str(i) for i in np.flatnonzero(lost)[:10])
    log.warning(
        "%s: %d of %d integrations have no usable data (all NaN or DO_NOT_USE; 0-based %s%s): "
        "%s is NaN for them and they are flagged DO_NOT_USE",
        step,
        count,
        lost.size,
        numbers,
        ", ..." if count > 10 else "",
        what,
    )
    return count


def flag_nonfinite(model, who):
    """Flag NaN and inf samples DO_NOT_USE (DQ bits are OR-ed), with one log line.

    For a ramp (4-D data) the samples are flagged in ``groupdq``, so ramp fitting leaves
    them out (a pixel NaN in every group comes out NaN and DO_NOT_USE, not 0).  For
    images (2-D or 3-D data with a DQ array of the same shape, or of one image) the
    pixels are flagged in ``dq`` and an inf is set to NaN.  Other models are left as they
    are.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        A product being made (never the caller's input): changed in place.
    who : str
        The step or pipeline alias, for the log line.

    Returns
    -------
    int
        The number of non-finite samples (pixels of a ramp: samples in any group).
    """
    data = getattr(model, "data", None) if model.hasattr("data") else None
    if data is None or data.ndim < 2 or not np.issubdtype(data.dtype, np.floating):
        return 0
    if data.ndim == 4:
        flags, bit = getattr(model, "groupdq", None), GROUP_DO_NOT_USE
    else:
        flags, bit = (getattr(model, "dq", None) if model.hasattr("dq") else None), DO_NOT_USE
    if flags is None or flags.shape not in (data.shape, data.shape[-2:]):
        return 0
    bad = ~np.isfinite(data)
    count = int(bad.sum())
    if not count:
        return 0
    if flags.shape != data.shape:  # one DQ image for every integration
        bad = bad.all(axis=tuple(range(data.ndim - 2)))
    new = int((bad & ((flags & bit) == 0)).sum())
    flags[bad] |= bit
    if data.ndim < 4:
        data[np.isinf(data)] = np.nan
    log.warning(
        "%s: %d samples (%.3g %%) of %s are NaN or inf (%d newly flagged DO_NOT_USE)",
        who,
        count,
        100.0 * count / data.size,
        model.meta.filename or type(model).__name__,
        new,
    )
    return count


class VarianceFrames:
    """Variance of any part of the cube, read when asked for: the sum of the variance arrays.

    ``frames[key]`` (any numpy index of the data's shape, e.g. ``frames[i]`` for integration
    ``i`` or ``frames[:, rows]`` for a slab of rows) is the float64 sum of the model's usable
    ``names`` arrays there (VAR_POISSON + VAR_RNOISE + VAR_FLAT by default), else ERR**2,
    so a cube of float64 variances is never held in memory.  ``source`` names what is read
    (None: nothing usable, the model has no variance).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    names : tuple of str
        Variance arrays to sum (the usable ones among them, in this order).
    orient : callable, optional
        Applied to every array before indexing (e.g. a transposing view), so ``key``
        indexes the caller's orientation.
    """

    def __init__(self, model, names=VARIANCE_NAMES, orient=None):
        orient = orient or (lambda array: array)
        parts = variance_arrays(model, names)
        self.parts = [orient(array) for array in parts.values()]
        err = getattr(model, "err", None) if model.hasattr("err") else None
        self.err = None
        if not self.parts and _usable(err, model.data.shape):
            self.err = orient(err)
        self.source = "+".join(parts) if self.parts else ("err" if self.err is not None else None)
        self.shape = orient(model.data).shape
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        if self.parts:
            return np.sum([np.asarray(p[key], dtype=np.float64) for p in self.parts], axis=0)
        return np.asarray(self.err[key], dtype=np.float64) ** 2
