"""The rules of docs/architecture.md, enforced, and its worked example (an eleventh step), run.

The import rules are read from the source with :mod:`ast` (nothing is imported), so a rule
broken by a lazy import inside a function is caught too.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

import tso_steps
from eleventh_step import WhiteFluxOptions, WhiteFluxStep, white_flux
from tso_steps.inputs import DO_NOT_USE
from tso_steps.simulate import simulate_tso
from tso_steps.vectors import VECTOR_COLUMNS, get_vectors

PACKAGE = Path(tso_steps.__file__).parent

#: One folder per capability: step.py plus its numpy algorithm modules.
CAPABILITIES = {
    "aperture", "background", "centroid", "extract", "jitter", "jump", "one_over_f",
    "outlier", "timing", "trace",
}  # fmt: skip
#: Support for judging and running the steps; no step or shared module may import them.
SUPPORT = {"scoring", "simulate", "demo", "demo_plots"}
#: Built on the steps (they may import everything above).
ON_TOP = {"pipelines", "batch", "cli", "integration", "__init__"}
#: Datamodel libraries an algorithm module must not need.
MODEL_LIBRARIES = {"stdatamodels", "jwst", "stpipe"}

# Known exceptions, each with its reason; a new module may not join them.
ALGORITHMS_THAT_BUILD_PRODUCTS = {"extract/products.py"}  # writes the x1dints model
SIMULATION_RUNNERS = {"pipelines/simulated.py"}  # runs the pipelines on simulated data
# (cli.py, the command line, may start the demo)


def module_imports(source, package):
    """Absolute names of every module ``source`` imports (``package``: where it lives)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                yield f"{base}.{node.module}" if node.module else base
            else:
                yield node.module


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        package = ".".join(("tso_steps", *rel.parts[:-1]))
        names = [n for n in module_imports(path.read_text(), package) if n]
        yield rel, rel.parts[0].removesuffix(".py"), names


def _tso_part(name):
    parts = name.split(".")
    return parts[1] if parts[0] == "tso_steps" and len(parts) > 1 else None


def _is_algorithm(rel, top):
    return top in CAPABILITIES and rel.name not in ("step.py", "__init__.py", "adapter.py")


def test_adapters_and_steps_import_no_step_module():
    offending = [
        f"{rel}: {name}"
        for rel, top, names in _modules()
        if top in CAPABILITIES and rel.name in ("step.py", "adapter.py")
        for name in names
        if name.endswith(".step")
    ]
    assert offending == []


def test_other_steps_reach_the_tracing_through_its_adapter():
    from tso_steps.trace import adapter, measure_trace

    assert measure_trace is adapter.measure_trace
    step_source = (PACKAGE / "trace" / "step.py").read_text()
    assert "def measure_trace" not in step_source


def test_shared_layer_imports_no_capability_and_no_support_code():
    upward = CAPABILITIES | SUPPORT | ON_TOP
    offending = [
        f"{rel}: {name}"
        for rel, top, names in _modules()
        if top not in upward
        for name in names
        if _tso_part(name) in upward
    ]
    assert offending == []


def test_algorithm_modules_import_no_step_and_no_datamodel_library():
    offending = []
    for rel, top, names in _modules():
        if not _is_algorithm(rel, top):
            continue
        for name in names:
            if name.endswith(".step") or _tso_part(name) in SUPPORT | ON_TOP:
                offending.append(f"{rel}: {name}")
            if name.split(".")[0] in MODEL_LIBRARIES and str(rel) not in (
                ALGORITHMS_THAT_BUILD_PRODUCTS
            ):
                offending.append(f"{rel}: {name}")
    assert offending == []


def test_no_step_or_shared_module_imports_support_code():
    offending = [
        f"{rel}: {name}"
        for rel, top, names in _modules()
        if top not in SUPPORT | {"cli"} and str(rel) not in SIMULATION_RUNNERS
        for name in names
        if _tso_part(name) in SUPPORT
    ]
    assert offending == []


def test_simulator_imports_nothing_from_the_code_it_judges():
    # its truth (readout timing included: simulate/clocking.py) must not come from the
    # production code; tests/test_clocking.py compares the two readout models instead
    offending = [
        f"{rel}: {name}"
        for rel, top, names in _modules()
        if top == "simulate"
        for name in names
        if _tso_part(name) not in (None, "simulate")
    ]
    assert offending == []


def test_import_scan_resolves_relative_and_lazy_imports():
    source = (
        "from ..readout import ReadoutGeometry\nfrom . import core\n"
        "def f():\n    import tso_steps.stats\n"
    )
    assert list(module_imports(source, "tso_steps.simulate")) == [
        "tso_steps.readout",
        "tso_steps.simulate",
        "tso_steps.stats",
    ]
    assert [_tso_part(n) for n in module_imports(source, "tso_steps.simulate")] == [
        "readout",
        "simulate",
        "stats",
    ]


# ---------------------------------------------------------------- the worked example


@pytest.fixture
def white_flux_column(monkeypatch):
    """Recipe step 4: the new vector is registered (and documented in docs/vectors.rst)."""
    monkeypatch.setitem(
        VECTOR_COLUMNS, "white_flux", ("tso_white_flux", None, "relative white-light flux")
    )


def test_eleventh_step_recovers_the_injected_light_curve(white_flux_column):
    sim = simulate_tso(
        "NRC_TSIMAGE", nints=40, ngroups=3, crop=(24, 24), seed=5, jitter=False,
        cosmic_rays=False, one_over_f=False, background=False, photon_noise=False,
        read_noise=False, products=("rateints",),
    )  # fmt: skip
    model = sim.rateints
    model.dq[7] |= DO_NOT_USE  # integration 7 lost entirely ...
    model.data[7] = np.nan
    model.dq[3, 0, 0] |= 2**20  # ... and an unrelated bit set elsewhere
    before = model.dq.copy()

    result = WhiteFluxStep.call(model)

    measured = get_vectors(result)["white_flux"]
    truth = sim.truth.light_curve / np.median(np.delete(sim.truth.light_curve, 7))
    np.testing.assert_allclose(np.delete(measured, 7), np.delete(truth, 7), rtol=2e-5)
    assert 1 - truth.min() > 0.005  # the transit is there to be recovered
    assert np.isnan(measured[7])
    assert result.meta.cal_step.tso_white_flux == "COMPLETE"
    # DQ bits are OR'ed, never cleared; the caller's model is untouched
    assert np.all((result.dq & before) == before)
    np.testing.assert_array_equal(model.dq, before)
    assert model is not result and not model.hasattr("tso_vectors")


def test_eleventh_step_algorithm_refuses_too_few_pixels():
    data = np.ones((3, 4, 4))
    bad = np.zeros(data.shape, dtype=bool)
    bad[0, :, :3] = True
    bad[1, :, 3] = True  # no pixel is usable in every measurable integration
    with pytest.raises(ValueError, match="lower min_pixels"):
        white_flux(data, bad, WhiteFluxOptions(min_pixels=1))
    np.testing.assert_allclose(white_flux(data, np.zeros_like(bad), WhiteFluxOptions()), 1.0)


def test_eleventh_step_refuses_a_non_time_series_product():
    from stdatamodels.jwst import datamodels

    image = datamodels.ImageModel((8, 8))
    with pytest.raises((TypeError, ValueError), match="tso_white_flux"):
        WhiteFluxStep.call(image)
