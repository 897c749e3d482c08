"""tso_extract on cross-dispersion profiles it does not model: families x flux x breathing x seeds.

Scenes: the analytic, pixel-integrated profiles of ``tests/test_extract_matrix.py`` (Moffat
wings, asymmetric core with a side lobe, undersampled core, SOSS-like double-horned), a
curved trace, 0.02 px jitter plus a 0.3 px tilt half-way, 30 e/px background, 10 e read noise;
faint: 30 e per column on average, bright: 3000; breathing: 2 % width drift plus a 1 % step.
Per cell: white-light scatter over its mean, divided by that of Horne extraction handed the
true noiseless source as its profile (the bound), for

* ``ours``: ``extract_order`` optimal with its defaults (super-resolved profile fitted over a
  window chosen by held-out residuals, per-integration width),
* ``fixed width``: the same with ``fit_width=False`` (one profile width for every integration),
* ``best box``: the best of fixed-width boxes that follow the trace, half-widths 2..8 px
  (chosen with the truth: an oracle baseline), and that half-width.

Usage::

    python benchmarks/bench_extract_matrix.py [--nints 60] [--seeds 1 2]
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

# the scenes live with the tests (truth built there, independent of the production code)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_extract_matrix as scenes  # noqa: E402
from tso_steps.extract.core import ExtractOptions, extract_order  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nints", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    opts = parser.parse_args(argv)
    scenes.NINTS = opts.nints
    logging.disable(logging.WARNING)
    print("| profile | flux | breathing | seed | ours | fixed width | best box (h px) |")
    print("|---|---|---|---|---|---|---|")
    for family in ("moffat", "asymmetric", "undersampled", "soss"):
        for flux, label in ((30.0, "faint"), (3000.0, "bright")):
            for breathing in (False, True):
                for seed in opts.seeds:
                    data, vp, vr, src, centre, shifts = scenes._scene(family, flux, breathing, seed)
                    args = (data, vp, vr, np.zeros(data.shape, bool), centre, shifts)

                    def noise(h, args=args, true_profile=None, **kw):
                        res = extract_order(
                            *args, ExtractOptions(halfwidth=h, **kw), true_profile=true_profile
                        )
                        res = res.extraction.flux
                        return scenes._relative_scatter(res)

                    ref = noise(8.0, true_profile=src)
                    ours, before = noise(8.0) / ref, noise(8.0, fit_width=False) / ref
                    # the true profile only fills bad pixels in a box (there are none)
                    boxes = {
                        h: noise(h, method="box", true_profile=src) / ref
                        for h in (2.0, 3.0, 4.0, 6.0, 8.0)
                    }
                    hb = min(boxes, key=boxes.get)
                    print(
                        f"| {family} | {label} | {'on' if breathing else 'off'} | {seed} | "
                        f"{ours:.3f} | {before:.3f} | {boxes[hb]:.3f} ({hb:g}) |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
