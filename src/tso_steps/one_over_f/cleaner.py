"""One cleaning run's shared state (:class:`_Cleaner`): scene model, weights, stripe fits.

:func:`~tso_steps.one_over_f.correct.clean_cube` and
:func:`~tso_steps.one_over_f.correct.clean_ramp` drive it; the method is described in
:mod:`tso_steps.one_over_f.correct`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tso_steps.one_over_f.gp import ReadTimeStripes
from tso_steps.one_over_f.outputs import learn_output_model
from tso_steps.one_over_f.reads import plan_reads
from tso_steps.one_over_f.scene import (
    bright_pixels,
    fit_source_pixels,
    pixel_weights,
    source_design,
    static_stripes,
    weights_from_variance,
)
from tso_steps.one_over_f.stripes import fit_stripes, segment_times, stripe_image
from tso_steps.one_over_f.wiener import level_covariance

__all__ = ["METHODS", "WIENER_ITERATIONS"]

# how line levels are estimated: 'lines' (each cell's own robust mean, combined with the
# other outputs and filled from neighbouring lines) or 'wiener' (conditional mean given all
# measured cells of the frame under a covariance fitted to the data) or 'gp' (conditional
# mean of the 1/f at every pixel's read time, :mod:`tso_steps.one_over_f.gp`)
METHODS = ("lines", "wiener", "gp")
WIENER_ITERATIONS = 1


class _Cleaner:
    """Shared state of one run: layout, weights, models, options."""

    def __init__(self, layout, dark, source, options):
        if options.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {options.method!r}.")
        self.method = options.method
        self.covariance = None
        self.outputs = None
        self.layout = layout
        self.dark = dark
        self.source = ~dark if source is None else source
        self.use_source_model = options.source_model
        self.odd_even = options.odd_even
        self.min_pixels = options.min_pixels
        self.kappa = options.clip_sigma
        self.window = options.background_window
        self.segment = options.segment
        self.iterations = 1
        self.filled = []
        self._scene_terms = {}
        self._plans = {}
        self.read_time = ReadTimeStripes(layout, dark, options) if self.method == "gp" else None

    def clean_model(self, median):
        """Scene model from a median frame: ``(clean, source)``.

        ``clean`` is the median frame minus its instrumental static stripes; ``source`` is
        the median frame minus the level of its unilluminated pixels (the star alone), the
        only part a source-model scale multiplies.
        """
        weights = self.dark.astype(np.float64)
        full, static = static_stripes(
            median, weights, self.layout, self.odd_even, self.min_pixels, self.kappa, self.window
        )
        return np.stack([median - static, median - full])

    def residuals(self, frames, scene, scaled, stripes=None):
        """``frames - scene`` with the source part scaled per frame, and the scales."""
        if not scaled:
            return frames - scene[0], np.ones(frames.shape[0])
        coeffs = self.source_coefficients(frames, scene, stripes)
        return self.subtract_source(frames, scene, coeffs), coeffs[:, 0].astype(np.float64)

    def source_coefficients(self, frames, scene, stripes=None):
        """Least-squares scale and shifts of the source in each frame, ``(nframes, 3)``."""
        terms = self._source_terms(scene)
        # the source scales (transit) and moves (jitter): fit it and its two derivatives,
        # on the bright pixels only (the rest of the starless frames is not used)
        starless = _take_pixels(frames, terms.bright) - terms.offset_bright
        if stripes is not None:
            starless = starless - _take_pixels(stripes, terms.bright)
        return fit_source_pixels(starless, terms.design_bright).astype(np.float32)

    def subtract_source(self, frames, scene, coeffs, rows=slice(None)):
        """``frames - scene`` with the source scaled and shifted by ``coeffs``.

        ``frames`` may be the rows ``rows`` of the frames only (a 2-D scene): the result is
        then those rows of the whole frames' residuals, element for element.
        """
        terms = self._source_terms(scene)
        basis = [b[..., rows, :] for b in terms.basis]
        model = sum(c[:, None, None] * b for c, b in zip(coeffs.T, basis, strict=True))
        return frames - terms.offset[..., rows, :] - model

    def _source_terms(self, scene):
        """What the source fit needs of a scene model, computed once per scene.

        The basis images, bright pixels and ``clean - source`` do not change between
        chunks (they took a third of the run when recomputed for every chunk); a scene is
        known by its memory, which the cache keeps alive, so the key cannot be reused.
        """
        key = (scene.__array_interface__["data"][0], scene.shape, scene.strides)
        if key not in self._scene_terms:
            clean, source = scene[0], scene[1]
            reference = source if source.ndim == 2 else np.nanmean(source, axis=0)
            basis = _source_basis(source)
            bright = bright_pixels(reference, self.source, self.dark)
            offset = clean - source
            self._scene_terms[key] = (
                scene,
                _SourceTerms(
                    basis,
                    offset,
                    np.flatnonzero(bright),
                    source_design([b[..., bright] for b in basis]),
                    offset[..., bright],
                ),
            )
        return self._scene_terms[key][1]

    def measure(self, frames, scene, weights, scaled):
        """Stripes of frames and the source-model scales.

        The scale is measured on the frames minus stripes fitted to the unilluminated pixels
        only (a frame-wide 1/f level on the bright pixels would otherwise leak into it);
        with the source model on, the final stripes then use every weighted pixel.
        """
        dark_weights = np.where(self.dark, weights, 0.0) if self.use_source_model else weights
        residuals, scale = self.residuals(frames, scene, scaled)
        if self.read_time is not None:  # the source is part of the read-time model
            return self.stripes(residuals, weights), scale
        stripes = self.stripes(residuals, dark_weights)
        if scaled:
            # the wiener levels of lit lines depend on the scale: alternate to convergence
            for _ in range(WIENER_ITERATIONS if self.method == "wiener" else 1):
                residuals, scale = self.residuals(frames, scene, scaled, stripes)
                stripes = self.stripes(residuals, weights)
        elif self.use_source_model:
            stripes = self.stripes(residuals, weights)
        return stripes, scale

    def learn(self, *sample, outputs=True, weights=None, scene=None):
        """Fit what every frame then shares, from the dark levels of a sample of frames.

        ``method='wiener'``: the level covariance; ``method='lines'`` with several outputs:
        the outputs' mutual regression. Each frame's levels then depend on that frame
        alone, so the result does not depend on how the frames are cut into chunks.
        ``method='gp'``: the read-time model, from the sample's residual frames, ``weights``
        and ``scene``.  ``sample`` is what :meth:`dark_levels` returns, stacked over the
        sample; ``outputs=False`` fits the covariance only.
        """
        if self.read_time is not None:
            self.read_time.learn(sample[0], weights, scene)
            return
        levels, variance, measured = sample
        if self.method == "wiener":
            n_cells = measured.shape[1]
            self.covariance = level_covariance(
                levels, variance, measured, max_lag=min(n_cells - 1, 64)
            )
        elif outputs and self.layout.namp >= 2:
            self.outputs = learn_output_model(levels, variance, measured)

    def learns(self, outputs=True):
        """True when :meth:`learn` fits anything (it needs the sample's dark levels)."""
        return self.method in ("wiener", "gp") or (outputs and self.layout.namp >= 2)

    def dark_levels(self, residuals, weights):
        """Measured levels of residual frames' dark pixels in read-time order.

        Returns ``(levels, variance, measured)``, each ``(nframes, ncells)``; each frame's
        are its own (frames can be measured a few at a time).  ``method='gp'`` learns from
        whole frames: ``(residuals,)``.
        """
        if self.read_time is not None:
            return (residuals,)
        fit = fit_stripes(
            self.layout.to_lines(residuals),
            self.layout.to_lines(np.where(self.dark, weights, 0.0)),
            self.layout,
            self.odd_even,
            self.min_pixels,
            self.kappa,
            self.segment,
            raw=True,
            plan=self._plan(np.where(self.dark, weights, 0.0)),
        )
        order = np.argsort(segment_times(self.layout, fit.nseg))
        return fit.levels[:, order], fit.variance[:, order], ~fit.filled[:, order]

    def weights(self, residuals, good, scene):
        """Inverse-variance pixel weights from residual frames (:func:`pixel_weights`)."""
        return pixel_weights(residuals, *self._weighting(good, scene))

    def weights_from_variance(self, variance, good, scene):
        """The same weights from each pixel's variance over the residual frames."""
        return weights_from_variance(variance, *self._weighting(good, scene))

    def _weighting(self, good, scene):
        use = good & (self.dark | self.use_source_model)
        source = scene[1] if scene[1].ndim == 2 else np.nanmean(scene[1], axis=0)
        return use, self.dark & good, source

    def stripes(self, residuals, weights):
        """Stripe frames measured on residual frames (NaN = unusable)."""
        if self.read_time is not None:
            self.filled.append(0.0)
            return self.read_time.stripes(residuals, weights)
        lines = self.layout.to_lines(residuals)
        fit = fit_stripes(
            lines,
            self.layout.to_lines(weights),
            self.layout,
            self.odd_even,
            self.min_pixels,
            self.kappa,
            self.segment,
            covariance=self.covariance,
            outputs=self.outputs,
            plan=self._plan(weights),
        )
        self.filled.append(float(fit.filled.mean()))
        return stripe_image(fit, self.layout)

    def _plan(self, weights):
        """:func:`plan_reads` of a weights image, made once per run for each weights image.

        Known by content: the dark-only weights of :meth:`measure` are a new array each time.
        """
        weights = np.asarray(weights)
        if weights.ndim != 2:
            return None
        key = (weights.shape, weights.dtype.str, weights.tobytes())
        if key not in self._plans:
            self._plans[key] = plan_reads(
                self.layout.to_lines(weights), self.layout, self.odd_even, self.segment
            )
        return self._plans[key]


class _SourceTerms(NamedTuple):
    """A scene's source basis and ``clean - source`` (whole frames and bright pixels)."""

    basis: list
    offset: np.ndarray
    bright: np.ndarray  # flat indices of the bright pixels
    design_bright: tuple  # source_design of the basis at the bright pixels
    offset_bright: np.ndarray


def _take_pixels(frames, flat):
    """``frames[:, mask]`` for the mask's flat indices ``flat``, ``(nframes, npix)``."""
    return np.take(frames.reshape(frames.shape[0], -1), flat, axis=1)


def _source_basis(source):
    """The source image(s) and their derivatives along y and x."""
    return [source, *np.gradient(np.nan_to_num(source), axis=(-2, -1))]
