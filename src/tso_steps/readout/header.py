"""Readout geometry from a datamodel's header: keywords, cut-outs, inferred NOUTPUTS.

:meth:`tso_steps.readout.ReadoutGeometry.from_model` is the public entry point; this module
holds the header parsing it delegates to.  The geometry is that of the full readout region
(the subarray, SUBSIZE2 x SUBSIZE1); an extract_2d cut-out (a SlitModel whose slit
``xstart``/``ystart`` place it in the subarray) becomes a ``window`` of it.
"""

from __future__ import annotations

import logging

import numpy as np

from tso_steps.readout.geometry import ReadoutGeometry, ReadoutMetadataError

__all__ = ["geometry_arguments", "infer_noutputs"]

log = logging.getLogger("stpipe.tso_steps.readout")


def geometry_arguments(model, shape=None):
    """Positional and keyword arguments of :class:`ReadoutGeometry` for a model.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    shape : tuple of int, optional
        ``(ny, nx)`` of the science array; default the last two axes of ``model.data``.

    Returns
    -------
    args : tuple
        ``(instrument, shape of the readout region, fastaxis, slowaxis, noutputs)``.
    extra : dict
        ``window`` for a cut-out; ``xstart``, ``ystart``, ``slow_mode`` for MIRI.

    Raises
    ------
    ReadoutMetadataError
        When a keyword is missing or the values are inconsistent.
    """
    instrument = model.meta.instrument.name
    fastaxis = model.meta.subarray.fastaxis
    slowaxis = model.meta.subarray.slowaxis
    noutputs = model.meta.exposure.noutputs
    if shape is None:
        shape = model.data.shape[-2:]
    full, window = _readout_region(model, tuple(int(n) for n in shape))
    missing = [
        keyword
        for keyword, value in (
            ("INSTRUME (meta.instrument.name)", instrument),
            ("FASTAXIS (meta.subarray.fastaxis)", fastaxis),
            ("SLOWAXIS (meta.subarray.slowaxis)", slowaxis),
        )
        if value is None
    ]
    if missing:
        raise ReadoutMetadataError(
            "Cannot work out the pixel readout order: missing keyword(s) " + ", ".join(missing)
        )
    if noutputs is None:
        if str(instrument).upper() == "MIRI":
            noutputs = 4  # MIRI has a single readout scheme: 4 interleaved outputs
        else:
            noutputs = infer_noutputs(
                instrument,
                full,
                fastaxis,
                slowaxis,
                model.meta.exposure.frame_time,
                model.meta.subarray.name,
            )
    extra = {"window": window} if window is not None else {}
    if str(instrument).upper() == "MIRI":
        # MIRI timing depends on where the subarray sits and on the read pattern
        xstart, ystart = model.meta.subarray.xstart, model.meta.subarray.ystart
        readpatt = model.meta.exposure.readpatt
        missing = [
            keyword
            for keyword, value in (
                ("SUBSTRT1 (meta.subarray.xstart)", xstart),
                ("SUBSTRT2 (meta.subarray.ystart)", ystart),
                ("READPATT (meta.exposure.readpatt)", readpatt),
            )
            if value is None
        ]
        if missing:
            raise ReadoutMetadataError(
                "Cannot work out MIRI pixel timing: missing keyword(s) " + ", ".join(missing)
            )
        readpatt = str(readpatt).upper()
        if not readpatt.startswith(("FAST", "SLOW")):
            raise ReadoutMetadataError(f"MIRI READPATT={readpatt} is neither FAST* nor SLOW*.")
        extra.update(xstart=int(xstart), ystart=int(ystart), slow_mode=readpatt.startswith("SLOW"))
    return (instrument, full, int(fastaxis), int(slowaxis), int(noutputs)), extra


def _attribute(model, name):
    """A top-level model attribute, or None where the model's schema has none."""
    try:
        return getattr(model, name)
    except AttributeError:
        return None


def _readout_region(model, shape):
    """Full readout-region shape and the 0-based window of the science array in it.

    The readout region is the subarray (SUBSIZE2 x SUBSIZE1).  A science array smaller than
    it is a cut-out placed by the model's own 1-based ``xstart``/``ystart`` (SlitModel); a
    smaller array with nothing to place it is an error, since its pixels' read times and
    outputs cannot be known.
    """
    ysize, xsize = model.meta.subarray.ysize, model.meta.subarray.xsize
    if ysize is None or xsize is None or (int(ysize), int(xsize)) == shape:
        return shape, None
    full = (int(ysize), int(xsize))
    xstart, ystart = _attribute(model, "xstart"), _attribute(model, "ystart")
    if shape[0] > full[0] or shape[1] > full[1]:
        raise ReadoutMetadataError(
            f"The {shape[0]}x{shape[1]} science array is larger than its subarray "
            f"SUBSIZE2 x SUBSIZE1 = {full[0]}x{full[1]}; fix the subarray keywords."
        )
    if xstart is None or ystart is None:
        raise ReadoutMetadataError(
            f"The {shape[0]}x{shape[1]} science array is a cut-out of its {full[0]}x{full[1]} "
            "subarray, but the model has no slit xstart/ystart to place it, so read times and "
            "outputs of its pixels are unknown; use the full-subarray product or set them."
        )
    return full, (int(ystart) - 1, int(xstart) - 1, shape[0], shape[1])


def infer_noutputs(instrument, shape, fastaxis, slowaxis, frame_time, subarray=None):
    """NOUTPUTS of an HxRG readout region from its frame time (TFRAME), with a warning.

    Parameters
    ----------
    instrument : str
        NIRCAM, NIRISS or NIRSPEC.
    shape : tuple of int
        ``(ny, nx)`` of the full readout region (the subarray, not a cut-out).
    fastaxis, slowaxis : int
        FASTAXIS, SLOWAXIS.
    frame_time : float or None
        TFRAME, seconds.
    subarray : str, optional
        SUBARRAY name, for the messages.

    Returns
    -------
    int
        The one output count (1 or 4) whose frame time matches TFRAME to 1e-4.

    Raises
    ------
    ReadoutMetadataError
        When TFRAME is missing or matches neither (or both) output counts.
    """
    name = f"{instrument} {subarray or ''} {shape[0]}x{shape[1]}".replace("  ", " ")
    if frame_time is None:
        raise ReadoutMetadataError(
            f"NOUTPUTS (meta.exposure.noutputs) is missing and so is TFRAME, so nothing "
            f"determines the output count of this {name} array; set NOUTPUTS."
        )
    matches = []
    for count in (1, 4):
        try:
            geometry = ReadoutGeometry(instrument, shape, int(fastaxis), int(slowaxis), count)
        except ReadoutMetadataError:
            continue
        if np.isclose(frame_time, geometry.frame_time, rtol=1e-4, atol=0):
            matches.append(count)
    if len(matches) != 1:
        raise ReadoutMetadataError(
            f"NOUTPUTS (meta.exposure.noutputs) is missing and TFRAME={frame_time:.6f} s of "
            f"this {name} array matches {'no' if not matches else 'more than one'} output "
            "count (1 or 4); set NOUTPUTS."
        )
    log.warning(
        "NOUTPUTS missing: %d output(s) inferred from TFRAME=%.6f s of the %s array.",
        matches[0],
        frame_time,
        name,
    )
    return matches[0]
