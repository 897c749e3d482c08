"""Per-pixel readout time stamps, on plain arrays and on models.

The JWST pipeline time-tags whole integrations (``int_times``), but a frame is read over
up to ~10 s: on NIRISS/SOSS SUBSTRIP256 the two ends of the spectrum are read 5.49 s
apart, on NIRCam grism with one output 5.3 s.  The functions here say *when* each pixel was
read, from the readout geometry in :mod:`tso_steps.readout`.

Time convention
---------------
``int_times`` gives one mid-time per integration.  We take it to be the mid-time of the
integration's frame readouts averaged over the array, i.e. the time at which a pixel read
half-way through a frame (offset ``TFRAME / 2``) takes its mid-integration sample.  A pixel
read at offset ``o`` after the start of the frame readout is then sampled
``o - TFRAME/2`` seconds later than ``int_mid``, in every group and so in its slope.
The uncertainty of that convention, and what cannot be computed here (spacecraft clock,
barycentric correction), are described in ``docs/timing.rst``.
"""

from __future__ import annotations

import numpy as np

from tso_steps.readout import ReadoutGeometry

__all__ = [
    "bin_mid_times",
    "pixel_read_offsets",
    "pixel_time_shift",
]

SECONDS_PER_DAY = 86400.0


def pixel_read_offsets(model, check_frame_time=True):
    """Seconds after the start of a frame's readout at which each pixel is read.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        A ramp, rateints/calints or rate model whose science array is the full readout
        region (a subarray as read, in DMS orientation), with FASTAXIS, SLOWAXIS, NOUTPUTS,
        INSTRUME and TFRAME in its metadata.
    check_frame_time : bool
        Compare the frame time implied by the geometry with TFRAME and raise on a mismatch.

    Returns
    -------
    ndarray of float64, shape ``(ny, nx)``
        Read offsets in seconds, DMS orientation. Pixels read one after the other by one
        output differ by 10 us.

    Raises
    ------
    tso_steps.readout.ReadoutMetadataError
        If a readout keyword is missing or inconsistent with the array.
    """
    geometry = ReadoutGeometry.from_model(model)
    if check_frame_time:
        geometry.check_frame_time(model.meta.exposure.frame_time)
    return geometry.read_offsets()


def pixel_time_shift(read_offsets, frame_time):
    """Shift of each pixel's sample time relative to the integration mid-time.

    Parameters
    ----------
    read_offsets : array-like
        Seconds after the start of the frame readout (see :func:`pixel_read_offsets`).
    frame_time : float
        TFRAME in seconds.

    Returns
    -------
    ndarray
        ``read_offsets - frame_time / 2``, seconds; add it (divided by 86400) to
        ``int_mid_BJD_TDB`` to time-stamp a pixel.
    """
    return np.asarray(read_offsets, dtype=np.float64) - 0.5 * frame_time


def bin_mid_times(int_mid, read_offsets, frame_time, bin_pixels):
    """Mid-time of every spectral bin of every integration.

    Parameters
    ----------
    int_mid : array-like, shape ``(nints,)``
        Integration mid-times in days (e.g. ``int_mid_BJD_TDB``).
    read_offsets : ndarray, shape ``(ny, nx)``
        Seconds after the start of the frame readout.
    frame_time : float
        TFRAME in seconds.
    bin_pixels : sequence of (ndarray, ndarray)
        For each spectral bin, the ``(y, x)`` index arrays of the pixels summed into it.
        A bin with no pixels gets NaN.

    Returns
    -------
    ndarray of float64, shape ``(nints, nbins)``
        Days, on the same scale as ``int_mid``.
    """
    shift = pixel_time_shift(read_offsets, frame_time)
    bin_shift = np.array(
        [shift[y, x].mean() if np.size(y) else np.nan for y, x in bin_pixels], dtype=np.float64
    )
    int_mid = np.asarray(int_mid, dtype=np.float64)
    return int_mid[:, None] + bin_shift[None, :] / SECONDS_PER_DAY


def extraction_bin_pixels(
    shape, dispersion_direction, xstart, xstop, ystart, ystop, nbins, origin=(0, 0)
):
    """Pixels of each spectral bin of a rectangular (box) extraction region.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the science array.
    dispersion_direction : int
        1 when wavelength runs along x, 2 when along y (as ``spec.dispersion_direction``).
    xstart, xstop, ystart, ystop : float
        Extraction limits, 1-based inclusive as written by jwst's extract_1d
        (``spec.extraction_xstart`` ...), in the frame of the array extracted from.
    nbins : int
        Number of spectral bins.
    origin : tuple of int
        ``(x0, y0)``: 0-based position in the science array of pixel (0, 0) of the frame the
        extraction limits refer to (non-zero when extract_2d made a cut-out).

    Returns
    -------
    list of (ndarray, ndarray)
        ``(y, x)`` indices per bin; pixels outside the array are dropped.
    """
    ny, nx = shape
    x0, y0 = origin
    xs = int(round(xstart)) - 1 + x0
    xe = int(round(xstop)) - 1 + x0
    ys = int(round(ystart)) - 1 + y0
    ye = int(round(ystop)) - 1 + y0
    bins = []
    for k in range(nbins):
        if dispersion_direction == 1:
            x = np.array([xs + k])
            y = np.arange(ys, ye + 1)
        else:
            y = np.array([ys + k])
            x = np.arange(xs, xe + 1)
        yy, xx = np.meshgrid(y, x, indexing="ij")
        inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        bins.append((yy[inside], xx[inside]))
    return bins
