"""Does jwst's ``adaptive_trace_model`` run offline on TSO products? (issue 11, item 5)

jwst 3.0 calls ``AdaptiveTraceModelStep`` in calwebb_tso3 on every calints cube (skipped by
default).  This script runs it with ``skip=False`` on simulated TSO rateints of the
spectroscopic modes, as the 3-D ``CubeModel`` calwebb_tso3 hands it and as a 2-D
``SlitModel`` of one integration, and prints what it returns, so that a side-by-side with
tso_trace is made wherever the step produces a trace model offline.

Usage: ``python benchmarks/bench_adaptive_trace_model.py``
"""

import logging
import os
import warnings

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")

MODES = ("NRC_TSGRISM", "NIS_SOSS", "NRS_BRIGHTOBJ", "MIR_LRS-SLITLESS")


def _attempt(step, model):
    try:
        out = step.call(model, skip=False)
    except Exception as error:  # noqa: BLE001 - the outcome is what we report
        return f"error {type(error).__name__}: {str(error)[:120]}"
    status = out.meta.cal_step.instance.get("adaptive_trace_model")
    trace = "present" if out.hasattr("trace_model") else "absent"
    return f"{type(out).__name__}, trace_model {trace}, status {status}"


def main():
    from jwst.adaptive_trace_model import AdaptiveTraceModelStep
    from stdatamodels.jwst import datamodels

    from tso_steps.simulate import simulate_tso

    logging.getLogger("stpipe").setLevel(logging.ERROR)
    logging.getLogger("jwst").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    print("| mode | input | result |")
    print("|---|---|---|")
    for mode in MODES:
        cube = simulate_tso(mode, nints=3, ngroups=3, seed=1, products=("rateints",)).rateints
        slit = datamodels.SlitModel(data=cube.data[0], err=cube.err[0], dq=cube.dq[0])
        slit.update(cube)
        for name, model in (("CubeModel (calints)", cube), ("SlitModel (one integration)", slit)):
            print(f"| {mode} | {name} | {_attempt(AdaptiveTraceModelStep, model)} |")


if __name__ == "__main__":
    main()
