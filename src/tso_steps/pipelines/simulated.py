"""Run a simulated exposure through the tso pipelines offline, from ramp to light curve.

Real data go through ``tso_detector1``, ``tso_spec2`` / ``tso_image2`` and ``tso_tso3`` with
the usual CRDS set-up.  A simulation has no CRDS reference files and no WCS, so
:func:`run_simulated_chain` runs the same pipelines with:

- the jwst steps that need calibration references skipped (:data:`OFFLINE_SKIPS`: the
  simulator injects no bias, dark, non-linearity, flat field or photometric calibration, so
  these steps have nothing to correct), except ``ramp_fit``, which is given synthetic GAIN and
  READNOISE references that match the simulation;
- ``white_light`` of calwebb_tso3 told that there is no WAVELENGTHRANGE reference;
- ``assign_wcs`` of calwebb_spec2 replaced by :class:`SimulationWcsStep`, which only records
  the step as done: calwebb_spec2 stops when assign_wcs does not complete, and the WCS
  references of each mode cannot be made up.  With no WCS, ``extract_2d`` is skipped too and
  the spectra keep their pixel index as wavelength (``tso_extract`` warns).

Everything else, including the jwst code that runs between and around our steps, is the
pinned jwst.  The tests and ``tso-steps demo`` use this chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table
from jwst.stpipe import Step

from tso_steps.pipelines.detector1 import TSODetector1Pipeline
from tso_steps.pipelines.image2 import TSOImage2Pipeline
from tso_steps.pipelines.spec2 import TSOSpec2Pipeline
from tso_steps.pipelines.tso3 import TSOTso3Pipeline, write_association
from tso_steps.simulate.references import write_noise_references

__all__ = [
    "OFFLINE_SKIPS",
    "SimulatedChain",
    "SimulationSpec2Pipeline",
    "SimulationWcsStep",
    "offline_steps",
    "run_simulated_chain",
    "write_offline_configs",
]

log = logging.getLogger("stpipe.tso_steps.pipelines")

#: jwst steps skipped offline, per pipeline: they need CRDS references and the simulator
#: injects nothing they would correct.
OFFLINE_SKIPS = {
    "tso_detector1": (
        "dq_init",
        "emicorr",
        "saturation",
        "ipc",
        "superbias",
        "refpix",
        "reset",
        "linearity",
        "rscd",
        "dark_current",
        "persistence",
        "charge_migration",
        "gain_scale",
    ),
    "tso_spec2": (
        "bkg_subtract",
        "imprint_subtract",
        "msa_flagging",
        "extract_2d",
        "wavecorr",
        "flat_field",
        "straylight",
        "fringe",
        "pathloss",
        "barshadow",
        "wfss_contam",
        "photom",
        "residual_fringe",
        "targ_centroid",
        "master_background_mos",
        "extract_1d",
    ),
    "tso_image2": ("bkg_subtract", "assign_wcs", "flat_field", "photom", "resample"),
    "tso_tso3": ("photom",),
}


def offline_steps(alias, references=None, extra=None):
    """The ``steps`` parameter that runs pipeline ``alias`` on a simulation offline.

    Parameters
    ----------
    alias : str
        ``tso_detector1``, ``tso_spec2``, ``tso_image2`` or ``tso_tso3``.
    references : dict, optional
        ``{"override_gain": path, "override_readnoise": path}`` for ``ramp_fit``
        (:func:`~tso_steps.simulate.references.write_noise_references`).
    extra : dict, optional
        More ``{step name: {parameter: value}}``, applied last.

    Returns
    -------
    dict
        The jwst steps of :data:`OFFLINE_SKIPS` skipped, ``ramp_fit`` given the references,
        ``white_light`` told there is no WAVELENGTHRANGE reference.
    """
    steps = {step: {"skip": True} for step in OFFLINE_SKIPS[alias]}
    if alias == "tso_detector1" and references:
        steps["ramp_fit"] = dict(references)
    if alias == "tso_tso3":
        # white_light asks CRDS for a WAVELENGTHRANGE reference (NIRISS/SOSS): none offline
        steps["white_light"] = {"override_wavelengthrange": "N/A"}
    for step, pars in (extra or {}).items():
        steps.setdefault(step, {}).update(pars)
    return steps


class SimulationWcsStep(Step):
    """Stand-in for ``assign_wcs`` on simulated data: records the step as done, adds no WCS.

    calwebb_spec2 aborts when assign_wcs does not complete; a simulation has no WCS reference
    files.  Never use it on real data.
    """

    class_alias = "assign_wcs"

    spec = """
    """

    def process(self, input_data):
        """The input with ``meta.cal_step.assign_wcs`` set to COMPLETE.

        A model is copied unless the step runs in a pipeline (jwst's ``prepare_output``).
        """
        result = self.prepare_output(input_data)
        result.meta.cal_step.assign_wcs = "COMPLETE"
        return result


class SimulationSpec2Pipeline(TSOSpec2Pipeline):
    """``tso_spec2`` with :class:`SimulationWcsStep` in place of assign_wcs (simulations only)."""

    step_defs = {**TSOSpec2Pipeline.step_defs, "assign_wcs": SimulationWcsStep}


_SimulationSpec2 = SimulationSpec2Pipeline


def _class_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def write_offline_configs(directory, references=None, imaging=False):
    """Write ASDF pipeline files that run a simulated exposure with ``strun``, offline.

    Each file skips the jwst steps of :data:`OFFLINE_SKIPS`; ``tso_detector1_offline.asdf``
    also points ``ramp_fit`` at the synthetic GAIN and READNOISE references
    (:func:`~tso_steps.simulate.references.write_noise_references`, written by
    :func:`run_simulated_chain` and the demo into ``directory/references/``), and
    ``tso_spec2_offline.asdf`` runs :class:`SimulationSpec2Pipeline`.  With
    ``CRDS_PATH`` set to a cache of :func:`~tso_steps.offline.make_offline_crds_cache`::

        strun directory/tso_detector1_offline.asdf sim_uncal.fits
        strun directory/tso_spec2_offline.asdf sim_rateints.fits
        strun directory/tso_tso3_offline.asdf sim_tso3_asn.json

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        Where the files go (created if needed).
    references : dict, optional
        ``{"override_gain": path, "override_readnoise": path}``; default
        ``directory/references/gain.fits`` and ``readnoise.fits``.
    imaging : bool
        Write ``tso_image2_offline.asdf`` instead of ``tso_spec2_offline.asdf``.

    Returns
    -------
    dict of str to `~pathlib.Path`
        Pipeline alias to the file written.
    """
    import asdf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if references is None:
        references = {
            f"override_{name}": str((directory / "references" / f"{name}.fits").resolve())
            for name in ("gain", "readnoise")
        }
    stage2 = (
        ("tso_image2", TSOImage2Pipeline) if imaging else ("tso_spec2", SimulationSpec2Pipeline)
    )
    written = {}
    for alias, cls in (
        ("tso_detector1", TSODetector1Pipeline),
        stage2,
        ("tso_tso3", TSOTso3Pipeline),
    ):
        extra = {
            "tso_detector1": {"ramp_fit": dict(references)},
            "tso_tso3": {"white_light": {"override_wavelengthrange": "N/A"}},
        }.get(alias, {})
        names = list(OFFLINE_SKIPS[alias]) + [n for n in extra if n not in OFFLINE_SKIPS[alias]]
        steps = []
        for name in names:
            parameters = {"skip": True} if name in OFFLINE_SKIPS[alias] else {}
            parameters.update(extra.get(name, {}))
            steps.append(
                {"class": _class_path(cls.step_defs[name]), "name": name, "parameters": parameters}
            )
        if alias == "tso_spec2":
            steps.append(
                {"class": _class_path(SimulationWcsStep), "name": "assign_wcs", "parameters": {}}
            )
        tree = {"class": _class_path(cls), "name": cls.__name__, "parameters": {}, "steps": steps}
        path = directory / f"{alias}_offline.asdf"
        asdf.AsdfFile(tree).write_to(path)
        written[alias] = path
    return written


@dataclass
class SimulatedChain:
    """Products of :func:`run_simulated_chain`.

    Attributes
    ----------
    sim : `~tso_steps.simulate.SimulationResult`
        The simulation (truth in ``sim.truth``).
    directory : `~pathlib.Path`
    uncal, rateints, calints : `~pathlib.Path`
        The stage products.
    x1dints : `~pathlib.Path` or None
        Spectra (spectroscopic modes).
    light_curve : `~pathlib.Path`
        The ``_whtlt.ecsv`` (spectroscopy) or ``_phot.ecsv`` (imaging) table.
    vectors : `~pathlib.Path` or None
        The ``_tsovectors.ecsv`` table.
    skipped : dict
        Pipeline alias to the jwst steps skipped offline.
    intermediate : dict
        With ``save_intermediate``: ``"oneoverf"``, ``"ramp"``, ``"crfints"`` to their paths
        (those that were written).
    """

    sim: object
    directory: Path
    uncal: Path
    rateints: Path
    calints: Path
    x1dints: Path | None
    light_curve: Path
    vectors: Path | None
    skipped: dict = field(default_factory=dict)
    intermediate: dict = field(default_factory=dict)

    def light_curve_flux(self):
        """Flux per integration from the light-curve table.

        ``net_aperture_sum`` of the ``_phot.ecsv`` (imaging), or the white light of the
        ``_whtlt.ecsv`` (calwebb_tso3 names it ``whitelight_flux``, with a ``_NRS1``-like
        detector suffix for NIRSpec).

        Returns
        -------
        ndarray
        """
        table = Table.read(self.light_curve, format="ascii.ecsv")
        names = ["net_aperture_sum"] + [
            n for n in table.colnames if n.startswith("whitelight_flux")
        ]
        column = next(n for n in names if n in table.colnames)
        return np.asarray(table[column], dtype=float)


def run_simulated_chain(
    sim, directory, name="sim", step_parameters=None, config_files=None, save_intermediate=False
):
    """Run a simulated exposure through tso_detector1, tso_spec2/tso_image2 and tso_tso3.

    Parameters
    ----------
    sim : `~tso_steps.simulate.SimulationResult`
        A simulation with a ``ramp`` product.
    directory : str or `~pathlib.Path`
        Where every product is written (created if needed).
    name : str
        Root of the file names.
    step_parameters : dict, optional
        Pipeline alias to ``{step name: {parameter: value}}`` overrides, e.g.
        ``{"tso_tso3": {"tso_extract": {"method": "box"}}}``.
    config_files : dict, optional
        Pipeline alias to an ASDF pipeline parameter file applied first (e.g. one of
        ``config/pipelines/<mode>/``); ``step_parameters`` and the offline skips override it.
    save_intermediate : bool
        Also save the ramp after ``tso_one_over_f`` (``_oneoverf.fits``), the ramp before
        ramp fitting (``_ramp.fits``) and the calints after ``tso_outlier``
        (``_crfints.fits``), for diagnostics.

    Returns
    -------
    SimulatedChain
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step_parameters = {alias: dict(steps) for alias, steps in (step_parameters or {}).items()}
    config_files = config_files or {}
    if save_intermediate:
        for alias, step in (("tso_detector1", "tso_one_over_f"), ("tso_tso3", "tso_outlier")):
            step_parameters.setdefault(alias, {}).setdefault(step, {})["save_results"] = True
    imaging = sim.truth.dispersion_axis is None
    uncal = directory / f"{name}_uncal.fits"
    sim.ramp.meta.filename = uncal.name
    sim.ramp.save(uncal)
    references = write_noise_references(sim.ramp, sim.truth, directory / "references")

    def build(cls, alias, **kwargs):
        steps = offline_steps(alias, references, step_parameters.get(alias))
        pars = {"steps": steps, "output_dir": str(directory), **kwargs}
        if alias in config_files:
            # file first, then our keywords: what Step.call(config_file=...) does
            config, config_file = cls.build_config(
                None, config_file=str(config_files[alias]), **pars
            )
            return cls.from_config_section(config, config_file=config_file)
        return cls(**pars)

    detector1 = build(TSODetector1Pipeline, "tso_detector1", save_calibrated_ramp=save_intermediate)
    detector1.save_results = True
    detector1.run(str(uncal))
    rateints = directory / f"{name}_rateints.fits"

    if imaging:
        stage2 = build(TSOImage2Pipeline, "tso_image2")
    else:
        stage2 = build(_SimulationSpec2, "tso_spec2")
    stage2.save_results = True
    stage2.run(str(rateints))
    calints = directory / f"{name}_calints.fits"

    asn_path = write_association([calints.name], name, directory / f"{name}_tso3_asn.json")
    tso3 = build(TSOTso3Pipeline, "tso_tso3")
    tso3.save_results = True
    tso3.run(str(asn_path))

    x1dints = directory / f"{name}_x1dints.fits"
    suffix = "phot" if imaging else "whtlt"
    vectors = directory / f"{name}_tsovectors.ecsv"
    skipped = {alias: list(steps) for alias, steps in OFFLINE_SKIPS.items()}
    skipped["tso_spec2"].append("assign_wcs (replaced by SimulationWcsStep)")
    return SimulatedChain(
        sim=sim,
        directory=directory,
        uncal=uncal,
        rateints=rateints,
        calints=calints,
        x1dints=None if imaging else x1dints,
        light_curve=directory / f"{name}_{suffix}.ecsv",
        vectors=vectors if vectors.exists() else None,
        skipped=skipped,
        intermediate={
            suffix: path
            for suffix in ("oneoverf", "ramp", "crfints")
            if (path := _only(directory.glob(f"{name}*_{suffix}.fits"))) is not None
        },
    )


def _only(paths):
    """The single path of an iterable, or None when there is none."""
    paths = sorted(paths)
    return paths[0] if len(paths) == 1 else None
