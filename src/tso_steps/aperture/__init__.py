"""Moving-aperture photometry of imaging time series (``tso_aperture``)."""

from tso_steps.aperture.catalog import JWST_COLUMNS, PhotometryTable, build_catalog
from tso_steps.aperture.photometry import (
    FLAG_BITS,
    aperture_series,
    clipped_median,
    default_radii,
    local_centre,
    scaled_radii,
)
from tso_steps.aperture.step import MovingApertureStep

__all__ = [
    "FLAG_BITS",
    "JWST_COLUMNS",
    "MovingApertureStep",
    "PhotometryTable",
    "aperture_series",
    "build_catalog",
    "clipped_median",
    "default_radii",
    "local_centre",
    "scaled_radii",
]
