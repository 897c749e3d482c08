"""Opening and checking a step's input: one answer to the same bad input in every step."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels

from tso_steps.exposure import (
    IMAGING_EXP_TYPES,
    TSO_EXP_TYPES,
    ImagingExposureError,
    dispersion_axis,
)
from tso_steps.inputs.dq import DO_NOT_USE

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

_INSTRUMENT_PREFIX = {"NRC": "NIRCAM", "NIS": "NIRISS", "NRS": "NIRSPEC", "MIR": "MIRI"}


class InputError(ValueError):
    """The input cannot be processed as given; the message names the problem and the fix."""


class WrongProductError(InputError, TypeError):
    """The input is not a product this step takes (wrong model type or not a datamodel)."""


# --- what a step takes --------------------------------------------------------------------
_PRODUCTS = {
    "ramp": (datamodels.RampModel, 4, "ramps (uncal/ramp: a 4-D RampModel)"),
    "uncal": (datamodels.Level1bModel, 4, "uncal ramps (a 4-D Level1bModel)"),
    "cube": (datamodels.CubeModel, 3, "rateints/calints (a 3-D CubeModel)"),
    "slit": (datamodels.SlitModel, 3, "calints (a 3-D SlitModel)"),
    "x1dints": (datamodels.TSOMultiSpecModel, None, "x1dints (a TSOMultiSpecModel)"),
}


@dataclass(frozen=True)
class Accepts:
    """What a step takes: product kinds, exposure kind and the smallest usable array.

    Attributes
    ----------
    step : str
        The step's alias, used in every message.
    products : tuple of str
        Any of ``'ramp'``, ``'cube'``, ``'slit'``, ``'x1dints'``.
    exposure : {'tso', 'spectroscopic', 'imaging', 'supported'}
        ``'tso'``: a time series (TSO exposure type or TSOVISIT=T); ``'spectroscopic'``:
        also a known dispersion axis; ``'imaging'``: also an imaging exposure type;
        ``'supported'``: also one of :data:`~tso_steps.exposure.TSO_EXP_TYPES`.
    min_shape : tuple of int
        Smallest (ny, nx) of an image the step can measure on.
    min_ints : int
        Fewest integrations.
    copy : {'always', 'standalone', 'never'}
        A model passed in Python is copied always, only outside a pipeline (jwst's rule,
        saves memory inside a pipeline), or never (the step only reads it).
    reads_pixels : bool
        The step measures pixel values: rateints/calints need ``min_ints`` integrations
        with at least one usable (finite, not DO_NOT_USE) sample.
    pipeline : bool
        ``step`` is a pipeline (a tso_* pipeline's entrance check): hints name the pipeline
        stage to run instead of a step order.
    """

    step: str
    products: tuple = ("cube", "slit")
    exposure: str = "tso"
    min_shape: tuple = (2, 2)
    min_ints: int = 2
    copy: str = "always"
    reads_pixels: bool = True
    pipeline: bool = False

    def describe(self):
        """The accepted products, for messages."""
        names = [_PRODUCTS[p][2] for p in self.products]
        if set(self.products) >= {"cube", "slit"}:
            names = [
                "rateints/calints (a 3-D CubeModel or SlitModel)"
                if p == "cube"
                else _PRODUCTS[p][2]
                for p in self.products
                if p != "slit"
            ]
        return " or ".join(names)


def describe(model):
    """A short description of a model for messages, e.g. ``'a rateints (3-D CubeModel)'``.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`

    Returns
    -------
    str
    """
    kind = {
        "RampModel": "ramp",
        "Level1bModel": "uncal",
        "CubeModel": "rateints/calints",
        "SlitModel": "calints",
        "ImageModel": "rate/cal image",
        "TSOMultiSpecModel": "x1dints",
        "MultiSpecModel": "x1d",
    }.get(type(model).__name__)
    data = getattr(model, "data", None) if model.hasattr("data") else None
    ndim = f"{np.ndim(data)}-D " if data is not None else ""
    name = type(model).__name__
    return f"a {kind} ({ndim}{name})" if kind else f"a {ndim}{name}"


def _hint(accepts, model):
    """How to get from what was given to what the step takes."""
    wants_ramp = "ramp" in accepts.products
    wants_images = bool({"cube", "slit"} & set(accepts.products))
    if accepts.pipeline:
        if isinstance(model, datamodels.RampModel) and wants_images:
            return ": run tso_detector1 on it first to make rateints"
        if wants_ramp and isinstance(model, (datamodels.CubeModel, datamodels.ImageModel)):
            return ": it is already ramp-fitted; give it to stage 2 (tso_spec2 or tso_image2)"
    if isinstance(model, datamodels.RampModel) and wants_images:
        return ": run calwebb_detector1 (ramp_fit) first to make rateints"
    if isinstance(model, datamodels.ImageModel) and wants_images:
        return (
            ": it needs the per-integration product (_rateints / _calints), not the "
            "integration-averaged _rate / _cal image"
        )
    if wants_ramp and isinstance(model, (datamodels.CubeModel, datamodels.ImageModel)):
        return f": run {accepts.step} before ramp_fit (in calwebb_detector1 / tso_detector1)"
    if isinstance(model, (datamodels.TSOMultiSpecModel, datamodels.MultiSpecModel)):
        return f": it works on images; run {accepts.step} before extract_1d"
    if wants_images and isinstance(model, datamodels.SlitModel) and "slit" not in accepts.products:
        return ": this is a spectroscopic cut-out; the step measures images"
    return ""


# --- opening --------------------------------------------------------------------------------
def open_input(input_data, accepts):
    """Open a path, a datamodel or a one-element list as a datamodel, with clear errors.

    Parameters
    ----------
    input_data : str, `~pathlib.Path`, `~stdatamodels.jwst.datamodels.JwstDataModel` or list
        The step's input.
    accepts : Accepts

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
    return _open_path(path, accepts), True


def _open_path(path, accepts):
    step = accepts.step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = datamodels.open(path)
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
            model = datamodels.RampModel(str(path))
    return model


# --- checks ----------------------------------------------------------------------------------
def _check_type(model, accepts):
    classes = tuple(_PRODUCTS[p][0] for p in accepts.products)
    exact = [m for m in classes if type(model) is m] or [m for m in classes if isinstance(model, m)]
    if not exact:
        raise WrongProductError(
            f"{accepts.step} takes {accepts.describe()}; this is {describe(model)}"
            f"{_hint(accepts, model)}."
        )
    for kind in accepts.products:
        cls, ndim, _ = _PRODUCTS[kind]
        if isinstance(model, cls) and ndim is not None:
            data = model.data
            if data is None or data.ndim != ndim:
                shape = None if data is None else data.shape
                raise InputError(
                    f"{accepts.step}: {type(model).__name__} data must be {ndim}-D, got "
                    f"shape {shape}."
                )
            return kind
    return "x1dints"


def _exposure_of(model):
    exposure = model.meta.instance.get("exposure", {})
    return exposure.get("type")


def _tsovisit(model):
    return bool(model.meta.instance.get("visit", {}).get("tsovisit", False))


def check_time_series(model, accepts, pixels=True):
    """Raise unless ``model`` is a time series the step can measure (one rule everywhere).

    A time series has an exposure type in :data:`~tso_steps.exposure.TSO_EXP_TYPES` or
    TSOVISIT=T, at least ``accepts.min_ints`` integrations and images of at least
    ``accepts.min_shape`` pixels; its exposure type agrees with its instrument.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        Read only (no metadata node is created on it).
    accepts : Accepts
    pixels : bool
        Also check the pixel values (not entirely NaN; enough usable integrations); False
        checks the header and shapes only.

    Raises
    ------
    InputError, ImagingExposureError
    """
    step = accepts.step
    exp_type = _exposure_of(model)
    key = str(exp_type).upper()
    instrument = model.meta.instance.get("instrument", {}).get("name")
    expected = _INSTRUMENT_PREFIX.get(key.split("_")[0])
    if instrument and expected and str(instrument).upper() != expected:
        raise InputError(
            f"{step}: exposure type {exp_type!r} is a {expected} mode but the instrument is "
            f"{instrument!r}: the header is inconsistent; fix EXP_TYPE or INSTRUME."
        )
    if key not in TSO_EXP_TYPES and not _tsovisit(model):
        raise InputError(
            f"{step} is for time-series exposures ({', '.join(TSO_EXP_TYPES)}, or TSOVISIT=T); "
            f"got EXP_TYPE={exp_type!r}. If this is a time series, set TSOVISIT=T "
            "(meta.visit.tsovisit = True)."
        )
    if accepts.exposure == "supported" and key not in TSO_EXP_TYPES:
        raise InputError(
            f"{step} supports {', '.join(TSO_EXP_TYPES)}; got exposure type {exp_type!r}."
        )
    if accepts.exposure == "spectroscopic":
        try:
            dispersion_axis(model)  # raises ImagingExposureError for imaging
        except ImagingExposureError as error:
            if not accepts.pipeline:
                raise
            raise InputError(
                f"{step} is for spectroscopic time series; exposure type {exp_type!r} is not "
                "one (imaging): run tso_image2 on it."
            ) from error
    if accepts.exposure == "imaging":
        if key not in IMAGING_EXP_TYPES:
            raise InputError(
                f"{step} measures point sources on images ({', '.join(IMAGING_EXP_TYPES)}); "
                f"exposure type {exp_type!r} is not one. For spectra, "
                + ("run tso_spec2." if accepts.pipeline else "use tso_trace / tso_extract.")
            )
        if isinstance(model, datamodels.SlitModel):
            raise InputError(f"{step}: an imaging exposure cannot be a SlitModel cut-out.")
    if isinstance(model, datamodels.TSOMultiSpecModel):
        _check_spectra(model, accepts)
        return
    nints = model.data.shape[0]
    if nints < accepts.min_ints:
        raise InputError(
            f"{step} needs a time series of at least {accepts.min_ints} integrations, got "
            f"{nints} (data of shape {model.data.shape})."
        )
    ny, nx = model.data.shape[-2:]
    if ny < accepts.min_shape[0] or nx < accepts.min_shape[1]:
        raise InputError(
            f"{step}: images of {ny} x {nx} pixels are too small; it needs at least "
            f"{accepts.min_shape[0]} x {accepts.min_shape[1]} (check the cut-out / subarray)."
        )
    if not pixels:
        return
    if not _any_finite(model.data):
        raise InputError(
            f"{step}: the input data are entirely NaN (NaN everywhere, no finite sample): "
            "nothing can be measured; check the step that made this file."
        )
    if accepts.reads_pixels and model.data.ndim == 3:
        usable = int(np.sum(_usable_integrations(model)))
        if usable < accepts.min_ints:
            raise InputError(
                f"{step}: only {usable} of {nints} integrations hold a usable sample (the rest "
                f"are all NaN or DO_NOT_USE); it needs at least {accepts.min_ints}."
            )


def _check_spectra(model, accepts):
    step = accepts.step
    if len(model.spec) == 0:
        raise InputError(f"{step}: the x1dints model holds no spectra.")
    for number, spec in enumerate(model.spec):
        flux = np.asarray(spec.spec_table["FLUX"])
        if flux.ndim != 2 or flux.shape[0] < accepts.min_ints:
            raise InputError(
                f"{step} needs x1dints FLUX of shape (nints >= {accepts.min_ints}, nwave), got "
                f"{flux.shape} in spectrum {number} (at least {accepts.min_ints} integrations)."
            )
        if not np.isfinite(flux).any():
            raise InputError(
                f"{step}: spectrum {number} has no finite FLUX (entirely NaN): nothing can be "
                "measured."
            )


def _usable_integrations(model):
    """Integrations with at least one finite sample not flagged DO_NOT_USE (one at a time)."""
    data = model.data
    dq = getattr(model, "dq", None) if model.hasattr("dq") else None
    if dq is not None and dq.shape not in (data.shape, data.shape[1:]):
        dq = None
    usable = np.zeros(data.shape[0], dtype=bool)
    for i in range(data.shape[0]):
        good = np.isfinite(data[i])
        if dq is not None:
            good &= (np.asarray(dq[i] if dq.ndim == 3 else dq) & DO_NOT_USE) == 0
        usable[i] = bool(good.any())
    return usable


def _any_finite(data):
    """Whether ``data`` holds a finite value (one integration at a time: no big temporary)."""
    return any(np.isfinite(data[i]).any() for i in range(data.shape[0]))


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
    model, opened = open_input(input_data, accepts)
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
