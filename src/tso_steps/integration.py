"""The ``stpipe.steps`` entry point: the steps and pipelines this package provides."""

__all__ = ["get_steps"]


def get_steps():
    """Return the stpipe Step subclasses provided by tso-steps.

    Registered with the ``stpipe.steps`` entry point. Only steps that exist are listed;
    ``tests/test_integration.py`` checks the list against the classes exported by
    ``tso_steps``.

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
    ]
