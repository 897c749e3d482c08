"""Plan a batch run: group files into exposures and segments, expand parameter sweeps.

Nothing here opens a data array: the plan is made from the primary FITS header of every
file (``EXP_TYPE``, the observation identifiers, ``EXSEGNUM``, ``INTSTART``/``INTEND``,
``NINTS``), so planning thousands of 2-4 GB segments takes seconds.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

__all__ = [
    "Exposure",
    "PlanError",
    "Segment",
    "group_exposures",
    "parse_params",
    "read_segment",
    "sweep_combinations",
    "sweep_folder",
]

#: Primary-header keywords that identify one exposure (the same in all of its segments).
EXPOSURE_KEYWORDS = (
    "PROGRAM",
    "OBSERVTN",
    "VISIT",
    "VISITGRP",
    "SEQ_ID",
    "ACT_ID",
    "EXPOSURE",
    "DETECTOR",
    "EXP_TYPE",
)

#: ``-segNNN`` (or ``_segNNN``) in a file name: removed, it names the exposure.
SEGMENT_IN_NAME = re.compile(r"[-_]seg\d+", re.IGNORECASE)


class PlanError(ValueError):
    """A set of files that cannot be planned (unreadable header, inconsistent segments)."""


@dataclass(frozen=True)
class Segment:
    """One input file and where its integrations sit in the exposure.

    Attributes
    ----------
    path : str
        Absolute path of the file.
    exposure_key : tuple
        Values of :data:`EXPOSURE_KEYWORDS` (or the file name without ``_segNNN`` when the
        identifiers are missing).
    segment_number : int or None
        ``EXSEGNUM``.
    int_start, int_end : int or None
        ``INTSTART`` and ``INTEND`` (1-based, inclusive) within the exposure.
    nints : int or None
        ``NINTS``: integrations of the whole exposure.
    exp_type : str or None
        ``EXP_TYPE``.
    """

    path: str
    exposure_key: tuple
    segment_number: int | None = None
    int_start: int | None = None
    int_end: int | None = None
    nints: int | None = None
    exp_type: str | None = None


@dataclass
class Exposure:
    """The segments of one exposure, in integration order."""

    key: tuple
    segments: list = field(default_factory=list)

    @property
    def contiguous(self):
        """True when the segments tile consecutive integrations with no gap or overlap."""
        if len(self.segments) < 2:
            return True
        if any(s.int_start is None or s.int_end is None for s in self.segments):
            return False
        return all(
            b.int_start == a.int_end + 1
            for a, b in zip(self.segments[:-1], self.segments[1:], strict=True)
        )


def read_segment(path):
    """Read the planning keywords of one file.

    Parameters
    ----------
    path : str or path-like
        A FITS product (uncal, ramp, rateints, calints ...).

    Returns
    -------
    Segment

    Raises
    ------
    PlanError
        If the file does not exist or has no readable FITS header.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise PlanError(f"{path}: no such file.")
    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError) as error:
        raise PlanError(f"{path}: cannot read a FITS header ({error}).") from None

    def integer(name):
        value = header.get(name)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None

    ids = tuple(header.get(k) for k in EXPOSURE_KEYWORDS)
    if all(v is None for v in ids[:-2]):  # no observation identifiers: group by file name
        ids = (SEGMENT_IN_NAME.sub("", path.name.split(".")[0]), *ids[-2:])
    return Segment(
        path=str(path),
        exposure_key=tuple("" if v is None else str(v) for v in ids),
        segment_number=integer("EXSEGNUM"),
        int_start=integer("INTSTART"),
        int_end=integer("INTEND"),
        nints=integer("NINTS"),
        exp_type=header.get("EXP_TYPE"),
    )


def group_exposures(paths, unreadable=None):
    """Group files into exposures, each with its segments in integration order.

    Parameters
    ----------
    paths : sequence of str or path-like
    unreadable : list, optional
        If given, files whose header cannot be read are appended to it as ``(path, message)``
        instead of raising (a batch reports them and goes on with the others).

    Returns
    -------
    list of Exposure
        In the order the exposures first appear in ``paths``.

    Raises
    ------
    PlanError
        If a header cannot be read (and ``unreadable`` is None), a file is given twice or
        two segments of one exposure claim the same number.
    """
    exposures = {}
    seen = set()
    for path in paths:
        try:
            segment = read_segment(path)
        except PlanError as error:
            if unreadable is None:
                raise
            unreadable.append((str(path), str(error)))
            continue
        if segment.path in seen:
            raise PlanError(f"{segment.path} is given twice.")
        seen.add(segment.path)
        exposures.setdefault(segment.exposure_key, Exposure(segment.exposure_key))
        exposures[segment.exposure_key].segments.append(segment)
    for exposure in exposures.values():
        exposure.segments.sort(
            key=lambda s: (
                s.int_start if s.int_start is not None else 0,
                s.segment_number or 0,
                s.path,
            )
        )
        numbers = [s.segment_number for s in exposure.segments if s.segment_number is not None]
        if len(numbers) != len(set(numbers)):
            raise PlanError(
                "Two files of exposure "
                f"{'/'.join(v for v in exposure.key if v)} have the same EXSEGNUM: "
                + ", ".join(Path(s.path).name for s in exposure.segments)
            )
    return list(exposures.values())


def _value(text):
    """Value of a ``k=v`` token, parsed as ``strun`` parses its options.

    A string that configobj validates later, or a list for configobj's list syntax
    (``a,b`` or ``a,`` with a trailing comma, e.g. a pipeline step's ``post_hooks``).
    """
    from configobj import ConfigObj

    value, _ = ConfigObj()._handle_value(text.strip())
    return value


def parse_params(tokens):
    """Parse ``key=value`` strings into a step-parameter dict (``steps.x.y=v`` nests).

    Parameters
    ----------
    tokens : sequence of str

    Returns
    -------
    dict

    Raises
    ------
    PlanError
        If a token has no ``=``.
    """
    params = {}
    for token in tokens or ():
        if "=" not in token:
            raise PlanError(f"Parameter {token!r} is not of the form key=value.")
        key, value = token.split("=", 1)
        _set_nested(params, key.strip(), _value(value))
    return params


def _set_nested(params, key, value):
    parts = key.split(".")
    node = params
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def sweep_combinations(sweeps):
    """Every combination of swept parameter values.

    Parameters
    ----------
    sweeps : mapping of str to sequence, or sequence of ``"k=v1,v2"`` strings, or None

    Returns
    -------
    list of dict
        Flat ``{dotted key: value}`` per combination; ``[{}]`` without sweeps.
    """
    if not sweeps:
        return [{}]
    if not isinstance(sweeps, dict):
        parsed = {}
        for token in sweeps:
            if "=" not in token:
                raise PlanError(f"Sweep {token!r} is not of the form key=v1,v2,...")
            key, values = token.split("=", 1)
            parsed[key.strip()] = [_value(v) for v in values.split(",") if v.strip()]
        sweeps = parsed
    for key, values in sweeps.items():
        if len(values) == 0:
            raise PlanError(f"Sweep of {key!r} has no values.")
    keys = list(sweeps)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*sweeps.values())]


def sweep_folder(combination):
    """Name of the output subfolder of one sweep combination, e.g. ``rejection_threshold-5``."""
    if not combination:
        return ""
    parts = []
    for key, value in combination.items():
        text = re.sub(r"[^A-Za-z0-9.+-]+", "_", str(value)).strip("_")
        parts.append(f"{key.split('.')[-1]}-{text}")
    return "_".join(parts)


def nested(flat):
    """``{"steps.jump.x": v}`` -> ``{"steps": {"jump": {"x": v}}}``."""
    params = {}
    for key, value in flat.items():
        _set_nested(params, key, value)
    return params
