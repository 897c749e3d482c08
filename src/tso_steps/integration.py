"""The ``stpipe.steps`` entry point: the steps and pipelines this package provides."""

__all__ = ["get_steps"]


def get_steps():
    """Return the stpipe Step and Pipeline subclasses provided by tso-steps.

    Registered with the ``stpipe.steps`` entry point. ``tests/test_integration.py`` checks the
    list against the steps exported by ``tso_steps`` and the pipelines exported by
    ``tso_steps.pipelines``.

    Returns
    -------
    list of tuple of (str, str, bool)
        Fully qualified class name, alias, and whether the class is a Pipeline.
    """
    # Class paths as strings, so that `stpipe list` does not import jwst and numpy.
    return [
        ("tso_steps.PixelTimingStep", "tso_pixel_timing", False),
        ("tso_steps.TSOJumpStep", "tso_jump", False),
        ("tso_steps.OneOverFStep", "tso_one_over_f", False),
        ("tso_steps.CentroidStep", "tso_centroid", False),
        ("tso_steps.TSOOutlierStep", "tso_outlier", False),
        ("tso_steps.TraceStep", "tso_trace", False),
        ("tso_steps.JitterCorrectStep", "tso_jitter", False),
        ("tso_steps.Background2DStep", "tso_background", False),
        ("tso_steps.OptimalExtractStep", "tso_extract", False),
        ("tso_steps.MovingApertureStep", "tso_aperture", False),
        ("tso_steps.pipelines.TSODetector1Pipeline", "tso_detector1", True),
        ("tso_steps.pipelines.TSOSpec2Pipeline", "tso_spec2", True),
        ("tso_steps.pipelines.TSOImage2Pipeline", "tso_image2", True),
        ("tso_steps.pipelines.TSOTso3Pipeline", "tso_tso3", True),
    ]
