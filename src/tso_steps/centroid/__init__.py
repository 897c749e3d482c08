"""Per-integration centroids and PSF widths of imaging time series (``tso_centroid``)."""

from tso_steps.centroid.centroiding import (
    FWHM_PER_SIGMA,
    METHODS,
    CentroidOptions,
    measure_centroids,
    registered_template,
    second_moment_widths,
)
from tso_steps.centroid.step import CentroidStep
from tso_steps.centroid.template import TemplateFit, fit_template_shifts
from tso_steps.centroid.window import (
    FitWindow,
    fill_nans,
    find_window,
    median_frame,
)
from tso_steps.inputs import median_variance  # a model reader: lives in the input layer

__all__ = [
    "FWHM_PER_SIGMA",
    "METHODS",
    "CentroidOptions",
    "CentroidStep",
    "FitWindow",
    "TemplateFit",
    "fill_nans",
    "find_window",
    "fit_template_shifts",
    "measure_centroids",
    "median_frame",
    "median_variance",
    "registered_template",
    "second_moment_widths",
]
