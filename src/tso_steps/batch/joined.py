"""Segment-aware tasks: run a step or pipeline on the whole exposure, cut its products back.

The segments of an exposure are joined along integrations into one file named as the
exposure (the segment's name without ``-segNNN``), the step or pipeline runs on it as
``strun`` runs on a file, with ``save_results`` on, and every product it writes is then
cut back into one product per segment, named as ``strun`` names the segment's product:

- products with one entry per integration are cut by integration: FITS arrays whose first
  axis is the integration (ramps, rateints, calints, crfints, with their ``int_times`` and
  ``tso_vectors`` rows), spectra (x1dints: the rows of every ``spec_table`` by ``INT_NUM``)
  and ECSV tables (``tso_vectors`` by ``integration_number``; white-light and photometry
  tables, one row per integration, by position);
- every other product (the 2-D ``rate`` image of calwebb_detector1, made from all
  integrations) cannot be cut: it is published once, for the whole exposure, under the
  exposure's name (``jw..._00001_nrcalong_rate.fits``), and listed with every segment.

calwebb_tso3 (and ``tso_tso3``) takes an association: the joined calints is wrapped in one
whose product name is the exposure's.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from tso_steps.batch.plan import SEGMENT_IN_NAME
from tso_steps.batch.segments import cut_spectra, join_segments, split_exposure
from tso_steps.inputs.budget import open_lazily
from tso_steps.vectors import INDEX_COLUMN

__all__ = ["ExposureNames", "cut_products", "product_root", "run_exposure"]

log = logging.getLogger("stpipe.tso_steps.batch")


def product_root(name):
    """Root of the products stpipe names after a file (its known suffix removed).

    ``jw..._00001-seg001_nrcalong_uncal.fits`` -> ``jw..._00001-seg001_nrcalong``.
    """
    from jwst.lib.suffix import remove_suffix

    return remove_suffix(name.split(".")[0])[0]


@dataclass(frozen=True)
class ExposureNames:
    """File names of a joined exposure and of its segments' products.

    Attributes
    ----------
    root : str
        Root of the exposure's products, e.g. ``jw01366004001_04101_00001_nrcalong``.
    joined : str
        File name of the joined input, e.g. ``jw01366004001_04101_00001_nrcalong_uncal.fits``.
    segment_roots : tuple of str
        Root of each segment's products, e.g. ``jw01366004001_04101_00001-seg001_nrcalong``.
    """

    root: str
    joined: str
    segment_roots: tuple

    @classmethod
    def of(cls, inputs):
        """Names for the segment files ``inputs`` (in order)."""
        roots = tuple(product_root(Path(p).name) for p in inputs)
        name = Path(inputs[0]).name
        root = SEGMENT_IN_NAME.sub("", roots[0])
        if root == roots[0]:  # no -segNNN in the names: say that the file is the whole
            root = f"{roots[0]}-exposure"
        return cls(root, root + name[len(roots[0]) :], roots)

    def segment_name(self, product, index):
        """Name of segment ``index``'s product for the exposure product ``product``, or None."""
        if not product.startswith(self.root):
            return None
        return self.segment_roots[index] + product[len(self.root) :]


def run_exposure(step, inputs, staging, association=None):
    """Run ``step`` once on the joined segments; cut its products per segment.

    Parameters
    ----------
    step : `~stpipe.Step`
        A step or pipeline, built as for one file (``output_dir`` is set here).
    inputs : sequence of str
        Segment files of one exposure, in integration order.
    staging : `~pathlib.Path`
        Folder of the task's products; the exposure's run works in a subfolder of it.
    association : callable, optional
        ``association(path, product_name)``: the file to give the step for the joined input
        (calwebb_tso3 takes an association); default the joined file itself.

    Returns
    -------
    dict
        Input file to the staged paths of its products (its own cut-outs, then the
        exposure's products that cannot be cut).
    """
    infos = []
    names = ExposureNames.of(inputs)
    folder = Path(staging) / "exposure"
    products = folder / "products"
    products.mkdir(parents=True)
    joined = join_segments(inputs, infos, scratch=folder)  # held in file pages
    path = folder / names.joined
    log.info(
        "batch: %d segments joined into integrations %d-%d as %s for %s",
        len(infos),
        joined.meta.exposure.integration_start,
        joined.meta.exposure.integration_end,
        names.joined,
        step.class_alias or type(step).__name__,
    )
    joined.save(path)
    joined.close()
    del joined
    step.output_dir = str(products)
    step.save_results = True
    step.run(str(association(path, names.root) if association else path))
    staged = cut_products(products, infos, names, Path(staging))
    shutil.rmtree(folder, ignore_errors=True)
    return dict(zip(inputs, staged, strict=True))


def cut_products(folder, infos, names, staging):
    """Cut every product in ``folder`` per segment into ``staging``.

    Parameters
    ----------
    folder : `~pathlib.Path`
        Products of the run on the joined exposure.
    infos : sequence of `~tso_steps.batch.segments.SegmentInfo`
        The segments, in order.
    names : ExposureNames
    staging : `~pathlib.Path`

    Returns
    -------
    list of list of str
        Per segment: its cut-outs, then the products of the whole exposure.
    """
    pieces = [[] for _ in infos]
    whole = []
    for product in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        cut = _cut(product, infos, names, staging)
        if cut is None:
            target = staging / product.name
            os.replace(product, target)
            whole.append(str(target))
            log.info("batch: %s holds the whole exposure: not cut per segment", product.name)
            continue
        for own, path in zip(pieces, cut, strict=True):
            own.append(path)
    return [own + whole for own in pieces]


def _spans(infos, first):
    """(first, last) integration of every segment, 1-based within the exposure."""
    spans, start = [], first
    for info in infos:
        lo, hi = info.span
        known = lo is not None and hi is not None
        spans.append((lo, hi) if known else (start, start + info.nints - 1))
        start += info.nints
    return spans


def _cut(product, infos, names, staging):
    """Paths of the per-segment cut-outs of one product, or None if it cannot be cut."""
    targets = [names.segment_name(product.name, i) for i in range(len(infos))]
    if None in targets:
        return None
    total = sum(info.nints for info in infos)
    if product.suffix == ".ecsv":
        return _cut_table(product, infos, targets, staging, total)
    if product.suffix != ".fits":
        return None
    from stdatamodels.jwst import datamodels

    with open_lazily(product) or datamodels.open(product) as model:
        first = model.meta.exposure.integration_start or 1
        spans = _spans(infos, first)
        if isinstance(model, datamodels.TSOMultiSpecModel):
            spec = model.instance.get("spec") or []
            if not spec or "INT_NUM" not in (spec[0]["spec_table"].dtype.names or ()):
                return None
            cuts = (
                cut_spectra(model, span, info.segment_number, target)
                for span, info, target in zip(spans, infos, targets, strict=True)
            )
        elif model.hasattr("data") and np.ndim(model.data) >= 3 and len(model.data) == total:
            cuts = split_exposure(model, infos)
        else:
            return None
        paths = []
        for piece, target in zip(cuts, targets, strict=True):
            paths.append(str(staging / target))
            piece.save(paths[-1])
            piece.close()
    return paths


def _cut_table(product, infos, targets, staging, total):
    """ECSV table cut by integration number, or by position with one row per integration."""
    table = Table.read(product, format="ascii.ecsv")
    if INDEX_COLUMN in table.colnames:
        numbers = np.asarray(table[INDEX_COLUMN])
        first = int(numbers.min()) if len(numbers) else 1
        spans = _spans(infos, first)
        selections = [(numbers >= lo) & (numbers <= hi) for lo, hi in spans]
    elif len(table) == total:
        bounds = np.cumsum([0] + [info.nints for info in infos])
        selections = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    else:
        return None
    paths = []
    for selection, target in zip(selections, targets, strict=True):
        paths.append(str(staging / target))
        table[selection].write(paths[-1], format="ascii.ecsv", overwrite=True)
    return paths
