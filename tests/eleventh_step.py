"""The worked example of docs/architecture.md: an eleventh step, built by the recipe.

``tso_white_flux`` sums the usable pixels of every integration of a rateints/calints cube and
records the relative white-light flux in ``tso_vectors``.  In the package the two halves
below would be two files, ``src/tso_steps/white_flux/flux.py`` (the algorithm: numpy only)
and ``src/tso_steps/white_flux/step.py`` (the step); ``tests/test_architecture.py`` runs the
step through ``Step.call`` on simulated data and checks it against the injected light curve.
"""

import logging
from dataclasses import dataclass

import numpy as np
from jwst.stpipe import Step

from tso_steps.atomic import AtomicSaveMixin
from tso_steps.inputs import (
    Accepts,
    bad_samples,
    flag_lost_integrations,
    lost_integrations,
    options_from_step,
    prepare_output,
)
from tso_steps.vectors import add_vectors

# ---------------------------------------------------------------- white_flux/flux.py
# The algorithm: arrays in, arrays out, its settings in one options object whose fields are
# named like the step's spec parameters.  It never sees a datamodel, so it is tested on
# arrays and reusable outside stpipe.


@dataclass(frozen=True)
class WhiteFluxOptions:
    """Settings of :func:`white_flux`.

    Attributes
    ----------
    min_pixels : int
        Fewest pixels usable in every integration; fewer is an error.
    """

    min_pixels: int = 1


def white_flux(data, bad, options):
    """Relative white-light flux of every integration.

    Parameters
    ----------
    data : ndarray, shape ``(nints, ny, nx)``
        Count rates.
    bad : ndarray of bool, shape ``(nints, ny, nx)``
        Samples not to use.
    options : WhiteFluxOptions

    Returns
    -------
    ndarray, shape ``(nints,)``
        Sum over the pixels usable in every measurable integration, divided by its median;
        NaN for an integration with no usable sample.

    Raises
    ------
    ValueError
        When fewer than ``options.min_pixels`` pixels are usable throughout.
    """
    lost = bad.all(axis=(1, 2))
    common = ~bad[~lost].any(axis=0)
    if common.sum() < options.min_pixels:
        raise ValueError(
            f"only {int(common.sum())} pixels are usable in every integration, fewer than "
            f"min_pixels={options.min_pixels}; lower min_pixels or clean the DQ array."
        )
    flux = data[:, common].sum(axis=1, dtype=np.float64)
    flux[lost] = np.nan
    return flux / np.nanmedian(flux)


# ---------------------------------------------------------------- white_flux/step.py
# The step: spec, I/O, logging, status.  Opening and checking the input, reading the bad
# samples and flagging lost integrations all come from the shared layer, tso_steps.inputs.

log = logging.getLogger("stpipe.tso_steps.white_flux")

#: What tso_white_flux takes (every message names the step by this alias).
ACCEPTS = Accepts("tso_white_flux", ("cube",), exposure="tso", min_shape=(1, 1))


class WhiteFluxStep(AtomicSaveMixin, Step):
    """Record the relative white-light flux of every integration in ``tso_vectors``.

    The input is not modified; a copy is returned.
    """

    class_alias = "tso_white_flux"

    spec = """
    min_pixels = integer(default=1, min=1)  # fewest pixels usable in every integration
    suffix = string(default='whiteflux')  # suffix of the output file
    """

    def process(self, input_data):
        """Measure the white-light flux of a rateints/calints product.

        Parameters
        ----------
        input_data : str or `~stdatamodels.jwst.datamodels.CubeModel`

        Returns
        -------
        `~stdatamodels.jwst.datamodels.CubeModel`
            A copy of the input with the ``white_flux`` vector.
        """
        result = prepare_output(self, input_data, ACCEPTS)
        bad = bad_samples(result)
        # the options object is filled from the spec parameters of the same names
        flux = white_flux(result.data, bad, options_from_step(WhiteFluxOptions, self))
        flag_lost_integrations(result, lost_integrations(bad), "tso_white_flux", "white_flux")
        add_vectors(result, {"white_flux": flux})
        log.info("White-light flux of %d integrations: rms %.3g", flux.size, np.nanstd(flux))
        result.meta.cal_step.tso_white_flux = "COMPLETE"
        return result
