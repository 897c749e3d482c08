"""The bad-input matrix shared by the fault tests: the steps, what each measures, the inputs.

``test_bad_input.py`` (files, objects, lost integrations, defects), ``test_step_faults.py``
(step-specific faults, atomic products) and ``test_pipeline_faults.py`` use these; the small
simulated products are made once per session (``conftest.fault_products``) and every test
works on a copy.
"""

import copy
import errno
import os
import warnings
from pathlib import Path

import numpy as np

import tso_steps as T
from tso_steps.inputs import InputError
from tso_steps.simulate import simulate_tso

NINTS = 12
LOST = 3  # the integration made unusable

#: alias -> (step class, input product, per-integration outputs compared, out-of-range params)
STEPS = {
    "tso_trace": (T.TraceStep, "spec_rate", {"degree": 12}),
    "tso_jitter": (T.JitterCorrectStep, "spec_rate", {"iterations": 0}),
    "tso_extract": (T.OptimalExtractStep, "spec_rate", {"halfwidth": 0.1}),
    "tso_background": (T.Background2DStep, "spec_rate", {"line_degree": 9}),
    "tso_outlier": (T.TSOOutlierStep, "spec_rate", {"rejection_threshold": 0.1}),
    "tso_one_over_f": (T.OneOverFStep, "spec_rate", {"clip_sigma": 0.5}),
    "tso_one_over_f[ramp]": (T.OneOverFStep, "spec_ramp", {"min_pixels": 0}),
    "tso_pixel_timing": (T.PixelTimingStep, "spec_rate", {"cutout_origin": [1]}),
    "tso_jump": (T.TSOJumpStep, "spec_ramp", {"rolling_window_width": 2}),
    "tso_centroid": (T.CentroidStep, "img_rate", {"method": "psf"}),
    "tso_aperture": (T.MovingApertureStep, "img_rate", {"radius": 0.1}),
}

#: Per-integration outputs that must be NaN for a lost integration and unchanged elsewhere.
MEASURED = {
    "tso_trace": ("trace_position", "trace_width", "trace_shift"),
    "tso_jitter": ("shift_cross_dispersion",),
    "tso_extract": ("FLUX",),
    "tso_background": ("background_level", "background_scale"),
    "tso_outlier": ("outlier_fraction",),
    "tso_one_over_f": ("one_over_f_rms", "one_over_f_scale"),
    "tso_one_over_f[ramp]": ("one_over_f_rms", "one_over_f_scale"),
    "tso_pixel_timing": (),
    "tso_jump": ("jump_flux_scale",),
    "tso_centroid": ("centroid_x", "centroid_y", "psf_width_x", "psf_width_y"),
    "tso_aperture": ("net_aperture_sum", "centroid_x"),
}

#: How closely a good integration must agree with the run on the same input without the
#: lost integration (relative to the clean run's scatter of that output).  0: identical up
#: to float rounding.  Steps whose reference uses neighbouring integrations (rolling
#: windows, a profile or PSF template from all integrations) agree to a small fraction.
AGREEMENT = {
    "tso_extract": 0.01,
    "tso_centroid": 1e-3,
    "tso_aperture": 1e-3,
}


def simulate_small(mode, products, **kwargs):
    """A 12-integration, 3-group simulation of ``mode`` (seed 1), warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_tso(mode, nints=NINTS, ngroups=3, seed=1, products=products, **kwargs)


def make_products():
    """Spectroscopic ramp and rateints (NIRCam grism, 32 x 128) and imaging rateints."""
    spec = simulate_small("NRC_TSGRISM", ("ramp", "rateints"), crop=(32, 128))
    image = simulate_small("NRC_TSIMAGE", ("rateints",))
    return {
        "spec_rate": spec.rateints,
        "spec_ramp": spec.ramp,
        "img_rate": image.rateints,
        "spec_truth": spec.truth,
    }


def step_input(products, alias):
    """A copy of the product ``alias`` takes."""
    return products[STEPS[alias][1]].copy()


def run_step(alias, data, **params):
    """Run the step ``alias`` on ``data`` with ``params``, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return STEPS[alias][0](**params).run(data)


#: Out-of-range or contradictory parameters: name -> (alias, params, error, message fragment).
PARAMETER_FAULTS = {
    "jitter reference=999": ("tso_jitter", {"reference": "999"}, InputError, "out of range"),
    "jitter reference=bogus": ("tso_jitter", {"reference": "bogus"}, InputError, "'median'"),
    "jitter region off the array": (
        "tso_jitter",
        {"region": [0, 500, 0, 10]},
        InputError,
        "inside the",
    ),
    "centroid center far outside": (
        "tso_centroid",
        {"center": [1e9, -1e9]},
        InputError,
        "outside the",
    ),
    "aperture radius 1000": ("tso_aperture", {"radius": 1000.0}, InputError, "whole"),
    "aperture annulus inverted": (
        "tso_aperture",
        {"radius_inner": 9.0, "radius_outer": 5.0},
        InputError,
        "radius_inner=9.0 must be below radius_outer=5.0",
    ),
    "extract aperture wider than the array": (
        "tso_extract",
        {"halfwidth": 1000.0},
        InputError,
        "wider than",
    ),
    "jump minimum_ints > rolling_window": (
        "tso_jump",
        {"minimum_ints": 9, "rolling_window_width": 5},
        InputError,
        "minimum_ints=9 must be at most rolling_window_width=5",
    ),
    "jump maximum_cores=lots": ("tso_jump", {"maximum_cores": "lots"}, ValueError, "maximum"),
    "background template missing": (
        "tso_background",
        {"method": "template", "template_file": "/no/such/template.fits"},
        FileNotFoundError,
        "does not exist",
    ),
    "one_over_f mask missing": (
        "tso_one_over_f",
        {"mask_file": "/no/such/mask.npy"},
        FileNotFoundError,
        "does not exist",
    ),
    "timing negative cutout_origin": (
        "tso_pixel_timing",
        {"cutout_origin": [-3, 0]},
        InputError,
        ">= 0",
    ),
}


def _arrays(model):
    """Copies of every array of ``model``."""
    return {
        name: np.array(value, copy=True)
        for name, value in model.instance.items()
        if isinstance(value, np.ndarray)
    }


def snapshot(model):
    """The arrays and metadata of ``model``, copied."""
    return _arrays(model), copy.deepcopy(model.meta.instance)


def assert_unchanged(model, before):
    """``model`` has exactly the arrays and metadata of :func:`snapshot` ``before``."""
    arrays, meta = before
    after = _arrays(model)
    assert after.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(after[name], array, err_msg=name)
    assert model.meta.instance == meta  # no node added, not even an empty wcsinfo


def half_then_full_disk(monkeypatch, owner, name):
    """``owner.name(self_or_table, target, ...)`` writes half a file, then fails: disk full."""

    def broken(*args, **kwargs):
        target = args[1] if len(args) > 1 else kwargs.get("output")
        if isinstance(target, (str, os.PathLike)):
            Path(target).write_bytes(b"# half a file\n" * 50)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(owner, name, broken)


def leftovers(folder):
    """Hidden (temporary) files left in ``folder``."""
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".")]
