"""Every registered step ships an ASDF parameter file in config/ that stpipe loads.

Pipeline configuration files are tested in test_pipelines.py.
"""

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
