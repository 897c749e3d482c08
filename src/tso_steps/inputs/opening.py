"""Opening and checking a step's input: one answer to the same bad input in every step."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from tso_steps.inputs.accepts import Accepts, InputError, WrongProductError, describe
from tso_steps.inputs.budget import open_lazily, scratch_directory, wants_lazy_input
from tso_steps.inputs.checks import _check_type, check_time_series

__all__ = [
    "Accepts",
    "InputError",
    "WrongProductError",
    "check_input",
    "check_time_series",
    "describe",
    "open_input",
    "prepare_output",
]

log = logging.getLogger("stpipe.tso_steps.inputs")


# --- opening --------------------------------------------------------------------------------
def open_input(input_data, accepts, lazy=False, scratch=None):
    """Open a path, a datamodel or a one-element list as a datamodel, with clear errors.

    Parameters
    ----------
    input_data : str, `~pathlib.Path`, `~stdatamodels.jwst.datamodels.JwstDataModel` or list
        The step's input.
    accepts : Accepts
    lazy : bool
        Memory-map the arrays of a FITS file (:func:`~tso_steps.inputs.budget.open_lazily`)
        instead of reading them.
    scratch : str or `~pathlib.Path`, optional
        With ``lazy``: map a writable scratch copy made in this directory, so the step's
        changes are not held in private memory.

    Returns
    -------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    opened : bool
        True when the model was opened here from a file (the caller owns it).

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    InputError
        For a truncated or unreadable file, or one that is not a JWST product.
    WrongProductError
        For a bare numpy array or any other object, and for a list of several products.
    """
    step = accepts.step
    if isinstance(input_data, (list, tuple)):
        if len(input_data) != 1:
            raise WrongProductError(
                f"{step} takes one product, got a list of {len(input_data)}: run it on each "
                "product (or give tso_tso3 an association)."
            )
        input_data = input_data[0]
    if isinstance(input_data, datamodels.JwstDataModel):
        return input_data, False
    if isinstance(input_data, np.ndarray):
        raise WrongProductError(
            f"{step} takes a JWST datamodel or the path of a JWST FITS/ASDF file, got a bare "
            f"numpy array of shape {input_data.shape}: wrap it in a datamodel, e.g. "
            "datamodels.CubeModel(data=array), and set meta.exposure.type (and the readout "
            "keywords) so the step knows what it is."
        )
    if not isinstance(input_data, (str, os.PathLike)):
        raise WrongProductError(
            f"{step} takes a JWST datamodel or the path of a JWST FITS/ASDF file, got "
            f"{type(input_data).__name__}."
        )
    path = Path(input_data)
    if not path.exists():
        raise FileNotFoundError(f"{step}: input file {str(path)!r} does not exist.")
    return _open_path(path, accepts, lazy, scratch), True


def _open_path(path, accepts, lazy=False, scratch=None):
    step = accepts.step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = _read(path, None, lazy, scratch)
        except Exception as error:  # noqa: BLE001 - every reader failure gets one message
            raise InputError(
                f"{step}: cannot read {str(path)!r} as a JWST product ({type(error).__name__}: "
                f"{error}). The file is truncated, corrupt or not a JWST FITS/ASDF product: "
                "re-create it (re-run the step that wrote it, or re-download it)."
            ) from error
    for w in caught:
        if "truncated" in str(w.message):
            model.close()
            raise InputError(
                f"{step}: {str(path)!r} is truncated (shorter than its headers say; an "
                "interrupted write or download?): re-create it."
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    data = getattr(model, "data", None) if model.hasattr("data") else None
    if type(model) is datamodels.JwstDataModel or (
        data is None and not isinstance(model, datamodels.TSOMultiSpecModel)
    ):
        model.close()
        raise InputError(
            f"{step}: {str(path)!r} is not a JWST data product (no DATAMODL keyword or no "
            f"SCI array); {step} takes {accepts.describe()} as written by the jwst pipeline "
            "or tso-steps."
        )
    if "ramp" in accepts.products and not isinstance(model, datamodels.RampModel):
        if data is not None and np.ndim(data) == 4:  # uncal (Level1bModel) and relatives
            model.close()
            model = _read(path, datamodels.RampModel, lazy, scratch)
    return model


def _read(path, cls, lazy, scratch=None):
    """``cls(path)`` (or ``datamodels.open``), memory-mapped when ``lazy`` and possible."""
    model = open_lazily(path, cls, scratch) if lazy else None
    if model is None:
        model = datamodels.open(path) if cls is None else cls(str(path))
    return model


# --- the one entry point ---------------------------------------------------------------------
def prepare_output(step, input_data, accepts):
    """Open, check and (for a model passed in Python) copy the input of a step.

    Parameters
    ----------
    step : `~stpipe.Step`
        The running step (``step.parent`` tells whether it runs inside a pipeline).
    input_data : str, `~pathlib.Path`, datamodel or one-element list
    accepts : Accepts

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel`
        A model the step may change: opened from the file, or a copy of the caller's model
        (``accepts.copy`` decides; the caller's model is left exactly as it was).

    Raises
    ------
    FileNotFoundError, InputError, WrongProductError, ImagingExposureError
    """
    budget = wants_lazy_input(step)
    scratch = None
    if budget and isinstance(input_data, (str, os.PathLike)) and Path(input_data).is_file():
        scratch = scratch_directory(step, input_data)
    lazy = budget or accepts.mapped
    model, opened = open_input(input_data, accepts, lazy=lazy, scratch=scratch)
    try:
        _check_type(model, accepts)
        check_time_series(model, accepts)
    except Exception:
        if opened:
            model.close()
        raise
    if opened or accepts.copy == "never":
        return model
    if accepts.copy == "standalone" and getattr(step, "parent", None) is not None:
        return model
    return model.copy()


def check_input(input_data, accepts):
    """Check an input's product type, shapes and time-series header, without reading pixels.

    A tso_* pipeline calls it on its input (and on each science member of an association)
    before any work, so bad input stops with the same clear errors as the steps give.

    Parameters
    ----------
    input_data : str, `~pathlib.Path`, datamodel or one-element list
        A file is opened and closed again; a model is only read.
    accepts : Accepts

    Raises
    ------
    FileNotFoundError, InputError, WrongProductError, ImagingExposureError
    """
    model, opened = open_input(input_data, accepts)
    try:
        _check_type(model, accepts)
        check_time_series(model, accepts, pixels=False)
    finally:
        if opened:
            model.close()
