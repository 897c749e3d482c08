"""Per-integration optimal (Horne/Marsh) and box extraction of TSO spectra (``tso_extract``)."""

from tso_steps.extract.core import ExtractOptions, OrderResult, default_halfwidth, extract_order
from tso_steps.extract.optimal import Extraction, box_extract, horne_extract
from tso_steps.extract.profile import Profile, build_profile
from tso_steps.extract.step import OptimalExtractStep

__all__ = [
    "ExtractOptions",
    "Extraction",
    "OptimalExtractStep",
    "OrderResult",
    "Profile",
    "box_extract",
    "build_profile",
    "default_halfwidth",
    "extract_order",
    "horne_extract",
]
