import importlib
import subprocess
import sys
from importlib.metadata import entry_points

from jwst.stpipe import Pipeline, Step

import tso_steps
import tso_steps.pipelines
from tso_steps.integration import get_steps


def test_entry_point_is_registered():
    names = [ep.value for ep in entry_points(group="stpipe.steps")]
    assert "tso_steps.integration:get_steps" in names


def test_registered_steps_are_exactly_the_exported_ones():
    registered = get_steps()
    exported = {
        f"{module.__name__}.{name}"
        for module in (tso_steps, tso_steps.pipelines)
        for name in module.__all__
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), Step)
    }
    assert {path for path, _, _ in registered} == exported
    aliases = [alias for _, alias, _ in registered]
    assert len(aliases) == len(set(aliases))
    for path, alias, is_pipeline in registered:
        module, name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        assert cls.class_alias == alias
        assert alias.startswith("tso_")
        assert is_pipeline == issubclass(cls, Pipeline)


def test_a_step_is_imported_only_when_asked_for():
    # strun imports the class path "tso_steps.<Step>": the other steps (and photutils)
    # must not come with it
    code = (
        "import sys, tso_steps; before = set(sys.modules); tso_steps.TSOOutlierStep; "
        "print(int('tso_steps.outlier.step' in before), "
        "int('tso_steps.aperture.step' in sys.modules), int('photutils' in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0", "0"]
    assert "TSOOutlierStep" in dir(tso_steps)
