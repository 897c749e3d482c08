"""What a step takes (:class:`Accepts`), the input errors, and how a product is described."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from stdatamodels.jwst import datamodels

__all__ = ["Accepts", "InputError", "WrongProductError", "describe"]


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
    mapped : bool
        A FITS file input is memory-mapped copy-on-write
        (:func:`~tso_steps.inputs.budget.open_lazily`) even without a ``memory_budget``: for
        steps that read a part of a large product (bands around a trace, a few arrays of
        six) and change little of it, only the pages used are read, not every array.
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
    mapped: bool = False
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
