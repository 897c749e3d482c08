import numpy as np
import pytest

from tso_steps.stats import fill_masked_in_time, relative_flux, robust_std, rolling_median


def test_robust_std_matches_gaussian_sigma_and_ignores_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2.0, 200_000)
    x[:1000] = 1e6
    x[1000:1100] = np.nan
    assert robust_std(x) == pytest.approx(2.0, rel=0.01)


def test_rolling_median_is_not_blanked_by_a_masked_sample():
    t = np.arange(101, dtype=float)
    series = np.stack([t, 2 * t], axis=1)  # two pixels
    mask = np.zeros_like(series, dtype=bool)
    mask[50, 0] = True
    series[50, 0] = 1e9
    series[20, 1] = np.nan
    med = rolling_median(series, 7, mask=mask)
    assert np.all(np.isfinite(med))
    np.testing.assert_allclose(med[3:-3, 0], t[3:-3])
    np.testing.assert_allclose(med[3:-3, 1], 2 * t[3:-3])


def test_fill_masked_interpolates_and_keeps_all_bad_pixels_nan():
    series = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, np.nan]])
    filled = fill_masked_in_time(series)
    assert filled[1, 0] == pytest.approx(2.0)
    assert np.all(np.isnan(filled[:, 1]))


def test_relative_flux_recovers_a_transit_scale():
    rng = np.random.default_rng(2)
    image = rng.uniform(100, 1000, size=(8, 8))
    depth = np.ones(40)
    depth[15:25] = 0.99
    cube = depth[:, None, None] * image + rng.normal(0, 0.1, size=(40, 8, 8))
    scale = relative_flux(cube)
    np.testing.assert_allclose(scale[15:25] / scale[:15].mean(), 0.99, atol=2e-4)
