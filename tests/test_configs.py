"""Every registered step ships an ASDF parameter file in config/ that stpipe loads.

Pipeline configuration files are tested in test_pipelines.py.
"""

import dataclasses
import importlib
from pathlib import Path

import pytest

from tso_steps.integration import get_steps

CONFIG = Path(__file__).resolve().parent.parent / "config"
STEPS = [(path, alias) for path, alias, is_pipeline in get_steps() if not is_pipeline]


def _step_class(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(("path", "alias"), STEPS)
def test_parameter_file_loads_and_matches_the_defaults(path, alias):
    cls = _step_class(path)
    config = CONFIG / f"{alias}.asdf"
    assert config.exists(), f"config/{alias}.asdf is missing"
    step = cls.from_config_file(str(config))
    assert isinstance(step, cls)
    defaults = cls().get_pars()
    loaded = step.get_pars()
    for key in ("input_dir", "output_dir", "output_file"):
        defaults.pop(key, None)
        loaded.pop(key, None)
    assert loaded == defaults


OPTIONS = [
    ("tso_steps.jump.step.TSOJumpStep", "tso_steps.jump.detect.JumpOptions"),
    ("tso_steps.outlier.step.TSOOutlierStep", "tso_steps.outlier.detect.OutlierOptions"),
    ("tso_steps.extract.step.OptimalExtractStep", "tso_steps.extract.core.ExtractOptions"),
    ("tso_steps.one_over_f.step.OneOverFStep", "tso_steps.one_over_f.correct.OneOverFOptions"),
    ("tso_steps.background.step.Background2DStep", "tso_steps.background.model.BackgroundOptions"),
    ("tso_steps.trace.step.TraceStep", "tso_steps.trace.tracing.TraceOptions"),
    ("tso_steps.centroid.step.CentroidStep", "tso_steps.centroid.centroiding.CentroidOptions"),
    ("tso_steps.jitter.step.JitterCorrectStep", "tso_steps.jitter.align.AlignmentOptions"),
    (
        "tso_steps.aperture.step.MovingApertureStep",
        "tso_steps.aperture.light_curve.ApertureOptions",
    ),
]


@pytest.mark.parametrize(("step_path", "options_path"), OPTIONS)
def test_options_take_the_spec_names_and_defaults(step_path, options_path):
    """An algorithm's options carry the step's names: nothing is renamed on the way."""
    defaults = _step_class(step_path)().get_pars()
    fields = dataclasses.fields(_step_class(options_path))
    shared = [f for f in fields if f.name in defaults]
    assert len(shared) >= 3, "the options should be named like the spec"
    for f in shared:
        if f.default is not dataclasses.MISSING and defaults[f.name] is not None:
            if isinstance(defaults[f.name], str) and f.default != defaults[f.name]:
                continue  # an option the step resolves ('auto' -> a method)
            assert f.default == defaults[f.name], f.name
