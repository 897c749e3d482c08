"""The fast paths of tso_one_over_f give the numbers of the direct computations (issue 15)."""

import numpy as np
import pytest

from tso_steps.one_over_f.reads import plan_reads
from tso_steps.one_over_f.scene import fit_source_pixels, source_design
from tso_steps.one_over_f.stripes import fit_stripes, segment_times, stripe_image
from tso_steps.readout import LineLayout, ReadoutGeometry
from tso_steps.stats import nanmedian_last

LAYOUTS = {
    "nirspec": ReadoutGeometry("NIRSPEC", (32, 512), 2, 1, 1),  # lines along y, one output
    "nircam": ReadoutGeometry("NIRCAM", (16, 256), -1, 2, 4),  # four outputs in bands
    "miri": ReadoutGeometry("MIRI", (416, 72), 1, 2, 4, xstart=1, ystart=529),  # interleaved
}


def _striped_lines(rng, layout, nframes):
    """Line-view frames: offsets per column group, a level per line and output, noise, NaN."""
    n_lines = layout.ticks.shape[0]
    groups = layout.column_groups(True)
    offsets = rng.normal(0, 3, (nframes, groups.max() + 1))
    levels = rng.normal(0, 5, (nframes, n_lines, layout.namp))
    lines = offsets[:, groups][:, None, :] + levels[:, :, layout.amp]
    lines = (lines + rng.normal(0, 1, lines.shape)).astype(np.float32)
    lines[rng.random(lines.shape) < 0.01] = np.nan
    lines[rng.random(lines.shape) < 0.002] += 500  # outliers the clipping removes
    return lines


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("segment", [None, 20])
def test_read_plan_fits_the_stripes_of_whole_lines(name, segment):
    rng = np.random.default_rng(3)
    layout = LineLayout.from_geometry(LAYOUTS[name])
    lines = _striped_lines(rng, layout, 6)
    weights = rng.uniform(0.5, 2.0, lines.shape[1:]).astype(np.float32)
    weights[rng.random(weights.shape) < 0.7] = 0  # most pixels lit, as on NIRSpec
    plan = plan_reads(weights, layout, True, segment)
    direct = fit_stripes(lines, weights, layout, segment=segment, raw=True)
    planned = fit_stripes(lines, weights, layout, segment=segment, raw=True, plan=plan)
    # the same samples kept: the same levels, to the rounding of the float64 sums
    np.testing.assert_allclose(planned.offsets, direct.offsets, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.isnan(planned.levels), np.isnan(direct.levels))
    np.testing.assert_allclose(planned.levels, direct.levels, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(planned.variance, direct.variance, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_stripe_image_interpolates_the_levels_as_np_interp(name):
    rng = np.random.default_rng(4)
    layout = LineLayout.from_geometry(LAYOUTS[name])
    fit = fit_stripes(
        _striped_lines(rng, layout, 3), np.ones(layout.ticks.shape), layout, segment=9
    )
    image = layout.to_lines(stripe_image(fit, layout))
    centres = segment_times(layout, fit.nseg)
    order = np.argsort(centres)
    levels = fit.levels.reshape(3, -1, layout.namp)
    for frame in range(3):
        for amp in range(layout.namp):
            columns = np.flatnonzero(layout.amp == amp)
            expected = np.interp(
                layout.ticks[:, columns].astype(np.float64),
                centres[order],
                levels[frame, order, amp],
            ).astype(np.float32)
            expected += fit.offsets[frame, layout.column_groups(True)[columns]].astype(np.float32)
            np.testing.assert_array_equal(image[frame][:, columns], expected)


def test_fit_source_pixels_recovers_the_injected_scale_and_shifts():
    rng = np.random.default_rng(5)
    nframes, npix = 12, 3000
    basis = [rng.uniform(100, 1000, (nframes, npix)), *rng.normal(0, 50, (2, nframes, npix))]
    basis = [b.astype(np.float32) for b in basis]
    basis[1][:, :10] = np.nan  # a term not finite: the pixel is not used
    truth = np.column_stack([rng.uniform(0.98, 1.02, nframes), rng.normal(0, 0.05, (nframes, 2))])
    values = sum(c[:, None] * np.nan_to_num(b) for c, b in zip(truth.T, basis, strict=True))
    values = (values + rng.normal(0, 1.0, values.shape)).astype(np.float32)
    values[:, 100:110] += 1e4  # cosmic rays: clipped
    values[3, 200:220] = np.nan
    coeffs = fit_source_pixels(values, basis)
    np.testing.assert_allclose(coeffs[:, 0], truth[:, 0], atol=1e-4)
    np.testing.assert_allclose(coeffs[:, 1:], truth[:, 1:], atol=2e-3)
    # the design made once gives the same numbers
    np.testing.assert_array_equal(fit_source_pixels(values, source_design(basis)), coeffs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [12, 40, 3000])
def test_nanmedian_last_with_many_counts_matches_numpy(dtype, length):
    # rows with different numbers of NaN need many ranks: sorted (short rows) or partitioned
    # row by row (long float64 rows)
    rng = np.random.default_rng(6)
    x = np.round(rng.normal(size=(40, length)) * 4).astype(dtype)  # ties
    x[rng.random(x.shape) < rng.uniform(0, 0.6, (40, 1))] = np.nan
    x[0] = np.nan
    with pytest.warns(RuntimeWarning):
        expected = np.nanmedian(x, axis=-1).astype(dtype)
    np.testing.assert_array_equal(nanmedian_last(x), expected)


def test_the_wiener_factor_is_reused_only_for_the_same_matrix():
    import scipy.linalg

    from tso_steps.one_over_f.wiener import _conditional_mean

    rng = np.random.default_rng(8)
    a = rng.normal(size=(30, 30))
    kmm = a @ a.T + 30 * np.eye(30)
    k_cm = rng.normal(size=(10, 30))
    y = rng.normal(size=(4, 30))

    def direct(matrix):
        return y @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix), k_cm.T)

    first = _conditional_mean(kmm, k_cm, y)
    np.testing.assert_allclose(first, direct(kmm), rtol=1e-12)
    # the same matrix again (a new array): the same result
    np.testing.assert_array_equal(_conditional_mean(kmm.copy(), k_cm, y), first)
    # a matrix of the same size that differs in one variance: factorised anew
    changed = kmm.copy()
    changed[3, 3] *= 1.5
    np.testing.assert_allclose(_conditional_mean(changed, k_cm, y), direct(changed), rtol=1e-12)
    assert not np.allclose(_conditional_mean(changed, k_cm, y), first)
