"""Offline use without a CRDS server: ``strun`` of the pipelines and ``Step.call``.

Both run in subprocesses with a clean environment (no ``STPIPE_DISABLE_CRDS_STEPPARS``, no
``CRDS_SERVER_URL``), as a new user's shell would have.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
from stdatamodels.jwst import datamodels

from tso_steps.offline import default_disable_crds_steppars, make_offline_crds_cache
from tso_steps.pipelines.simulated import write_offline_configs
from tso_steps.simulate import simulate_tso
from tso_steps.simulate.references import write_noise_references


def _clean_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STPIPE_DISABLE_CRDS_STEPPARS", "CRDS_SERVER_URL")
    }
    env.update(extra)
    return env


def test_strun_tso_detector1_offline(tmp_path):
    sim = simulate_tso(
        "NRC_TSGRISM", nints=6, ngroups=3, subarray="SUBGRISM64", seed=5, products=("ramp",)
    )
    uncal = tmp_path / "tiny_uncal.fits"
    sim.ramp.meta.filename = uncal.name
    sim.ramp.save(uncal)
    write_noise_references(sim.ramp, sim.truth, tmp_path / "references")
    configs = write_offline_configs(tmp_path)
    cache = make_offline_crds_cache(tmp_path / "crds")
    run = subprocess.run(
        ["strun", str(configs["tso_detector1"]), str(uncal)],
        cwd=tmp_path,
        env=_clean_env(CRDS_PATH=str(cache)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with datamodels.open(tmp_path / "tiny_rateints.fits") as rateints:
        assert rateints.data.shape == (6, 64, 2048)
        assert rateints.meta.cal_step.tso_jump == "COMPLETE"
        assert rateints.meta.cal_step.ramp_fit == "COMPLETE"
        assert rateints.meta.cal_step.superbias == "SKIPPED"
        # the ramp fit ran on the ramps: the rate is the injected one, DN/s
        truth = np.median([sim.truth.rate_image(i) for i in range(6)], axis=0)
        bright = truth > 0.5 * truth.max()
        ratio = np.median(np.median(rateints.data, axis=0)[bright] / truth[bright])
        assert abs(ratio - 1) < 0.05


def test_step_call_without_crds_server_does_not_end_the_process(tmp_path):
    """Without the default set at import, CRDS' SystemExit(-1) would end this with 255."""
    script = textwrap.dedent(
        """
        import os
        from tso_steps import PixelTimingStep
        from tso_steps.simulate import simulate_tso
        assert os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] == "true"
        sim = simulate_tso("NRC_TSIMAGE", nints=3, ngroups=2, subarray="SUB64P",
                           products=("rateints",))
        print("shape", PixelTimingStep.call(sim.rateints).pixel_read_offsets.shape)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_clean_env(CRDS_PATH=str(tmp_path / "no_cache")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "shape (64, 64)" in run.stdout


def test_default_leaves_a_configured_crds_alone(tmp_path):
    env = {"CRDS_SERVER_URL": "https://example.invalid"}
    assert not default_disable_crds_steppars(env)
    assert "STPIPE_DISABLE_CRDS_STEPPARS" not in env
    env = {"STPIPE_DISABLE_CRDS_STEPPARS": "false"}
    assert not default_disable_crds_steppars(env)
    assert env["STPIPE_DISABLE_CRDS_STEPPARS"] == "false"
    cache = tmp_path / "cache"
    (cache / "mappings" / "jwst").mkdir(parents=True)
    (cache / "mappings" / "jwst" / "jwst_1234.pmap").write_text("header = {}\n")
    env = {"CRDS_PATH": str(cache)}
    assert not default_disable_crds_steppars(env)
    env = {"CRDS_PATH": str(tmp_path / "empty")}
    assert default_disable_crds_steppars(env)
    assert env["STPIPE_DISABLE_CRDS_STEPPARS"] == "true"
