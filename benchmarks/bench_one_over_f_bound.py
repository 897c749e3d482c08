"""The information bound of the white light under the simulator's 1/f (issue 12).

For every mode and 1/f spectrum of ``bench_one_over_f.py`` (same simulator settings, seed 21,
4 groups): the smallest white-light noise ratio any linear estimator of the correlated noise
can reach, ``sqrt((V_white + V_post) / V_white)``, with the +-4 px box of
:func:`tso_steps.scoring.truth_aperture` and three source assumptions:

* (i) source known exactly;
* (ii) source known up to one free scale per frame (gray);
* (iii) up to a free scale per 16-px channel (columns along the dispersion) per frame.

The covariance is built in ``one_over_f_bound.py`` (see its docstring), independently of the
production code.  ``--mc`` also simulates frames (no cosmic rays, no jitter, no transit),
applies the posterior-mean estimator (which needs the exact covariance: fine for a bound) and
compares what it measures with the computed numbers.

Usage::

    python benchmarks/bench_one_over_f_bound.py                     # every mode and spectrum
    python benchmarks/bench_one_over_f_bound.py NRC_TSGRISM-4out --spectra sim
    python benchmarks/bench_one_over_f_bound.py NRC_TSGRISM-4out --mc 200 --spectra sim
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_one_over_f import CASES, SPECTRA, _option  # noqa: E402
from one_over_f_bound import (  # noqa: E402
    CovarianceOperator,
    NoiseSpec,
    ReadSchedule,
    bound,
    nuisance_columns,
    posterior_mean,
    slope_coefficient,
    solve_columns,
)

#: White light (seed 21) of the per-line oracle, ``auto`` and ``gp`` from docs/benchmarks.md:
#: oracle and a0.7+white ``auto`` from the 2026-12-02 table, the rest from the 2026-12-07
#: ``method='gp'`` table and its text (NaN: not measured).
MEASURED = {
    ("NRC_TSGRISM-4out", "sim"): (0.860, 2.445, 2.251),
    ("NRC_TSGRISM-4out", "a0.7+white"): (1.204, 2.226, np.nan),
    ("NRC_TSGRISM-4out", "a1.3+knee"): (0.839, 2.170, 1.830),
    ("NRC_TSGRISM-1out", "sim"): (1.162, 3.322, 2.342),
    ("NRC_TSGRISM-1out", "a0.7+white"): (0.954, 2.135, 1.607),
    ("NRC_TSGRISM-1out", "a1.3+knee"): (1.219, 4.248, 2.833),
    ("NRS_BRIGHTOBJ", "sim"): (1.040, 1.101, 1.111),
    ("NRS_BRIGHTOBJ", "a0.7+white"): (1.008, 1.138, np.nan),
    ("NRS_BRIGHTOBJ", "a1.3+knee"): (1.054, 1.119, 1.112),
    ("NIS_SOSS", "sim"): (1.072, 1.144, 1.237),
    ("NIS_SOSS", "a0.7+white"): (0.932, 0.994, np.nan),
    ("NIS_SOSS", "a1.3+knee"): (1.066, 1.064, 1.226),
    ("MIR_LRS-SLITLESS", "sim"): (1.109, 1.146, 0.970),
    ("MIR_LRS-SLITLESS", "a0.7+white"): (1.329, 1.368, 1.446),
    ("MIR_LRS-SLITLESS", "a1.3+knee"): (1.181, 1.098, 1.098),
    ("NRC_TSIMAGE", "sim"): (1.074, 1.504, 1.093),
    ("NRC_TSIMAGE", "a0.7+white"): (1.060, 1.452, 1.030),
    ("NRC_TSIMAGE", "a1.3+knee"): (1.064, 1.456, 1.082),
}
#: issue-12 white-light targets
TARGET = {
    "NRC_TSGRISM-4out": 1.25,
    "NRC_TSGRISM-1out": 1.25,
    "NRS_BRIGHTOBJ": 1.05,
    "NIS_SOSS": 1.05,
    "MIR_LRS-SLITLESS": 1.10,
    "NRC_TSIMAGE": 1.20,
}
ASSUMPTIONS = ("i", "ii", "iii")


def setup(name, spectrum, nints=2, seed=21, **extra):
    """Simulate ``name`` like bench_one_over_f and build its covariance operator."""
    from tso_steps.scoring import truth_aperture
    from tso_steps.simulate import simulate_tso

    exp_type, kwargs, _, ngroups = CASES[name]
    sim = simulate_tso(exp_type, nints=nints, ngroups=ngroups, seed=seed,
                       products=("rateints",), one_over_f_spectrum=SPECTRA[spectrum],
                       **kwargs, **extra)  # fmt: skip
    truth, model = sim.truth, sim.rateints
    cfg = truth.effects["one_over_f"]
    exp = model.meta.exposure
    coeff = slope_coefficient(ngroups, exp.frame_time, exp.nframes, exp.groupgap)
    spec = NoiseSpec(cfg.common, cfg.per_output, cfg.odd_even, cfg.alpha, cfg.knee, cfg.white,
                     coeff)  # fmt: skip
    white_var = coeff * truth.read_noise**2 + model.var_poisson[0]
    op = CovarianceOperator(ReadSchedule.from_model(model), spec, white_var)
    axis, box = truth_aperture(truth, model.data.shape[1:])
    return sim, op, box, axis


def nuisance(truth, assumption, axis):
    """``S`` of an assumption: None, the source image, or its 16-px channels."""
    if assumption == "i":
        return None
    source = truth.source_image(0)
    if assumption == "ii" or axis is None:
        return nuisance_columns(source)
    return nuisance_columns(source, 16, axis)


def run_bound(name, spectrum):
    sim, op, box, axis = setup(name, spectrum)
    row = {}
    for a in ASSUMPTIONS:
        start = time.process_time()
        row[a] = bound(op, box, nuisance(sim.truth, a, axis))
        row[a]["cpu"] = time.process_time() - start
    return row


def run_mc(name, spectrum, nints, seed=5):
    """Posterior-mean correction of simulated frames against the computed numbers."""
    from tso_steps.scoring import correlated_noise_ratio

    sim, op, box, axis = setup(name, spectrum, nints=nints, seed=seed, cosmic_rays=False,
                               jitter=False, transit=False)  # fmt: skip
    truth, data = sim.truth, sim.rateints.data.astype(float)
    noiseless = np.stack([truth.rate_image(i) for i in range(nints)])
    floor = data - truth.one_over_f
    b = box.astype(float)
    white = np.einsum("tij,ij->t", floor - noiseless, b)
    prior = np.einsum("tij,ij->t", truth.one_over_f, b)
    out = {"nints": nints, "v_white_mc": float(np.var(white, ddof=1)),
           "v_prior_mc": float(np.var(prior, ddof=1))}  # fmt: skip
    residual = data - noiseless  # y - (source + background)
    solved = solve_columns(op, residual.reshape(nints, -1).T, 25)  # serves every assumption
    for a in ASSUMPTIONS:
        s = nuisance(truth, a, axis)
        z = None
        if s is None:
            c_hat = posterior_mean(op, residual, solved=solved)
        else:  # y - background = residual + S 1
            z = solve_columns(op, s)
            with_source = residual + truth.source_image(0)[None]
            c_hat = posterior_mean(op, with_source, s, z, solved + z.sum(axis=1)[:, None])
        err = np.einsum("tij,ij->t", c_hat - truth.one_over_f, b)
        v_post = float(np.var(err, ddof=1))
        out[a] = {
            "v_post_mc": v_post,
            "ratio_mc": float(np.sqrt(1 + v_post / out["v_white_mc"])),
            "score_mc": correlated_noise_ratio(data - c_hat, floor, noiseless, truth, None),
            "bound": bound(op, box, s, z),
        }
        print(a, out[a], flush=True)
    return out


def _fmt(x):
    return f"{x:.3f}"


def table(results):
    lines = [
        "| mode | 1/f | uncorrected (model) | bound (i) known source | bound (ii) gray | "
        "bound (iii) 16-px channels | score of E[c given y], (i) / (ii) / (iii) | "
        "per-line oracle | auto | gp | target | bound <= target, (i) / (ii) / (iii) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, spectrum), row in results.items():
        measured = MEASURED.get((name, spectrum), (np.nan,) * 3)
        target = TARGET[name]
        ok = " / ".join("yes" if row[a]["ratio"] <= target else "no" for a in ASSUMPTIONS)
        pm = " / ".join(_fmt(row[a]["ratio_pm"]) for a in ASSUMPTIONS)
        lines.append(
            f"| {name} | {spectrum} | {_fmt(row['i']['ratio_uncorrected'])} | "
            + " | ".join(_fmt(row[a]["ratio"]) for a in ASSUMPTIONS)
            + f" | {pm} | "
            + " | ".join(_fmt(m) for m in measured)
            + f" | {target:.2f} | {ok} |"
        )
    return "\n".join(lines)


def main(argv):
    spectra, argv = _option(argv, "--spectra", SPECTRA)
    spectra = spectra or ["sim", "a0.7+white", "a1.3+knee"]
    nmc = None
    if "--mc" in argv:
        at = argv.index("--mc")
        nmc = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    names = [a for a in argv if a in CASES] or list(TARGET)
    if nmc:
        for name in names:
            for spectrum in spectra:
                mc = run_mc(name, spectrum, nmc)
                print(f"## Monte Carlo {name} {spectrum}, {mc['nints']} integrations")
                print(
                    f"V_white: computed {mc['i']['bound']['v_white']:.4g}, "
                    f"simulated {mc['v_white_mc']:.4g}; V_prior: computed "
                    f"{mc['i']['bound']['v_prior']:.4g}, simulated {mc['v_prior_mc']:.4g}"
                )
                for a in ASSUMPTIONS:
                    r = mc[a]
                    rel = np.sqrt(2.0 / (mc["nints"] - 1))
                    print(
                        f"({a}) V_post computed {r['bound']['v_post']:.4g}, measured "
                        f"{r['v_post_mc']:.4g} (+-{100 * rel:.0f} %); ratio computed "
                        f"{r['bound']['ratio']:.3f}, measured {r['ratio_mc']:.3f}; benchmark "
                        f"score of the posterior mean computed {r['bound']['ratio_pm']:.3f}, "
                        f"measured {r['score_mc']:.3f}",
                        flush=True,
                    )
        return
    results = {}
    for name in names:
        for spectrum in spectra:
            row = run_bound(name, spectrum)
            results[(name, spectrum)] = row
            cpu = sum(row[a]["cpu"] for a in ASSUMPTIONS)
            print(f"{name} {spectrum}: " + ", ".join(
                f"({a}) {row[a]['ratio']:.3f} [pm {row[a]['ratio_pm']:.3f}]" for a in ASSUMPTIONS)
                + f"; {cpu:.0f} s CPU", flush=True)  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main(sys.argv[1:])
