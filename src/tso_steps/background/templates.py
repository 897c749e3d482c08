"""Read user background templates (FITS, ASDF, ``.npy``, or a jwst SOSS background reference)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["SUBSTRIP96_ROW_START", "read_template"]

log = logging.getLogger("stpipe.tso_steps.background")

#: First SUBSTRIP256 row of the SUBSTRIP96 subarray (a SOSS template of 256 rows is cut there).
SUBSTRIP96_ROW_START = 10


def read_template(path, shape):
    """Read one or several background templates matching the science array.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        ``.npy``; ``.asdf`` (a ``data`` or ``template`` array); FITS: a jwst
        ``SossBkgModel`` reference file or any file whose ``SCI`` extension (else first
        image HDU) holds the template(s).
    shape : tuple of int
        ``(ny, nx)`` of the science array.

    Returns
    -------
    ndarray, shape ``(ntemplates, ny, nx)``
        float64. A 256-row SOSS template is cut to SUBSTRIP96 when the data have 96 rows.

    Raises
    ------
    ValueError
        Unknown file type, no image, or a shape that does not match the data.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path)
    elif suffix == ".asdf":
        import asdf

        with asdf.open(path, lazy_load=False) as af:
            node = af.tree.get("template", af.tree.get("data"))
            if node is None:
                raise ValueError(f"{path} holds no 'template' or 'data' array.")
            array = np.asarray(node)
    elif suffix in (".fits", ".fit", ".fits.gz"):
        array = _read_fits(path)
    else:
        raise ValueError(f"Unsupported template file type {path.suffix!r}: .fits, .asdf, .npy.")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"Template {path} must be 2-D or 3-D, got shape {array.shape}.")
    if array.shape[1] == 256 and shape[0] == 96:
        log.info("Cutting the 256-row template to SUBSTRIP96 (rows %d-%d)", 10, 105)
        array = array[:, SUBSTRIP96_ROW_START : SUBSTRIP96_ROW_START + 96]
    if array.shape[1:] != tuple(shape):
        raise ValueError(
            f"Template {path} has images of shape {array.shape[1:]}, the data {tuple(shape)}."
        )
    return array


def _read_fits(path):
    from astropy.io import fits

    with fits.open(path) as hdul:
        if "SCI" in hdul:
            return np.asarray(hdul["SCI"].data)
        for hdu in hdul:
            if hdu.data is not None and np.ndim(hdu.data) >= 2:
                return np.asarray(hdu.data)
    raise ValueError(f"{path} holds no image to use as a background template.")
