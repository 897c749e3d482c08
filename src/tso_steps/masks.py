"""Source and unilluminated-pixel masks, shared by every step that needs "where is the star".

A *source mask* is a boolean ``(ny, nx)`` array, True where light from the target (or any
other source) falls.  Its complement, minus bad pixels, is the set of *unilluminated* pixels
that 1/f correction, background fits and noise estimates use.  Masks can be built

* from a spectral trace: centre (and optionally width) of each order at every pixel along the
  dispersion axis (:func:`trace_mask`);
* from centroids: one or more (x, y) positions and PSF widths (:func:`centroid_mask`);
* from a median image: pixels above a robust threshold, then dilated (:func:`image_mask`);
* from a user file: FITS, ASDF or ``.npy`` (:func:`read_mask_file`).

:func:`source_mask_from_model` picks the best of these from what a datamodel carries
(``trace_center``, ``tso_vectors`` columns) and says which it used; :func:`choose_source_mask`
applies the ``mask_file`` / ``mask_method`` parameters that steps share.  Everything but that
function works on plain arrays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy import ndimage

from tso_steps.exposure import dispersion_axis
from tso_steps.stats import FWHM_PER_SIGMA, robust_std

__all__ = [
    "centroid_mask",
    "choose_source_mask",
    "image_mask",
    "read_mask_file",
    "source_mask_from_model",
    "trace_mask",
]

log = logging.getLogger("stpipe.tso_steps.masks")

# FWHM of a Gaussian in units of its sigma: tso_trace and tso_centroid report FWHM.


def trace_mask(shape, centers, widths=None, dispersion_axis=1, n_widths=4.0, pad=3.0):
    """Mask the pixels within a band around one or more spectral traces.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    centers : array-like, shape ``(n_dispersion,)`` or ``(norders, n_dispersion)``
        Cross-dispersion position (pixels, 0-based) of each order's centre at every pixel along
        the dispersion axis; NaN where an order does not fall on the detector.
    widths : float or array-like, optional
        Width (Gaussian sigma, pixels) of the trace, a scalar or broadcastable to ``centers``.
        Default 2 pixels.
    dispersion_axis : int
        Array axis along the dispersion: 1 (x, rows hold the spectrum) or 0 (y).
    n_widths : float
        Half-width of the masked band in units of ``widths``.
    pad : float
        Pixels added to the half-width (jitter, PSF wings).

    Returns
    -------
    ndarray of bool, shape ``shape``
        True inside any order's band.
    """
    ny, nx = (int(n) for n in shape)
    centers = np.atleast_2d(np.asarray(centers, dtype=np.float64))
    n_disp = nx if dispersion_axis == 1 else ny
    n_cross = ny if dispersion_axis == 1 else nx
    if centers.shape[-1] != n_disp:
        raise ValueError(
            f"Trace centres have {centers.shape[-1]} values along the dispersion axis, the "
            f"image has {n_disp}."
        )
    widths = np.broadcast_to(np.asarray(2.0 if widths is None else widths, float), centers.shape)
    half = n_widths * np.where(np.isfinite(widths), widths, 2.0) + pad
    cross = np.arange(n_cross, dtype=np.float64)[:, None]
    mask = np.zeros((n_cross, n_disp), dtype=bool)
    for center, halfwidth in zip(centers, half, strict=True):
        with np.errstate(invalid="ignore"):
            mask |= np.abs(cross - center[None, :]) <= halfwidth[None, :]
    return mask if dispersion_axis == 1 else mask.T


def centroid_mask(shape, x, y, widths=2.0, n_widths=5.0, pad=3.0):
    """Mask discs around one or more source positions.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    x, y : float or array-like
        Centroid(s), pixels, 0-based; every position (e.g. one per integration) is masked.
    widths : float or array-like
        PSF width (Gaussian sigma, pixels) at each position, or one value.
    n_widths : float
        Disc radius in units of ``widths``.
    pad : float
        Pixels added to the radius.

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    radius = n_widths * np.broadcast_to(np.asarray(widths, dtype=np.float64), x.shape) + pad
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(radius)
    yy, xx = np.indices(tuple(int(n) for n in shape), dtype=np.float64)
    mask = np.zeros(yy.shape, dtype=bool)
    # nearby positions (a jittering star) give the same disc: round to 0.25 px and de-duplicate
    keys = np.unique(np.round(np.stack([x[good], y[good], radius[good]], axis=1) * 4) / 4, axis=0)
    for cx, cy, r in keys:
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    return mask


def image_mask(image, n_sigma=3.0, dilation=3, smooth=3, bad=None):
    """Mask the illuminated pixels of an image (e.g. a median frame) by a robust threshold.

    The image is median-smoothed (``smooth`` x ``smooth``), pixels above
    ``background + n_sigma * noise`` are taken as source, where background and noise are the
    median and MAD-scaled scatter of the smoothed image, and the mask is dilated by
    ``dilation`` pixels to cover the wings.

    Parameters
    ----------
    image : ndarray, shape ``(ny, nx)``
        Any units; NaN pixels are ignored.
    n_sigma : float
        Threshold above the background, in units of the robust scatter.
    dilation : int
        Pixels of binary dilation applied to the thresholded mask (0 for none).
    smooth : int
        Size of the median filter applied first (1 for none).
    bad : ndarray of bool, optional
        Pixels to ignore in the statistics.

    Returns
    -------
    ndarray of bool
        True where the image is illuminated.
    """
    image = np.asarray(image, dtype=np.float64)
    ignore = ~np.isfinite(image) if bad is None else (~np.isfinite(image) | bad)
    filled = np.where(ignore, np.nanmedian(np.where(ignore, np.nan, image)), image)
    if smooth > 1:
        filled = ndimage.median_filter(filled, size=int(smooth), mode="nearest")
    # background and scatter by clipping from above: converges on the unilluminated level
    # even when the source covers most of the array (SOSS)
    values = filled[~ignore]
    if values.size == 0:
        return np.zeros(image.shape, dtype=bool)
    # start from the low tail (Gaussian quantile spacing of the 1st and 10th percentiles), so
    # the iteration converges on the background even when 80-90 % of the pixels are lit
    q01, q10 = np.quantile(values, [0.01, 0.10])
    level, noise = q10 + 1.2816 * (q10 - q01) / 1.0450, max((q10 - q01) / 1.0450, 1e-30)
    for _ in range(10):
        kept = values[values < level + 3.0 * noise]
        if kept.size < 10:
            break
        new_level, noise = np.median(kept), robust_std(kept)
        if np.isclose(new_level, level):
            break
        level = new_level
    mask = filled > level + n_sigma * noise
    if dilation > 0:
        mask = ndimage.binary_dilation(mask, iterations=int(dilation))
    return mask


def read_mask_file(path, shape):
    """Read a user-supplied mask of unilluminated pixels.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A ``.npy`` array; a FITS file (the extension named ``ONE_OVER_F_MASK``, ``MASK`` or
        ``DQ`` if present, else the first image extension or primary array); or an ASDF
        file / datamodel holding ``one_over_f_mask`` or ``mask``. The array is 2-D, or 3-D
        (the first plane is used).
    shape : tuple of int
        Expected ``(ny, nx)``.

    Returns
    -------
    ndarray of bool
        True where a pixel is **unilluminated** (usable to measure the noise), the convention
        of jwst's ``clean_flicker_noise`` ``user_mask`` and of the ``one_over_f_mask`` the
        ``tso_one_over_f`` step saves.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path)
    elif suffix in (".fits", ".fit", ".fits.gz"):
        array = _read_fits_mask(path)
    elif suffix == ".asdf":
        import asdf

        with asdf.open(path, lazy_load=False) as af:
            tree = af.tree
            node = tree.get("one_over_f_mask", tree.get("mask", tree.get("data")))
            if node is None:
                raise ValueError(f"{path} holds no 'one_over_f_mask', 'mask' or 'data' array.")
            array = np.asarray(node)
    else:
        raise ValueError(f"Unsupported mask file type {path.suffix!r}: use .fits, .asdf or .npy.")
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[0]
    if array.shape != tuple(shape):
        raise ValueError(f"Mask {path} has shape {array.shape}, the data {tuple(shape)}.")
    return array.astype(bool)


def _read_fits_mask(path):
    from astropy.io import fits

    with fits.open(path) as hdul:
        names = [hdu.name.upper() for hdu in hdul]
        for name in ("ONE_OVER_F_MASK", "MASK", "DQ"):
            if name in names:
                return np.asarray(hdul[name].data)
        if "ASDF" in names:  # a saved datamodel: the mask lives in its ASDF tree
            from stdatamodels.jwst import datamodels

            with datamodels.open(path) as model:
                if model.hasattr("one_over_f_mask"):
                    return np.asarray(model.one_over_f_mask)
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim >= 2:
                return np.asarray(hdu.data)
    raise ValueError(f"{path} holds no 2-D image to use as a mask.")


def _vector_column(model, name):
    """A ``tso_vectors`` column as float64, or None."""
    if not model.hasattr("tso_vectors"):
        return None
    vectors = model.tso_vectors
    names = vectors.dtype.names or ()
    if name not in names:
        return None
    values = np.asarray(vectors[name], dtype=np.float64)
    return values if np.isfinite(values).any() else None


def source_mask_from_model(model, shape, n_widths=4.0, pad=3.0):
    """Build a source mask from the trace or centroid vectors a model carries.

    Uses, in order: the model's ``trace_center`` attribute (``(norders, n_dispersion)``,
    cross-dispersion centre per dispersion pixel) widened by the spread of the
    ``tso_vectors`` column ``trace_position`` and sized by ``trace_width`` (FWHM, as
    ``tso_trace`` writes it); else the ``tso_vectors`` centroid columns
    ``centroid_x/centroid_y`` (with the FWHM-equivalent ``psf_width_x/y`` of
    ``tso_centroid``).  Widths are converted to Gaussian sigma; without them 2 px is used.

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    shape : tuple of int
        ``(ny, nx)`` of the science array.
    n_widths, pad : float
        Mask half-width in trace widths, plus a pad in pixels (see :func:`trace_mask`).

    Returns
    -------
    mask : ndarray of bool or None
        True on the source; None when the model carries neither.
    description : str
        What the mask was built from (for the log).
    """
    if model.hasattr("trace_center"):
        centers = np.atleast_2d(np.asarray(model.trace_center, dtype=np.float64))
        axis = dispersion_axis(model)
        width = _vector_column(model, "trace_width")  # FWHM (tso_trace)
        width = np.nanmedian(width) / FWHM_PER_SIGMA if width is not None else 2.0
        position = _vector_column(model, "trace_position")
        spread = 0.0
        if position is not None:
            spread = float(np.nanmax(position) - np.nanmin(position)) / 2.0
        n_disp = shape[1] if axis == 1 else shape[0]
        if centers.shape[-1] == n_disp:
            mask = trace_mask(shape, centers, width, axis, n_widths=n_widths, pad=pad + spread)
            return mask, (
                f"trace_center ({centers.shape[0]} order(s)), half-width "
                f"{n_widths:g} x {width:.2f} + {pad + spread:.1f} px"
            )
        log.warning(
            "trace_center has %d values along the dispersion axis, the data %d: not used.",
            centers.shape[-1],
            n_disp,
        )
    x = _vector_column(model, "centroid_x")
    y = _vector_column(model, "centroid_y")
    if x is not None and y is not None:
        wx = _vector_column(model, "psf_width_x")
        wy = _vector_column(model, "psf_width_y")
        widths = [w for w in (wx, wy) if w is not None]  # FWHM-equivalent (tso_centroid)
        width = np.nanmax(np.stack(widths), axis=0) / FWHM_PER_SIGMA if widths else 2.0
        mask = centroid_mask(shape, x, y, width, n_widths=n_widths + 1.0, pad=pad)
        return mask, f"tso_vectors centroids ({np.isfinite(x).sum()} positions)"
    return None, "no trace or centroid vectors"


def choose_source_mask(model, shape, threshold, mask_file=None, mask_method="auto", pad=3.0):
    """Source pixels as the steps' shared mask parameters choose them.

    ``mask_file`` (unilluminated pixels, nonzero = use) replaces everything else.  Otherwise
    ``mask_method`` 'trace' takes :func:`source_mask_from_model` (an error when the model has
    neither a trace nor centroids), 'image' the median-image threshold, and 'auto' the union
    of both (the threshold alone when the model carries no trace or centroids).

    Parameters
    ----------
    model : `~stdatamodels.jwst.datamodels.JwstDataModel`
    shape : tuple of int
        ``(ny, nx)`` of the science array.
    threshold : callable
        ``threshold() -> ndarray of bool``: the thresholded median image; called only when
        needed (it may be expensive).
    mask_file : str, optional
    mask_method : {'auto', 'trace', 'image'}
    pad : float
        Pixels added to the trace/centroid mask half-width.

    Returns
    -------
    ndarray of bool
        True on the source.
    """
    if mask_file:
        log.info("Unilluminated pixels from %s", mask_file)
        return ~read_mask_file(mask_file, shape)
    source = None
    if mask_method in ("auto", "trace"):
        source, description = source_mask_from_model(model, shape, pad=pad)
        if source is None and mask_method == "trace":
            raise ValueError(
                "mask_method='trace' but the model has no trace_center attribute and no "
                "centroid columns in tso_vectors (run tso_trace or tso_centroid first)."
            )
        if source is not None:
            log.info("Source mask from %s", description)
    if source is None or mask_method == "auto":
        lit = threshold()
        log.info("Median-image mask: %.1f%% of pixels above the threshold", 100 * lit.mean())
        source = lit if source is None else (source | lit)
    return source
