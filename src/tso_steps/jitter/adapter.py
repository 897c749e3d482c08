"""The model adapter of the jitter correction: frames out of a product, realigned frames in.

:mod:`tso_steps.jitter.align` measures and undoes shifts on numpy stacks; this module reads
the stacks a rateints/calints cube or an x1dints spectrum table holds (science, errors,
variances, DQ) and writes the realigned stacks back into the same product, one frame at a
time, so a full-size float64 copy of the cube is never held twice.
"""

import numpy as np

from tso_steps.inputs import DO_NOT_USE, lost_in, lost_integrations
from tso_steps.jitter.align import realign_dq_frames, realign_error_frames, realign_frames

__all__ = ["cube_frames", "realign_cube", "realign_spectrum", "spectrum_frames"]

_VAR_ARRAYS = ("var_poisson", "var_rnoise", "var_flat")
_SPEC_FLUX = ("FLUX", "SURF_BRIGHT", "BACKGROUND")
_SPEC_ERR = ("FLUX_ERROR", "SB_ERROR", "BKGD_ERROR")
_SPEC_VAR = tuple(
    f"{p}_VAR_{k}" for p in ("FLUX", "SB", "BKGD") for k in ("POISSON", "RNOISE", "FLAT")
)


def cube_frames(model):
    """``(data, lost)``: the science cube as stored and the integrations without usable data.

    The cube is not copied to float64 (the alignment reads it where it is used), and the
    lost integrations are found one integration at a time (no cube of flags).
    """
    return model.data, lost_in(model)


def spectrum_frames(table):
    """``(flux, lost)`` of one x1dints ``spec_table``.

    ``flux`` is ``(nints, nbins)`` float64, NaN in the integrations without a usable bin
    (non-finite or DO_NOT_USE), which ``lost`` marks.
    """
    flux = np.asarray(table["FLUX"], dtype=np.float64)
    bad = ~np.isfinite(flux)
    if "DQ" in table.columns.names:
        bad |= (np.asarray(table["DQ"]) & DO_NOT_USE) != 0
    lost = lost_integrations(bad)
    return (np.where(lost[:, None], np.nan, flux) if lost.any() else flux), lost


def realign_cube(model, data, moves):
    """Undo ``moves`` in every per-integration array of a cube product, in place.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Its ``data``, ``err``, ``var_*`` and ``dq`` (those shaped like ``data``) are
        overwritten: values resampled, variances as variances, errors through their
        squares, DQ OR'ed with the DQ of the pixels each value comes from.
    data : ndarray, shape ``(nints, ny, nx)``
        The science data to realign; may be ``model.data`` itself (each frame is read
        before it is overwritten).
    moves : ndarray, shape ``(nints, 2)``
        The shift of each integration's content to undo, pixels (0 or NaN: not moved).
    """
    shape = data.shape
    realign_frames(data, moves, out=model.data)
    if model.hasattr("err") and model.err.shape == shape:
        realign_error_frames(model.err, moves, out=model.err)
    for name in _VAR_ARRAYS:
        if model.hasattr(name) and getattr(model, name).shape == shape:
            realign_frames(getattr(model, name), moves, True, out=getattr(model, name))
    if model.hasattr("dq") and model.dq.size and model.dq.shape == shape:
        realign_dq_frames(model.dq, moves, out=model.dq)


def realign_spectrum(table, shifts, lost):
    """Undo the dispersion ``shifts`` ``(nints, 1)`` in every column of one ``spec_table``.

    Fluxes are resampled, variances as variances, errors through their squares; DQ is
    OR'ed with the DQ of the source bins and lost integrations get DO_NOT_USE.
    """
    names = table.columns.names
    for name in _SPEC_FLUX:
        if name in names:
            table[name][...] = realign_frames(np.asarray(table[name], float), shifts)
    for name in _SPEC_VAR:
        if name in names:
            table[name][...] = realign_frames(np.asarray(table[name], float), shifts, True)
    for name in _SPEC_ERR:
        if name in names:
            table[name][...] = realign_error_frames(table[name], shifts)
    if "DQ" in names:
        table["DQ"][...] = realign_dq_frames(table["DQ"], shifts)
        if lost.any():
            table["DQ"][lost] |= DO_NOT_USE
