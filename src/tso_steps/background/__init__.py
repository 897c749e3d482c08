"""tso_background: fit and subtract a smooth 2-D background from every integration."""

from tso_steps.background.model import BackgroundFit, BackgroundOptions, fit_background
from tso_steps.background.step import Background2DStep

__all__ = ["Background2DStep", "BackgroundFit", "BackgroundOptions", "fit_background"]
