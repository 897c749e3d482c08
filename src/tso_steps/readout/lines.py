"""The line view of a readout geometry: :class:`LineLayout`, the unit of 1/f and line offsets.

:meth:`LineLayout.from_model` holds the one policy for missing readout metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tso_steps.readout.geometry import ReadoutGeometry, ReadoutMetadataError

__all__ = ["LineLayout"]

log = logging.getLogger("stpipe.tso_steps.readout")


@dataclass(frozen=True, eq=False)
class LineLayout:
    """Where every pixel of a frame goes: line view, output, parity, read time.

    A frame is read as a sequence of *lines* along the fast axis; each output samples its own
    part of every line.  The layout maps a ``(ny, nx)`` frame to a ``(n_lines, n_fast)``
    view in which every line is a row and knows which output and parity each fast position
    belongs to.  It comes from :class:`ReadoutGeometry` and never from the instrument name.

    Parameters
    ----------
    fast_axis : int
        Array axis (0 = y, 1 = x) of a 2-D frame along which pixels are read fast.
    amp : ndarray of int, shape ``(n_fast,)``
        Output number of each position along a fast line (array order).
    parity : ndarray of int, shape ``(n_fast,)``
        0/1: parity of the sample index along its output.
    ticks : ndarray of int, shape ``(n_lines, n_fast)``
        Pixel-clock tick at which each pixel is read (line view); pixels of different
        outputs with the same tick are read simultaneously.
    noutputs : int
        Outputs of the readout (NOUTPUTS); a cut-out may hold pixels of fewer of them.
    interleaved : bool
        Outputs interleaved pixel by pixel (MIRI) rather than in bands (HxRG).
    """

    fast_axis: int
    amp: np.ndarray
    parity: np.ndarray
    ticks: np.ndarray
    noutputs: int = 1
    interleaved: bool = False

    @classmethod
    def from_geometry(cls, geometry):
        """Build the layout from a :class:`ReadoutGeometry`."""
        fast_axis = geometry.fast_array_axis
        amp_map = geometry.amplifier_map()
        ticks = geometry.read_ticks()
        first = (0, slice(None)) if fast_axis == 1 else (slice(None), 0)
        lines = ticks if fast_axis == 1 else ticks.T
        amp = np.asarray(amp_map[first])
        # parity of each position's rank among its output's samples, in read order
        order = np.lexsort((lines[0], amp))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size) - np.searchsorted(amp[order], amp[order])
        return cls(fast_axis, amp, rank % 2, lines, geometry.noutputs, geometry.interleaved)

    @classmethod
    def rows(cls, shape):
        """The layout assumed without readout metadata: lines along x, one output.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx)`` of the frame.
        """
        ny, nx = (int(n) for n in shape[-2:])
        return cls(
            1,
            np.zeros(nx, dtype=int),
            np.arange(nx) % 2,
            np.arange(ny * nx).reshape(ny, nx),
        )

    @classmethod
    def from_model(cls, model, shape=None, *, step, required, fix=""):
        """The line layout of a model's frames, with the one policy for missing metadata.

        A step that needs the detector lines for its result (``required``) stops with an
        error that names the step and the fix; a step that only refines its result with
        them (a common-mode offset per line and output) logs a warning and goes on with
        :meth:`rows`: lines along x, one output.

        Parameters
        ----------
        model : `~stdatamodels.jwst.datamodels.JwstDataModel`
        shape : tuple of int, optional
            ``(ny, nx)`` of the science array; default the last two axes of ``model.data``.
        step : str
            Alias of the step asking, for the messages.
        required : bool
            Raise when the readout metadata are missing or inconsistent.
        fix : str
            What else the user can do, appended to the error (e.g. ``"or run with
            line_offsets=False"``).

        Returns
        -------
        LineLayout

        Raises
        ------
        ReadoutMetadataError
            When ``required`` and the readout metadata are missing or inconsistent.
        """
        try:
            return cls.from_geometry(ReadoutGeometry.from_model(model, shape=shape))
        except ReadoutMetadataError as error:
            if required:
                advice = f"fix the keywords {fix}".rstrip()
                raise ReadoutMetadataError(
                    f"{error}. {step} needs the readout geometry to find the detector lines; "
                    f"{advice}."
                ) from error
            log.warning(
                "%s: no readout geometry (%s); lines taken along x (rows), one output.",
                step,
                error,
            )
            return cls.rows(model.data.shape[-2:] if shape is None else shape)

    @property
    def namp(self):
        """int : Number of outputs present in the frame."""
        return int(self.amp.max()) + 1

    @property
    def n_fast(self):
        """int : Pixels along a fast line."""
        return self.amp.size

    def column_groups(self, odd_even=True):
        """Slow-by-slow group (output, and parity if ``odd_even``) of each fast position."""
        return self.amp * 2 + self.parity if odd_even else self.amp.copy()

    def to_lines(self, frames):
        """View ``(..., ny, nx)`` frames as ``(..., n_lines, n_fast)`` (no copy)."""
        return frames if self.fast_axis == 1 else np.swapaxes(frames, -1, -2)

    def from_lines(self, lines):
        """Inverse of :meth:`to_lines`."""
        return self.to_lines(lines)

    def amplifier_map(self):
        """Output number of every pixel, ``(ny, nx)``."""
        return self.from_lines(np.broadcast_to(self.amp, self.ticks.shape))

    def line_map(self):
        """Index of the fast line (position along the slow axis) of every pixel, ``(ny, nx)``."""
        lines = np.arange(self.ticks.shape[0])[:, None]
        return self.from_lines(np.broadcast_to(lines, self.ticks.shape))

    def by_amp(self):
        """Positions of each output's samples in read order, ``(namp, n_samples)``.

        Column ``j`` holds the ``j``-th sample of every output along a line: pixels read
        at the same time.
        """
        order = np.lexsort((self.ticks[0], self.amp))
        return order.reshape(self.namp, -1)
