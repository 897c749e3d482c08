"""Segment-aware runs: join the segments of an exposure along integrations, split the result.

Which integrations a step needs around a segment (its *halo*) is a property of the step's
algorithm, recorded in :data:`HALO_RULES`:

- ``tso_jump``: the running median spans ``rolling_window_width`` integrations, but each pixel's
  noise (a clipped RMS of its residuals), the per-integration flux scale and motion fit, and
  the motion regression use every integration of the file;
- ``tso_outlier``: the running median spans ``rolling_window_width``, but the reference frame
  and each integration's relative flux are medians over all integrations, and the per-pixel
  scatter and motion regression are fitted over the whole series;
- ``tso_one_over_f``: the scene model is the per-pixel median over all integrations.

A window-sized halo therefore reproduces only the running median: the flags of a segment
would still depend on where the exposure was split. The halo that makes the result
independent of the split is the whole exposure, so these steps (and the pipelines holding
them) run once per exposure on the joined segments, and each segment's product is cut back
out of the result (:mod:`tso_steps.batch.joined`).
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.io import fits

from tso_steps.vectors import INDEX_COLUMN

__all__ = [
    "HALO_RULES",
    "SegmentInfo",
    "cut_spectra",
    "halo_integrations",
    "join_segments",
    "segment_exposure",
    "split_exposure",
]

#: step alias -> (window parameter, True when statistics use every integration).
HALO_RULES = {
    "tso_jump": ("rolling_window_width", True),
    "tso_outlier": ("rolling_window_width", True),
    "tso_one_over_f": (None, True),
}

#: Arrays whose first axis is the integration (when present and of matching length).
PER_INTEGRATION = (
    "data",
    "dq",
    "err",
    "groupdq",
    "var_poisson",
    "var_rnoise",
    "var_flat",
    "zeroframe",
    "int_times",
    "tso_vectors",
)


def halo_integrations(alias, params, nints):
    """Integrations a segment needs on each side, from the step's own parameters.

    Parameters
    ----------
    alias : str
        Step alias.
    params : dict
        The step's parameters (values as given or as validated).
    nints : int
        Integrations of the whole exposure.

    Returns
    -------
    int or None
        None: the step needs no neighbours (each file is processed alone). Otherwise the
        halo; it is ``nints`` (the whole exposure) for the steps with statistics over all
        integrations (see the module docstring).
    """
    rule = HALO_RULES.get(alias)
    if rule is None:
        return None
    window_name, global_statistics = rule
    if global_statistics:
        return int(nints)
    return int(params[window_name]) // 2


def join_segments(segments, infos=None, scratch=None):
    """One model holding the integrations of ``segments`` (in order).

    Parameters
    ----------
    segments : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel` or str
        Segments of one exposure, all of one type and frame shape. File names are opened
        one at a time and closed once copied, so the peak is the joined model plus one
        segment.
    infos : list, optional
        If given, a `SegmentInfo` per segment is appended to it (for :func:`split_exposure`).
    scratch : str or `~pathlib.Path`, optional
        A folder: the joined arrays of images and cubes are then memory maps of (unlinked)
        files there, and segment files are read memory-mapped, so joining holds file pages,
        not private memory (a uint32 ``dq`` of a segment is still read: it is stored scaled).

    Returns
    -------
    `~stdatamodels.jwst.datamodels.JwstDataModel`
        A new model: the first segment's metadata, INTSTART/INTEND of the whole span, and
        every per-integration array and table concatenated.

    Raises
    ------
    ValueError
        If the segments differ in type, frame shape or per-integration arrays.
    """
    counts = [_nints(s) for s in segments]
    joined, buffers, first_start, start = None, {}, None, 0
    for segment, count in zip(segments, counts, strict=True):
        model, opened = _open(segment, lazy=scratch is not None)
        try:
            names = _present(model, count)
            if joined is None:
                joined = _shell(model, names)
                first_start = model.meta.exposure.integration_start or 1
                for name in names:
                    array = np.asarray(getattr(model, name))
                    shape = (sum(counts), *array.shape[1:])
                    buffers[name] = (
                        _mapped_buffer(scratch, shape, array.dtype)
                        if scratch is not None and array.ndim >= 3
                        else np.empty(shape, array.dtype)
                    )
            elif type(model) is not type(joined) or set(names) != set(buffers):
                raise ValueError(
                    f"Segments of one exposure differ in type or arrays ({type(joined).__name__}"
                    f" {sorted(buffers)} vs {type(model).__name__} {sorted(names)}); process "
                    "them separately."
                )
            for name, buffer in buffers.items():
                array = np.asarray(getattr(model, name))
                if array.shape[1:] != buffer.shape[1:] or array.shape[0] != count:
                    raise ValueError(
                        f"Segment array {name!r} of shape {array.shape} does not continue "
                        f"{buffer.shape[1:]} with one row per integration; process the "
                        "segments separately."
                    )
                buffer[start : start + count] = array
            if infos is not None:
                info = SegmentInfo.of(model)
                if opened:
                    info = info._replace(filename=Path(segment).name)
                infos.append(info)
        finally:
            if opened:
                model.close()
        start += count
    for name, buffer in buffers.items():
        setattr(joined, name, buffer)
    exposure = joined.meta.exposure
    exposure.integration_start = first_start
    exposure.integration_end = first_start + sum(counts) - 1
    return joined


def _nints(segment):
    """Integrations of a model, or of a file from its SCI header (no data read)."""
    if not isinstance(segment, (str, Path)):
        return segment.data.shape[0]
    header = fits.getheader(segment, "SCI")
    return int(header[f"NAXIS{header['NAXIS']}"])


def _open(segment, lazy=False):
    if isinstance(segment, (str, Path)):
        from stdatamodels.jwst import datamodels

        from tso_steps.inputs.budget import open_lazily

        model = open_lazily(segment) if lazy else None
        return (model or datamodels.open(segment)), True
    return segment, False


def _mapped_buffer(folder, shape, dtype):
    """A writable array of ``shape`` mapped from a new file in ``folder`` (unlinked at once)."""
    handle, path = tempfile.mkstemp(prefix=".tso_steps-join-", suffix=".raw", dir=folder)
    os.close(handle)
    try:
        return np.memmap(path, dtype=dtype, mode="w+", shape=shape)
    finally:
        os.unlink(path)  # the mapping keeps the data until the array is freed


class SegmentInfo(NamedTuple):
    """What :func:`split_exposure` needs of an input segment (no arrays)."""

    nints: int
    span: tuple
    segment_number: int | None
    filename: str | None

    @classmethod
    def of(cls, model):
        """The record of an open segment model."""
        exposure = model.meta.exposure
        return cls(
            model.data.shape[0],
            (exposure.integration_start, exposure.integration_end),
            exposure.segment_number,
            model.meta.filename,
        )


def split_exposure(result, segments):
    """Cut a joined result back into one model per segment, one at a time.

    Parameters
    ----------
    result : `~stdatamodels.jwst.datamodels.JwstDataModel`
        The step's output on :func:`join_segments` of ``segments``.
    segments : sequence of `~stdatamodels.jwst.datamodels.JwstDataModel` or `SegmentInfo`
        The input segments (their metadata gives INTSTART/INTEND, EXSEGNUM and file name);
        records let the caller close the input models before the step runs.

    Yields
    ------
    `~stdatamodels.jwst.datamodels.JwstDataModel`
        One per segment, in order (a generator, so only one cut-out exists at a time). Its
        per-integration arrays are views of ``result``'s: nothing is copied (a result read
        memory-mapped stays mapped), and changing them changes ``result``.
    """
    start = 0
    for segment in segments:
        info = segment if isinstance(segment, SegmentInfo) else SegmentInfo.of(segment)
        yield _cut(result, start, info.nints, info.span, info.segment_number, info.filename)
        start += info.nints


def segment_exposure(model, counts, name):
    """Cut one exposure into segments, as the archive delivers long exposures.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        A whole exposure (e.g. from :func:`~tso_steps.simulate.simulate_tso`).
    counts : sequence of int
        Integrations of each segment (summing to the exposure's).
    name : str
        File name pattern with ``{segment:03d}``, e.g. ``"jw01_seg{segment:03d}_uncal.fits"``.

    Returns
    -------
    list of `~stdatamodels.jwst.datamodels.JwstDataModel`
        With EXSEGNUM, INTSTART/INTEND (1-based within the exposure) and NINTS of the whole
        exposure.
    """
    total = model.data.shape[0]
    if sum(counts) != total or min(counts) < 1:
        raise ValueError(f"Segment sizes {list(counts)} do not add up to the {total} integrations.")
    pieces, start = [], 0
    for number, count in enumerate(counts, start=1):
        piece = _cut(
            model, start, count, (start + 1, start + count), number, name.format(segment=number)
        )
        piece.meta.exposure.nints = total
        pieces.append(piece)
        start += count
    return pieces


def _cut(model, start, count, span, segment_number, filename):
    """Integrations ``start:start + count`` of ``model`` as a new model of its type."""
    names = _present(model, model.data.shape[0])
    piece = _shell(model, names)
    for name in names:  # views: a mapped product stays mapped (saving reads them)
        setattr(piece, name, np.asarray(getattr(model, name))[start : start + count])
    exposure = piece.meta.exposure
    exposure.integration_start, exposure.integration_end = span
    exposure.segment_number = segment_number
    piece.meta.filename = filename
    return piece


def cut_spectra(model, span, segment_number, filename):
    """The integrations ``span`` of an x1dints product (``TSOMultiSpecModel``).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        Spectra of a joined exposure: each ``spec_table`` has one row per integration,
        numbered by ``INT_NUM``.
    span : tuple of int
        First and last integration (1-based, inclusive, within the exposure).
    segment_number : int or None
        EXSEGNUM of the piece.
    filename : str
        Its file name.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        The rows of ``span`` in every spectrum, ``int_times`` (and ``int_times_stripe``,
        ``tso_vectors``) cut by integration number; everything else copied.
    """
    first, last = span
    tables = {
        "int_times": "integration_number",
        "int_times_stripe": "integration_number",
        "tso_vectors": INDEX_COLUMN,
    }
    piece = _shell(model, ("spec", *tables))

    def rows(table, column):
        numbers = np.asarray(table[column])
        return np.array(table[(numbers >= first) & (numbers <= last)])

    piece.instance["spec"] = [
        {
            **{k: copy.deepcopy(v) for k, v in node.items() if k != "spec_table"},
            "spec_table": rows(node["spec_table"], "INT_NUM"),
        }
        for node in model.instance.get("spec", [])
    ]
    for name, column in tables.items():
        table = model.instance.get(name)
        if table is not None and column in (np.asarray(table).dtype.names or ()):
            piece.instance[name] = rows(table, column)
    exposure = piece.meta.exposure
    exposure.integration_start, exposure.integration_end = span
    exposure.segment_number = segment_number
    piece.meta.filename = filename
    return piece


def _shell(model, skip):
    """A new model of ``model``'s type with a deep copy of everything but ``skip``.

    ``update()`` would drop custom metadata (``meta.cal_step.tso_*``, ``tso_vectors``
    provenance), so the node tree is copied instead.
    """
    shell = type(model)()
    for key, value in model.instance.items():
        if key not in skip:
            shell.instance[key] = copy.deepcopy(value)
    return shell


def _present(model, nints):
    """Per-integration attributes of ``model`` with ``nints`` rows."""
    names = []
    for name in PER_INTEGRATION:
        value = model.instance.get(name)
        if value is None:
            continue
        value = np.asarray(value)
        if (
            value.ndim >= 1
            and value.shape[0] == nints
            and (
                value.ndim >= 3
                or name
                in (
                    "int_times",
                    "tso_vectors",
                )
            )
        ):
            names.append(name)
    return names
