"""Run tso-steps inside jwst's calwebb pipelines: placements, splicing and provenance.

jwst's pipelines call their steps one by one in ``process``; a step listed only in
``step_defs`` is configured (``--steps.NAME.*`` parses) but never run.  A tso pipeline
therefore lists our steps in ``step_defs`` *and* splices each configured instance into the
pre- or post-hook list of the jwst step it belongs next to (its *host*).  The jwst code path is
unchanged, our steps keep every parameter settable from the command line and from ASDF files,
and ``--steps.<alias>.skip=true`` skips one.

Where our step replaces a jwst step (``tso_jump`` for ``jump``, ``tso_extract`` for
``extract_1d``...), the host is skipped by default (a changed default in the pipeline's spec,
so users can still turn it back on) and our step runs as its post-hook, which stpipe runs
even for a skipped host.

jwst steps that build new models (``ramp_fit``, ``extract_1d``, the tso3 assembly) drop
custom metadata, so a tso pipeline remembers the ``meta.cal_step`` entries and ``tso_vectors``
of our steps' results and puts them back on every product it saves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from stdatamodels import DataModel

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import flag_nonfinite
from tso_steps.pipelines.entrance import check_pipeline_input
from tso_steps.vectors import (
    ATTRIBUTE,
    INDEX_COLUMN,
    get_vectors,
    integration_numbers,
)

__all__ = ["Placement", "ProvenanceCarrier", "TSOPipelineMixin"]

log = logging.getLogger("stpipe.tso_steps.pipelines")


@dataclass(frozen=True)
class Placement:
    """Where one of our steps runs inside a jwst pipeline.

    Attributes
    ----------
    name : str
        Our step's name in ``step_defs`` (its alias, e.g. ``tso_jump``).
    host : str
        Name of the jwst step it runs next to (e.g. ``jump``).
    when : {'pre', 'post'}
        Before the host (its input is ours) or after it (it receives the host's output).
    replaces : bool
        Our step does the host's job: the host is skipped by default.
    exclusive : bool
        Host and our step cannot both run (they return different products): running both is
        an error.  Implies ``replaces``.
    """

    name: str
    host: str
    when: str = "post"
    replaces: bool = False
    exclusive: bool = False


class _SplicedStep:
    """A hook entry that runs one of our configured steps and records its provenance."""

    def __init__(self, pipeline, placement):
        self.pipeline = pipeline
        self.placement = placement

    def run(self, *args):
        step = getattr(self.pipeline, self.placement.name)
        result = step.run(*args)
        self.pipeline.provenance.capture(result, step)
        return result


class ProvenanceCarrier:
    """Collects our steps' ``cal_step`` entries and ``tso_vectors`` and re-stamps products."""

    def __init__(self):
        self.cal_steps = {}
        self._vectors = []
        self._int_times = {}

    def capture(self, result, step):
        """Remember what one of our steps recorded on its result.

        Parameters
        ----------
        result : `~stdatamodels.DataModel` or other
            The step's result (tables and other objects are ignored).
        step : `~stpipe.Step`
        """
        alias = step.class_alias
        if not isinstance(result, DataModel):
            if alias:
                self.cal_steps[alias] = "SKIPPED" if step.skip else "COMPLETE"
            return
        # every tso_* entry: the result also carries those of earlier stages (detector1...)
        recorded = result.meta.cal_step.instance
        for name, status in recorded.items():
            if name.startswith("tso_") and status is not None:
                self.cal_steps[name] = status
        vectors = get_vectors(result)
        if len(vectors):
            self._vectors.append(vectors)
        int_times = getattr(result, "int_times", None) if result.hasattr("int_times") else None
        if int_times is not None:
            for row in np.asarray(int_times):
                self._int_times[int(row["integration_number"])] = row

    def int_times(self):
        """The ``int_times`` rows seen on our steps' results, by integration number.

        Returns
        -------
        `~astropy.table.Table`
        """
        if not self._int_times:
            return Table()
        return Table(np.array([self._int_times[n] for n in sorted(self._int_times)]))

    def vectors(self):
        """All vectors seen, one row per integration (the latest value of each column).

        Returns
        -------
        `~astropy.table.Table`
        """
        if not self._vectors:
            return Table()
        numbers = np.unique(
            np.concatenate([np.asarray(t[INDEX_COLUMN], dtype=np.int64) for t in self._vectors])
        )
        columns = {INDEX_COLUMN: numbers}
        covered, kinds = {}, {}
        for table in self._vectors:  # in capture order: later values replace earlier ones
            rows = np.searchsorted(numbers, np.asarray(table[INDEX_COLUMN], dtype=np.int64))
            for name in table.colnames:
                if name == INDEX_COLUMN:
                    continue
                if name not in columns:
                    columns[name] = np.full(numbers.size, np.nan)
                    covered[name] = np.zeros(numbers.size, dtype=bool)
                columns[name][rows] = np.asarray(table[name], dtype=np.float64)
                covered[name][rows] = True
                kinds[name] = np.asarray(table[name]).dtype
        for name, dtype in kinds.items():  # integer columns stay integer when complete
            if dtype.kind in "iub" and covered[name].all():
                columns[name] = columns[name].astype(dtype)
        return Table(columns)

    def restamp(self, model):
        """Put the remembered cal_step entries and vectors back on a product.

        Existing values are kept; only missing entries and columns are added.

        Parameters
        ----------
        model : `~stdatamodels.DataModel`
            Modified in place.
        """
        if not isinstance(model, DataModel):
            return
        for alias, status in self.cal_steps.items():
            if getattr(model.meta.cal_step, alias, None) is None:
                setattr(model.meta.cal_step, alias, status)
        known = self.vectors()
        if not len(known):
            return
        wanted = _model_integrations(model)
        if wanted is None:
            return
        index = {int(n): i for i, n in enumerate(known[INDEX_COLUMN])}
        rows = [index.get(int(n)) for n in wanted]
        if any(r is None for r in rows):
            log.debug("tso_vectors do not cover the integrations of %s", model.meta.filename)
            return
        selected = known[rows]
        existing = get_vectors(model)
        if len(existing) == len(selected):
            for name in existing.colnames:
                selected[name] = existing[name]
        setattr(model, ATTRIBUTE, selected.as_array())


def _model_integrations(model):
    """1-based integration numbers a product holds, or None if it holds no integrations."""
    data = getattr(model, "data", None) if model.hasattr("data") else None
    if data is not None and np.ndim(data) == 3:
        return integration_numbers(model, data.shape[0])
    if data is not None and np.ndim(data) == 4:
        return integration_numbers(model, data.shape[0])
    spec = getattr(model, "spec", None)
    if spec is not None and len(spec) and "INT_NUM" in spec[0].spec_table.columns.names:
        numbers = np.concatenate([np.asarray(s.spec_table["INT_NUM"]) for s in spec])
        return np.unique(numbers)
    return None


class TSOPipelineMixin(AtomicSaveMixin):
    """Splices our steps into a jwst pipeline subclass; see the module docstring.

    Every file the pipeline and its jwst steps write is written atomically
    (`AtomicSaveMixin`).

    Subclasses set ``placements`` (a tuple of `Placement`) and list each placed step in
    ``step_defs`` under its ``name``, and ``accepts`` (an `~tso_steps.inputs.Accepts`): the
    input is checked against it before the pipeline starts
    (:func:`~tso_steps.pipelines.entrance.check_pipeline_input`).  Every product it saves
    has its NaN and inf pixels flagged DO_NOT_USE (:func:`~tso_steps.inputs.flag_nonfinite`).
    """

    placements: tuple = ()
    accepts = None

    # Each jwst step still fetches its own references when it runs; fetching them all up
    # front fails offline even when every needed file is given as an override.
    prefetch_references = False

    @classmethod
    def load_spec_file(cls, preserve_comments=None):
        """The jwst pipeline's spec, with replaced jwst steps skipped by default."""
        kwargs = {} if preserve_comments is None else {"preserve_comments": preserve_comments}
        spec = super().load_spec_file(**kwargs)
        for placement in cls.placements:
            if placement.replaces or placement.exclusive:
                spec["steps"][placement.host]["skip"] = "boolean(default=True)"
        return spec

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provenance = ProvenanceCarrier()
        for placement in self.placements:
            host = getattr(self, placement.host)
            hooks = "_pre_hooks" if placement.when == "pre" else "_post_hooks"
            setattr(host, hooks, [*getattr(host, hooks), _SplicedStep(self, placement)])
        for host, when, hook in self.internal_hooks():
            hooks = "_pre_hooks" if when == "pre" else "_post_hooks"
            setattr(getattr(self, host), hooks, [*getattr(getattr(self, host), hooks), hook])

    def internal_hooks(self):
        """Hooks of the pipeline's own (not configurable): ``(host, 'pre' or 'post', hook)``.

        Returns
        -------
        list of tuple
        """
        return []

    def check_placements(self):
        """Raise if a replaced jwst step and the tso step that replaces it are both enabled.

        Raises
        ------
        ValueError
        """
        for placement in self.placements:
            ours, host = getattr(self, placement.name), getattr(self, placement.host)
            if placement.exclusive and not ours.skip and not host.skip:
                raise ValueError(
                    f"steps.{placement.host} and steps.{placement.name} are both enabled, but "
                    f"{placement.name} replaces {placement.host} in {self.class_alias}: skip one "
                    f"(--steps.{placement.name}.skip=true runs jwst's {placement.host})."
                )

    def run(self, *args):
        """Run the pipeline after checking the placements; see `stpipe.Step.run`."""
        self.provenance = ProvenanceCarrier()
        self.check_placements()
        if args and self.accepts is not None:
            check_pipeline_input(self.accepts, args[0])
        for placement in self.placements:
            ours = getattr(self, placement.name)
            log.info(
                "%s: %s runs %s %s%s",
                self.class_alias,
                placement.name,
                "before" if placement.when == "pre" else "after",
                placement.host,
                " (skipped)" if ours.skip else "",
            )
        return super().run(*args)

    def save_model(self, model, *args, **kwargs):
        """Save a product after re-stamping our provenance on it; see `stpipe.Step.save_model`."""
        self._finish(model)
        return super().save_model(model, *args, **kwargs)

    def finalize_result(self, result, reference_files_used):
        """Re-stamp our provenance on the pipeline's result before jwst finalizes it."""
        self._finish(result)
        return super().finalize_result(result, reference_files_used)

    def _finish(self, model):
        """Provenance back on a product, its non-finite pixels flagged."""
        self.provenance.restamp(model)
        if isinstance(model, DataModel):
            flag_nonfinite(model, self.class_alias)
