"""What a tso pipeline checks before it starts, and the defects it flags on its way.

jwst's pipelines meet bad input deep inside (a truncated file: ``KeyError: "Extension 'ASDF'
not found."``; a ramp given to calwebb_spec2: a traceback from ``srctype``; a non-TSO
exposure given to calwebb_tso3: one log line and no product).  A tso pipeline checks its
input first with the steps' input layer (:func:`~tso_steps.inputs.check_input`), so it stops
with the same clear errors, before any work.  Defects real data have are data: NaN and inf
samples are flagged ``DO_NOT_USE`` before ramp fitting and on every product
(:func:`~tso_steps.inputs.flag_nonfinite`), and white-light points of integrations without
any flux are NaN, not 0 (:class:`WhiteLightGaps`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from astropy.table import Table
from stdatamodels import DataModel

from tso_steps.inputs import InputError, check_input, flag_nonfinite

__all__ = ["NonFiniteFlagger", "WhiteLightGaps", "check_pipeline_input", "science_members"]

log = logging.getLogger("stpipe.tso_steps.pipelines")


def science_members(input_data, who):
    """The products to check: the input itself, or the science members of an association.

    Parameters
    ----------
    input_data : str, path, datamodel, list or ModelContainer
        A pipeline's input.
    who : str
        The pipeline alias, for messages.

    Returns
    -------
    list
        Paths or models.

    Raises
    ------
    FileNotFoundError, InputError
    """
    if isinstance(input_data, (str, os.PathLike)) and str(input_data).endswith(".json"):
        path = Path(input_data)
        if not path.exists():
            raise FileNotFoundError(f"{who}: association file {str(path)!r} does not exist.")
        try:
            products = json.loads(path.read_text())["products"]
            members = [
                path.parent / member["expname"]
                for product in products
                for member in product["members"]
                if str(member.get("exptype", "science")).lower() == "science"
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{who}: {str(path)!r} is not a readable association ({type(error).__name__}: "
                f"{error}); make one with asn_from_list (see the tso_tso3 documentation)."
            ) from error
        if not members:
            raise InputError(f"{who}: association {str(path)!r} lists no science member.")
        return members
    if isinstance(input_data, (str, os.PathLike, DataModel, np.ndarray)):
        return [input_data]
    try:
        return list(input_data)
    except TypeError:
        return [input_data]


def check_pipeline_input(accepts, input_data):
    """Raise a clear error unless every science product of the input is one ``accepts`` takes.

    Parameters
    ----------
    accepts : `~tso_steps.inputs.Accepts`
        With ``pipeline=True``; header, type and shape checks only (no pixel is read).
    input_data : str, path, datamodel, list or ModelContainer

    Raises
    ------
    FileNotFoundError, InputError, WrongProductError
    """
    for member in science_members(input_data, accepts.step):
        check_input(member, accepts)


class NonFiniteFlagger:
    """A pre-hook that flags NaN and inf ramp samples DO_NOT_USE before ramp fitting.

    Without it jwst's ramp fit turns a pixel that is NaN in every group into a rate of 0 with
    no flag.
    """

    def __init__(self, who):
        self.who = who

    def run(self, model):
        """Flag the model jwst is about to fit (the pipeline's own copy); return None."""
        if isinstance(model, DataModel):
            flag_nonfinite(model, self.who)


class WhiteLightGaps:
    """Pre- and post-hook of jwst's ``white_light``: integrations with no flux become NaN.

    jwst sums FLUX with ``nansum``, so an integration whose every FLUX is NaN (lost, or
    all DO_NOT_USE) gets a white-light flux of exactly 0.  The pre-hook notes the mid-times
    of such integrations; the post-hook sets their ``whitelight_flux*`` entries to NaN and
    logs the count.
    """

    def __init__(self, who):
        self.who = who
        self.empty = {}

    def pre(self):
        """The hook that records the x1dints' empty integrations."""
        return _Hook(self._record)

    def post(self):
        """The hook that sets their white-light flux to NaN."""
        return _Hook(self._blank)

    def _record(self, model):
        self.empty = {}
        for spec in getattr(model, "spec", None) or []:
            table = spec.spec_table
            flux = np.asarray(table["FLUX"], dtype=float)
            if flux.ndim != 2:
                continue
            none = ~np.isfinite(flux).any(axis=1)
            key = str(getattr(spec, "detector", None) or "").upper()
            times = np.asarray(table["MJD-AVG"], dtype=float)[none]
            self.empty.setdefault(key, set()).update(times.tolist())

    def _blank(self, table):
        if not isinstance(table, Table) or not any(self.empty.values()):
            return
        count = 0
        for name in table.colnames:
            if not name.startswith("whitelight_flux"):
                continue
            detector = next((d for d in self.empty if d and name.upper().endswith(f"_{d}")), "")
            times = self.empty.get(detector) or set().union(*self.empty.values())
            time_column = f"MJD_UTC_{detector}" if detector else "MJD_UTC"
            if time_column not in table.colnames:
                time_column = "MJD_UTC"
            rows = np.isin(np.asarray(table[time_column], dtype=float), sorted(times))
            if rows.any():
                table[name][rows] = np.nan
                count = max(count, int(rows.sum()))
        if count:
            log.warning(
                "%s: %d of %d integrations have no finite FLUX: their white-light flux is NaN "
                "(jwst's white_light would give 0)",
                self.who,
                count,
                len(table),
            )


class _Hook:
    """A stpipe hook entry calling one function; returns None (the data pass unchanged)."""

    def __init__(self, function):
        self.function = function

    def run(self, *args):
        if args:
            self.function(args[0])
