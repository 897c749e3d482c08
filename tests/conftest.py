"""Shared test set-up: offline, no CRDS server, validation warnings are errors."""

import os

import pytest

import tso_steps.vectors
from tso_steps.offline import make_offline_crds_cache

# Tests never reach a CRDS server: no parameter reference look-ups, and a throwaway cache.
os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "true"
os.environ.pop("CRDS_SERVER_URL", None)

# A step that writes a tso_vectors column missing from VECTOR_COLUMNS (and so from
# docs/vectors.rst) fails its tests.
tso_steps.vectors.STRICT_COLUMNS = True


@pytest.fixture(scope="session", autouse=True)
def offline_crds_cache(tmp_path_factory):
    """A throwaway CRDS cache holding only the server config that jwst reads at the end of
    a pipeline or of a step given ``override_*`` reference files."""
    root = make_offline_crds_cache(tmp_path_factory.mktemp("crds_cache"))
    previous = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("CRDS_PATH", None)
    else:
        os.environ["CRDS_PATH"] = previous


@pytest.fixture(scope="session")
def fault_products():
    """The small simulated products of the fault tests (``fault_matrix.make_products``).

    Made once per session; tests take copies (``fault_matrix.step_input``) and never change
    these.
    """
    from fault_matrix import make_products

    return make_products()
