"""tso_centroid on the independent imaging PSF matrix: families x breathing x seeds.

Data: ``tso_steps.simulate.imaging_psfs.imaging_series`` (analytic PSFs integrated over pixels,
truth and Cramer-Rao bound from the same independent functions; 2e5 e per integration,
20 e/px background, 10 e read noise, 0.02 px random-walk jitter plus a (0.3, -0.2) px tilt
half-way; breathing: 2 % size drift plus a 1 % step at the tilt).  Per cell: RMS of
(measured - true light centroid) over integrations (mean offset removed) divided by the CRB
(flux and background as nuisance parameters), x and y, for

* ``ours``: ``measure_centroids(method='template')`` (the step's default),
* ``before``: the same with ``fit_width=False`` (the algorithm on main before this change),
* ``com``: ``method='com'`` (the simple baseline).

Usage::

    python benchmarks/bench_centroid_matrix.py [--nints 100] [--seeds 1 2]
"""

import argparse
import logging

import numpy as np

from tso_steps.centroid import measure_centroids
from tso_steps.simulate.imaging_psfs import FAMILIES, imaging_series


def _ratio(series, table, crb):
    ex = np.asarray(table["centroid_x"]) - series.x
    ey = np.asarray(table["centroid_y"]) - series.y
    return np.array([np.nanstd(ex), np.nanstd(ey)]) / crb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    opts = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    print("| family | breathing | seed | CRB x, y (px) | ours x, y | before x, y | com x, y |")
    print("|---|---|---|---|---|---|---|")
    for family in FAMILIES:
        for breathing in (False, True):
            for seed in opts.seeds:
                s = imaging_series(family, opts.nints, breathing=breathing, seed=seed)
                crb = s.cramer_rao()
                var = np.median(s.variance, axis=0)
                cells = [
                    _ratio(s, measure_centroids(s.data, variance=var, **kw), crb)
                    for kw in ({}, {"fit_width": False}, {"method": "com"})
                ]
                text = " | ".join(f"{c[0]:.2f}, {c[1]:.2f}" for c in cells)
                print(
                    f"| {family} | {'on' if breathing else 'off'} | {seed} | "
                    f"{crb[0]:.5f}, {crb[1]:.5f} | {text} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
