import numpy as np
import pytest

from tso_steps.stats import nanmedian_last, order_statistics, robust_std, robust_std_last


def test_robust_std_matches_gaussian_sigma_and_ignores_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2.0, 200_000)
    x[:1000] = 1e6
    x[1000:1100] = np.nan
    assert robust_std(x) == pytest.approx(2.0, rel=0.01)


def test_nanmedian_last_matches_numpy_and_respects_min_count():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 7)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    expected = np.nanmedian(np.where(np.isnan(x).all(axis=1, keepdims=True), 0, x), axis=1)
    got = nanmedian_last(x)
    finite = np.isfinite(x).any(axis=1)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6)
    assert np.all(np.isnan(got[~finite]))
    sparse = nanmedian_last(x, min_count=6)
    assert np.all(np.isnan(sparse[np.isfinite(x).sum(axis=1) < 6]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_order_statistics_are_the_values_np_partition_puts_there(dtype):
    # NaN last and +-inf in place, ties, adjacent and spread ranks; in place or on a copy
    rng = np.random.default_rng(4)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        x = np.round(rng.normal(size=(int(rng.integers(1, 12)), n)) * 3).astype(dtype)
        x[rng.random(x.shape) < 0.3 * rng.random()] = np.nan
        x[rng.random(x.shape) < 0.05] = np.inf
        x[rng.random(x.shape) < 0.05] = -np.inf
        ranks = np.unique(rng.choice(n, size=int(rng.integers(1, min(n, 5) + 1)), replace=False))
        expected = np.partition(x, ranks, axis=-1)[..., ranks]
        copy = x.copy()
        np.testing.assert_array_equal(order_statistics(copy, ranks), expected)
        np.testing.assert_array_equal(copy, x)
        np.testing.assert_array_equal(order_statistics(copy, ranks, overwrite=True), expected)


def test_robust_std_last_per_row_and_subsampled():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3.0, size=(4, 40_000))
    x[:, :300] = 1e5  # outliers
    np.testing.assert_allclose(robust_std_last(x), 3.0, rtol=0.03)
    np.testing.assert_allclose(robust_std_last(x, max_samples=5000), 3.0, rtol=0.06)
