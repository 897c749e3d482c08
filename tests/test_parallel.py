"""BLAS threads inside the steps (tso_steps.parallel)."""

import importlib

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tso_steps.integration import get_steps
from tso_steps.parallel import BLAS_THREAD_VARIABLES, OneBlasThreadMixin, one_blas_thread


def _blas_threads():
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}  # fmt: skip


@pytest.fixture
def no_user_setting(monkeypatch):
    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_one_blas_thread_limits_then_restores(no_user_setting):
    np.dot(np.ones((4, 4)), np.ones((4, 4)))  # BLAS loaded
    with threadpool_limits(limits=2, user_api="blas"):
        outer = _blas_threads()
        assert outer and set(outer.values()) == {2}
        with one_blas_thread():
            assert set(_blas_threads().values()) == {1}
        assert _blas_threads() == outer


def test_a_user_setting_is_left_alone(monkeypatch, no_user_setting):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with threadpool_limits(limits=2, user_api="blas"):
        with one_blas_thread():
            assert set(_blas_threads().values()) == {2}


def test_a_step_runs_with_one_blas_thread(no_user_setting):
    class Base:
        def run(self):
            return _blas_threads()

    class Probe(OneBlasThreadMixin, Base):
        pass

    with threadpool_limits(limits=2, user_api="blas"):
        assert set(Probe().run().values()) == {1}


@pytest.mark.parametrize("path", [p for p, _, is_pipeline in get_steps() if not is_pipeline])
def test_every_step_has_the_mixin(path):
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert cls.__mro__[1] is OneBlasThreadMixin
