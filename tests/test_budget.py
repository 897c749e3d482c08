"""memory_budget: chunked runs of tso_jump, tso_outlier and tso_one_over_f equal in-memory runs.

Budgets are chosen so that chunks hold 1 line, a few lines that do not divide the frame
(the last chunk is short, and output/line groups are split mid-way), and the whole frame.
Whether the budget bounds the memory is measured in benchmarks/bench_budget.py, not here.
"""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from tso_steps.inputs import OUTLIER
from tso_steps.inputs.budget import budget_bytes, chunk_spans, open_lazily
from tso_steps.jump.step import TSOJumpStep
from tso_steps.one_over_f.step import OneOverFStep
from tso_steps.outlier.step import TSOOutlierStep
from tso_steps.simulate import Jitter, simulate_tso

JUMP = 4
SHAPE = dict(subarray="SUBGRISM64", crop=(32, 256))


@pytest.fixture(scope="module")
def ramp():
    return simulate_tso(
        "NRC_TSGRISM", nints=36, ngroups=4, seed=7, cosmic_rays=2e-3, products=("ramp",),
        jitter=Jitter(rms=0.05), **SHAPE,
    ).ramp  # fmt: skip


@pytest.fixture(scope="module")
def rateints():
    return simulate_tso(
        "NRC_TSGRISM", nints=50, ngroups=5, seed=3, cosmic_rays=2e-3, products=("rateints",),
        jitter=Jitter(rms=0.05), **SHAPE,
    ).rateints  # fmt: skip


def _same(a, b, names):
    for name in names:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for column in a.tso_vectors.dtype.names:
        np.testing.assert_array_equal(a.tso_vectors[column], b.tso_vectors[column], column)


def test_chunk_spans_cover_the_lines_in_order():
    spans = chunk_spans(32, 1e6, memory_budget=3.5)
    assert spans[0] == (0, 3) and spans[-1] == (30, 32)
    assert [s[1] for s in spans[:-1]] == [s[0] for s in spans[1:]]
    assert chunk_spans(32, 1e6, memory_budget=0.5 + 1e-9) == [(i, i + 1) for i in range(32)]
    assert chunk_spans(32, 1e6) == [(0, 16), (16, 32)]  # default 16 MB
    assert budget_bytes(None) is None and budget_bytes(2.5) == 2_500_000
    with pytest.raises(ValueError, match="memory_budget"):
        budget_bytes(-1)


@pytest.mark.parametrize("budget", [1, 2.5, 7])
def test_jump_flags_do_not_depend_on_the_budget(ramp, budget):
    # one line of 256 pixels x 36 ints x 3 diffs is 0.11 MB of float32 (x10 temporaries):
    # 1 MB -> 1 line per slab, 2.5 MB -> 2 lines, 7 MB -> 6 lines (32 = 5 x 6 + 2)
    reference = TSOJumpStep.call(ramp)
    chunked = TSOJumpStep.call(ramp, memory_budget=budget)
    assert ((reference.groupdq & JUMP) != 0).sum() > 20
    _same(chunked, reference, ("groupdq", "data", "pixeldq"))


def test_jump_flags_do_not_depend_on_the_budget_with_threads(ramp):
    reference = TSOJumpStep.call(ramp)
    chunked = TSOJumpStep.call(ramp, memory_budget=3, maximum_cores="2")
    _same(chunked, reference, ("groupdq",))


@pytest.mark.parametrize("budget", [1, 2.3, 5])
def test_outlier_flags_do_not_depend_on_the_budget(rateints, budget):
    reference = TSOOutlierStep.call(rateints)
    chunked = TSOOutlierStep.call(rateints, memory_budget=budget)
    assert ((reference.dq & OUTLIER) != 0).sum() > 20
    _same(chunked, reference, ("data", "dq", "err", "var_poisson", "var_rnoise"))


@pytest.mark.parametrize("budget", [1, 3])
def test_one_over_f_cube_does_not_depend_on_the_budget(rateints, budget):
    # 12 float32 frames of 32 x 256 per integration: 1 MB -> 2 integrations a chunk,
    # 3 MB -> 7 (50 = 7 x 7 + 1); without a budget, 16
    reference = OneOverFStep.call(rateints)
    chunked = OneOverFStep.call(rateints, memory_budget=budget)
    assert np.abs(reference.data - rateints.data).max() > 0  # something was corrected
    _same(chunked, reference, ("data", "one_over_f_mask"))


def test_one_over_f_ramp_does_not_depend_on_the_budget(ramp):
    reference = OneOverFStep.call(ramp)
    _same(OneOverFStep.call(ramp, memory_budget=1), reference, ("data", "groupdq"))


def test_a_file_is_read_lazily_and_the_products_are_the_same(ramp, tmp_path):
    path = tmp_path / "jw09999001001_01101_00001-seg001_nrcalong_ramp.fits"
    ramp.save(path)
    lazy = open_lazily(path)
    assert isinstance(lazy, datamodels.RampModel)
    base = lazy.data
    while getattr(base, "base", None) is not None:
        base = base.base
    assert not isinstance(base, np.ndarray)  # a memory map, not a copy
    np.testing.assert_array_equal(lazy.data, ramp.data)
    np.testing.assert_array_equal(lazy.pixeldq, ramp.pixeldq)  # BZERO-scaled: read
    lazy.close()
    in_memory = TSOJumpStep.call(str(path))
    chunked = TSOJumpStep.call(str(path), memory_budget=2)
    _same(chunked, in_memory, ("groupdq", "data", "pixeldq"))
    with datamodels.open(path) as untouched:  # the input file is never changed
        np.testing.assert_array_equal(untouched.groupdq, ramp.groupdq)


def _mapped(array):
    base = array
    while getattr(base, "base", None) is not None:
        base = base.base
    return not isinstance(base, np.ndarray)


def test_a_scratch_copy_maps_the_scaled_dq_and_takes_the_writes(rateints, tmp_path):
    path = tmp_path / "jw09999001001_01101_00001-seg001_nrcalong_rateints.fits"
    rateints.save(path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    lazy = open_lazily(path, scratch=scratch)
    assert list(scratch.iterdir()) == []  # unlinked once mapped: never left behind
    assert _mapped(lazy.dq) and _mapped(lazy.data)  # the BZERO-scaled dq is mapped too
    np.testing.assert_array_equal(lazy.dq, rateints.dq)
    np.testing.assert_array_equal(lazy.data, rateints.data)
    lazy.dq[0, :2] |= np.uint32(OUTLIER)
    lazy.data[0, 0] = np.nan
    lazy.close()
    with datamodels.open(path) as untouched:  # the input file is never changed
        np.testing.assert_array_equal(untouched.dq, rateints.dq)
        np.testing.assert_array_equal(untouched.data, rateints.data)
    # a budgeted step writes its flags into the copy; the products are those in memory
    out = tmp_path / "out"
    out.mkdir()
    chunked = TSOOutlierStep.call(str(path), memory_budget=2, output_dir=str(out))
    assert list(out.iterdir()) == []
    _same(chunked, TSOOutlierStep.call(rateints), ("data", "dq", "err", "var_poisson"))
    corrected = OneOverFStep.call(str(path), memory_budget=1, output_dir=str(out))
    _same(corrected, OneOverFStep.call(rateints), ("data", "dq", "one_over_f_mask"))


def test_unsigned_16_bit_data_are_mapped_with_their_values(tmp_path):
    uncal = datamodels.Level1bModel(
        data=np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5) * np.uint16(1000)
    )
    path = tmp_path / "uncal.fits"
    uncal.save(path)
    lazy = open_lazily(path, scratch=tmp_path)
    assert _mapped(lazy.data) and lazy.data.dtype.kind == "u"
    np.testing.assert_array_equal(lazy.data, uncal.data)
    lazy.close()


def test_trace_and_extract_map_a_file_and_give_the_same_products(rateints, tmp_path):
    """tso_trace and tso_extract map a file (``Accepts.mapped``): same products as in memory."""
    from tso_steps.extract.step import ACCEPTS as EXTRACT
    from tso_steps.extract.step import OptimalExtractStep
    from tso_steps.inputs import prepare_output
    from tso_steps.trace.step import ACCEPTS as TRACE
    from tso_steps.trace.step import TraceStep

    path = tmp_path / "jw09999001001_01101_00001-seg001_nrcalong_rateints.fits"
    rateints.save(path)
    for step, accepts in ((TraceStep(), TRACE), (OptimalExtractStep(), EXTRACT)):
        model = prepare_output(step, str(path), accepts)
        assert _mapped(model.data) and _mapped(model.var_rnoise)
        model.close()
    traced = TraceStep.call(str(path))
    in_memory = TraceStep.call(rateints)
    np.testing.assert_array_equal(traced.trace_center, in_memory.trace_center)
    _same(traced, in_memory, ("data", "dq", "var_rnoise"))
    traced_path = tmp_path / "jw09999001001_01101_00001-seg001_nrcalong_trace.fits"
    traced.save(traced_path)
    from_file = OptimalExtractStep.call(str(traced_path))
    from_model = OptimalExtractStep.call(traced)
    for a, b in zip(from_file.spec, from_model.spec, strict=True):
        for column in ("FLUX", "FLUX_ERROR", "FLUX_VAR_POISSON", "FLUX_VAR_RNOISE"):
            np.testing.assert_array_equal(a.spec_table[column], b.spec_table[column], column)
    with datamodels.open(path) as untouched:  # the input file is never changed
        np.testing.assert_array_equal(untouched.dq, rateints.dq)
