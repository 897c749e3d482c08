"""``tso_tso3``: calwebb_tso3 with time-series outliers, optimal extraction and moving apertures."""

import json
from pathlib import Path

from jwst.associations.asn_from_list import asn_from_list
from jwst.associations.lib.rules_level3_base import DMS_Level3_Base
from jwst.pipeline import Tso3Pipeline

from tso_steps.aperture.step import MovingApertureStep
from tso_steps.extract.step import OptimalExtractStep
from tso_steps.inputs import Accepts
from tso_steps.outlier.step import TSOOutlierStep
from tso_steps.pipelines.entrance import WhiteLightGaps, _Hook
from tso_steps.pipelines.splice import Placement, TSOPipelineMixin
from tso_steps.vectors import write_vectors

__all__ = ["TSOTso3Pipeline", "write_association"]


class TSOTso3Pipeline(TSOPipelineMixin, Tso3Pipeline):
    """jwst's calwebb_tso3 with ``tso_outlier``, ``tso_extract`` and ``tso_aperture``.

    Each replaces the jwst step it stands for, which is skipped by default:
    ``outlier_detection`` (running both ORs their flags), ``extract_1d`` and
    ``tso_photometry`` (running both of either pair is an error: skip one).  The ``_x1dints``,
    ``_whtlt`` and ``_phot`` products are jwst's, with our ``meta.cal_step`` entries and
    ``tso_vectors`` restored on the x1dints, and the vectors of every integration are also
    written as ``<product>_tsovectors.ecsv``.  An integration with no finite FLUX has a NaN
    white-light flux (jwst's ``white_light`` would give 0).
    """

    class_alias = "tso_tso3"

    step_defs = {
        **Tso3Pipeline.step_defs,
        "tso_outlier": TSOOutlierStep,
        "tso_extract": OptimalExtractStep,
        "tso_aperture": MovingApertureStep,
    }
    placements = (
        Placement("tso_outlier", host="outlier_detection", replaces=True),
        Placement("tso_extract", host="extract_1d", exclusive=True),
        Placement("tso_aperture", host="tso_photometry", exclusive=True),
    )

    accepts = Accepts(
        "tso_tso3", ("cube", "slit"), min_shape=(1, 1), reads_pixels=False, pipeline=True
    )

    def internal_hooks(self):
        """White-light points of integrations without flux become NaN; crfints are saved."""
        gaps = WhiteLightGaps(self.class_alias)
        return [
            ("white_light", "pre", gaps.pre()),
            ("white_light", "post", gaps.post()),
            ("outlier_detection", "post", _Hook(self._save_crfints)),
        ]

    def _save_crfints(self, cube):
        """Save the ``_crfints`` product after tso_outlier, as jwst does after its own step.

        calwebb_tso3 saves it only when ``outlier_detection`` is COMPLETE, which it is not
        when tso_outlier replaces it.
        """
        steps = cube.meta.cal_step
        if getattr(steps, "tso_outlier", None) != "COMPLETE":
            return
        if steps.outlier_detection == "COMPLETE":  # jwst saves it itself
            return
        name = cube.meta.filename
        if self.asn_id is not None and "_" + self.asn_id in name:
            name = name.replace("_" + self.asn_id, "")
        self.save_model(cube, output_file=name, suffix="crfints", asn_id=self.asn_id)
        cube.meta.filename = name

    def process(self, input_data):
        """Run calwebb_tso3, then export the exposure's ``tso_vectors`` as ECSV.

        Parameters
        ----------
        input_data : str or association
            Level-3 TSO association (or one calints file), as for calwebb_tso3.
        """
        result = super().process(input_data)
        vectors = self.provenance.vectors()
        if len(vectors):
            path = self.make_output_path(suffix="tsovectors", ext="ecsv")
            write_vectors(vectors, path, int_times=self.provenance.int_times())
        return result


def write_association(members, product_name, path):
    """Write the level-3 TSO association calwebb_tso3 takes, for calints files.

    jwst 3.0's calwebb_tso3 runs on an association only (a FITS file name fails inside
    jwst).  Its products are named after ``product_name`` (``<name>_x1dints.fits``,
    ``<name>_whtlt.ecsv``), the crfints after each member.

    Parameters
    ----------
    members : sequence of str
        calints file names, relative to the association's folder (or absolute).
    product_name : str
        Root of the level-3 product names.
    path : str or `~pathlib.Path`
        The association file to write (``..._asn.json``).

    Returns
    -------
    `~pathlib.Path`
    """
    asn = asn_from_list(list(members), rule=DMS_Level3_Base, product_name=product_name)
    asn.data["asn_type"] = "tso3"
    _, serialized = asn.dump(format="json")
    json.loads(serialized)  # fail here, not inside jwst, if the association is malformed
    path = Path(path)
    path.write_text(serialized)
    return path
