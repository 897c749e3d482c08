"""Outlier rejection in time (``tso_outlier``): flux- and motion-aware running-median model."""

from tso_steps.outlier.cube import detect_cube_outliers
from tso_steps.outlier.detect import OutlierOptions, detect_series_outliers
from tso_steps.outlier.step import TSOOutlierStep

__all__ = [
    "OutlierOptions",
    "TSOOutlierStep",
    "detect_cube_outliers",
    "detect_series_outliers",
]
