"""``method='gp'`` inside a cleaning run: the 1/f at every pixel's read time.

The even/odd offsets of each output are measured as by the other methods
(:func:`~tso_steps.one_over_f.stripes.fit_stripes`, unilluminated pixels); what they leave is
handed to :class:`~tso_steps.one_over_f.kriging.ReadTimeKriging`, fitted once per run on a
sample of residual frames (:meth:`ReadTimeStripes.learn`), which returns the conditional mean
of the 1/f (and each output's constant) at every pixel of a frame.  With the source model on,
the illuminated pixels are observed too and the source in them is modelled by a free
spectrum and profile shifts (:func:`~tso_steps.one_over_f.kriging.source_basis`).
"""

from __future__ import annotations

import numpy as np

from tso_steps.one_over_f.kriging import fit_read_time_model, source_basis
from tso_steps.one_over_f.stripes import fit_stripes

__all__ = ["ReadTimeStripes"]


class ReadTimeStripes:
    """Stripes of ``method='gp'`` for one run (the read-time model is fitted once).

    Parameters
    ----------
    layout : `~tso_steps.readout.LineLayout`
    dark : ndarray of bool, shape ``(ny, nx)``
        Unilluminated, good pixels.
    options : `~tso_steps.one_over_f.correct.OneOverFOptions`
        ``odd_even``, ``min_pixels``, ``clip_sigma``, ``source_model`` (observe the
        illuminated pixels), ``dispersion_axis``, ``gp_unit`` and ``gp_budget`` are used.
    """

    def __init__(self, layout, dark, options):
        self.layout = layout
        self.dark = dark
        self.options = options
        self.model = None

    def parity_offsets(self, residuals, weights):
        """Even/odd offsets of each output about their mean, as images ``(nframes, ny, nx)``."""
        layout, opts = self.layout, self.options
        if not opts.odd_even:
            return np.zeros_like(residuals)
        fit = fit_stripes(
            layout.to_lines(residuals),
            layout.to_lines(np.where(self.dark, weights, 0.0)),
            layout,
            True,
            opts.min_pixels,
            opts.clip_sigma,
            raw=True,
        )
        pairs = fit.offsets.reshape(fit.offsets.shape[0], -1, 2)
        pairs = (pairs - pairs.mean(axis=2, keepdims=True)).reshape(fit.offsets.shape[0], -1)
        offsets = pairs[:, layout.column_groups(True)][:, None, :]
        lines = np.broadcast_to(offsets, (residuals.shape[0], *layout.ticks.shape))
        return layout.from_lines(np.ascontiguousarray(lines, dtype=np.float32))

    def learn(self, residuals, weights, scene):
        """Fit the read-time covariance and noise to sample residual frames.

        Parameters
        ----------
        residuals : ndarray, shape ``(nframes, ny, nx)``
            Sample frames minus the scene (source scaled), NaN where unusable.
        weights : ndarray, shape ``(ny, nx)``
            Pixel weights of the run (0: never used).
        scene : ndarray, shape ``(2, ...)``
            ``(clean, source)`` scene model; the source image sets the photon noise and the
            source basis.
        """
        layout, opts = self.layout, self.options
        source = scene[1] if scene[1].ndim == 2 else np.nanmean(scene[1], axis=0)
        lines = layout.to_lines(residuals - self.parity_offsets(residuals, weights))
        basis = None
        if opts.source_model:
            basis = [layout.to_lines(b) for b in source_basis(source, opts.dispersion_axis)]
        self.model = fit_read_time_model(
            layout,
            lines,
            layout.to_lines(self.dark),
            layout.to_lines(weights > 0),
            layout.to_lines(source),
            basis,
            size=opts.gp_unit,
            budget=opts.gp_budget,
            kappa=opts.clip_sigma,
        )
        if self.model.n_obs == 0:
            raise ValueError(
                "method='gp': no pixel to measure the 1/f on (no unilluminated pixel has a "
                "weight, and the illuminated ones are observed only with the source model)."
            )

    def stripes(self, residuals, weights):
        """The 1/f and offsets of residual frames, ``(nframes, ny, nx)`` float32."""
        if self.model is None:
            raise RuntimeError("ReadTimeStripes.learn must be called before stripes.")
        offsets = self.parity_offsets(residuals, weights)
        lines = self.layout.to_lines(residuals - offsets)
        return self.layout.from_lines(self.model.estimate(lines)) + offsets
