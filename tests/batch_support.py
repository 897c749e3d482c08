"""Helpers of the batch tests (test_batch.py, test_batch_segments.py)."""

from importlib.util import find_spec

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps.pipelines.simulated import OFFLINE_SKIPS

needs_dask = pytest.mark.skipif(
    find_spec("distributed") is None,
    reason='dask.distributed missing: pip install "tso-steps[batch]"',
)


def arrays(path, names=("data", "groupdq", "pixeldq", "dq", "err")):
    """The named arrays of a product file (those it has)."""
    with datamodels.open(path) as model:
        return {n: np.array(getattr(model, n)) for n in names if model.hasattr(n)}


def offline_tokens(alias, references=None):
    """``--param`` strings that run pipeline ``alias`` offline on a simulation."""
    tokens = [f"steps.{name}.skip=true" for name in OFFLINE_SKIPS[alias]]
    tokens += [f"steps.ramp_fit.{k}={v}" for k, v in (references or {}).items()]
    if alias == "tso_tso3":
        tokens.append("steps.white_light.override_wavelengthrange=N/A")
    return tokens
