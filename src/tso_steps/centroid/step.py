"""CentroidStep: per-integration centroid and PSF width of an imaging time series."""

import logging

import numpy as np
from jwst.stpipe import Step

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.centroid.centroiding import CentroidOptions, measure_centroids
from tso_steps.inputs import (
    IMAGING_EXP_TYPES,
    Accepts,
    InputError,
    bad_samples,
    flag_lost_integrations,
    lost_integrations,
    median_variance,
    options_from_step,
    prepare_output,
)
from tso_steps.parallel import OneBlasThreadMixin
from tso_steps.vectors import add_vectors

__all__ = ["IMAGING_EXP_TYPES", "CentroidStep"]

log = logging.getLogger("stpipe.tso_steps.centroid")

#: What tso_centroid takes: imaging rateints/calints; copied unless inside a pipeline.
ACCEPTS = Accepts(
    "tso_centroid", ("cube",), exposure="imaging", min_shape=(3, 3), copy="standalone"
)


class CentroidStep(OneBlasThreadMixin, AtomicSaveMixin, Step):
    """Measure the source centroid and PSF width in every integration of an imaging TSO.

    Input: a rateints or calints ``CubeModel`` of an imaging exposure (NRC_TSIMAGE,
    including defocused weak-lens PSFs).  Output: a copy with ``tso_vectors`` columns
    ``centroid_x``, ``centroid_y`` (0-based pixels of the array), ``psf_width_x``,
    ``psf_width_y`` (FWHM-equivalent from second moments, pixels) and, for the default
    template method, ``centroid_x_err``, ``centroid_y_err`` (formal 1-sigma, pixels).
    Samples flagged DO_NOT_USE and NaN samples are not used.  Pixel data and DQ are not
    changed.  A model passed in Python is copied first (the input is not modified) unless
    the step runs inside a pipeline; a file name is opened and its model updated.
    """

    class_alias = "tso_centroid"

    spec = """
    method = option('template', 'gaussian', 'com', default='template')  # template: least-squares shift against the median frame (any PSF shape); gaussian: photutils centroid_2dg; com: centre of mass
    window_radius = float(min=1.0, default=None)  # radius of the circular fit window, pixels; None: from the median frame's profile
    center = float_list(min=2, max=2, default=None)  # 0-based (x, y) starting position; None: the brightest source of the median frame
    clip_sigma = float(min=0.0, default=5.0)  # template: reject pixels with residuals beyond this many robust sigma (unflagged cosmic rays); 0 disables
    max_iterations = integer(min=1, default=10)  # template: Gauss-Newton iterations per integration
    suffix = string(default='centroid')  # suffix of the output file
    """  # noqa: E501

    def process(self, input_data):
        """Measure the centroids.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel`
            Imaging rateints or calints.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.CubeModel`
            The input (a copy of a model passed in Python) with the ``tso_vectors`` columns
            added.

        Raises
        ------
        TypeError
            If the input is not a 3-D ``CubeModel``.
        ValueError
            For a non-imaging exposure type, fewer than 2 integrations or all-NaN data.
        """
        # a file is opened and updated without a copy (like jwst's steps); a model passed
        # in Python is copied unless the step runs inside a pipeline
        result = prepare_output(self, input_data, ACCEPTS)
        nints = result.data.shape[0]
        self._check_center(result.data.shape)
        mask = bad_samples(result, nonfinite=False)
        lost = lost_integrations(mask | ~np.isfinite(result.data))
        table = measure_centroids(
            result.data,
            variance=median_variance(result),
            mask=mask,
            options=options_from_step(CentroidOptions, self),
        )
        columns = {name: np.asarray(table[name]) for name in table.colnames}
        for values in columns.values():
            if values.dtype.kind == "f":
                values[lost] = np.nan
        add_vectors(result, columns)
        flag_lost_integrations(result, lost, "tso_centroid", "centroid_x/y and psf_width_x/y")
        cx, cy = np.asarray(table["centroid_x"]), np.asarray(table["centroid_y"])
        log.info(
            "%s centroids of %d integrations: median (x, y) = (%.3f, %.3f) px, "
            "scatter (%.4f, %.4f) px; window radius %.1f px%s",
            self.method,
            nints,
            np.nanmedian(cx),
            np.nanmedian(cy),
            np.nanstd(cx),
            np.nanstd(cy),
            table.meta["window_radius"],
            f", {table.meta['n_clipped']} pixels clipped" if self.method == "template" else "",
        )
        result.meta.cal_step.tso_centroid = "COMPLETE"
        return result

    def _check_center(self, shape):
        """A ``center`` outside the array is a user error (the window would be unbounded)."""
        if self.center is None:
            return
        x, y = (float(v) for v in self.center)
        ny, nx = shape[-2:]
        if not (
            np.isfinite(x) and np.isfinite(y) and -0.5 <= x <= nx - 0.5 and -0.5 <= y <= ny - 0.5
        ):
            raise InputError(
                f"tso_centroid: center=({x:g}, {y:g}) is outside the {nx} x {ny} array (0-based "
                f"x in [0, {nx - 1}], y in [0, {ny - 1}]): give the source position on this "
                "array, or None to find the brightest source."
            )
