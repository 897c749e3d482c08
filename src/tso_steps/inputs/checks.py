"""Checking an opened input: product type, shapes, time series, exposure type, pixels."""

from __future__ import annotations

import numpy as np
from stdatamodels.jwst import datamodels

from tso_steps.exposure import (
    IMAGING_EXP_TYPES,
    TSO_EXP_TYPES,
    ImagingExposureError,
    dispersion_axis,
)
from tso_steps.inputs.accepts import _PRODUCTS, InputError, WrongProductError, _hint, describe
from tso_steps.inputs.dq import DO_NOT_USE

__all__ = ["check_time_series"]

_INSTRUMENT_PREFIX = {"NRC": "NIRCAM", "NIS": "NIRISS", "NRS": "NIRSPEC", "MIR": "MIRI"}


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
