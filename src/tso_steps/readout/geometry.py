"""The clocking of a science array: :class:`ReadoutGeometry` and its HxRG frame overheads.

See :mod:`tso_steps.readout` for the clocking of each detector and its sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tso_steps.readout.miri import (
    _MIRI_COLUMNS,
    _MIRI_ROW_RESET,
    _MIRI_ROWS,
    _miri_row_clocks,
)

__all__ = ["PIXEL_TIME", "ReadoutGeometry", "ReadoutMetadataError"]

#: Time to sample one pixel on one output, in seconds (all JWST science detectors).
PIXEL_TIME = 10.0e-6

# Per instrument and output count: (pixel times of overhead per line, extra lines per frame,
# extra pixel times per frame).  Each row reproduces the published frame times quoted above.
_HXRG_OVERHEADS = {
    ("NIRCAM", 1): (12, 2, 0),
    ("NIRCAM", 4): (12, 1, 1),
    ("NIRISS", 1): (12, 2, 0),
    ("NIRISS", 4): (12, 1, 1),
    ("NIRSPEC", 1): (12, 1, 0),
    ("NIRSPEC", 4): (12, 1, 1),
}

_HXRG_INSTRUMENTS = ("NIRCAM", "NIRISS", "NIRSPEC")


class ReadoutMetadataError(ValueError):
    """The readout metadata of a model are missing or inconsistent."""


@dataclass(frozen=True)
class ReadoutGeometry:
    """How the pixels of a science array (DMS orientation) were clocked out.

    Parameters
    ----------
    instrument : str
        ``NIRCAM``, ``NIRISS``, ``NIRSPEC`` or ``MIRI``.
    shape : tuple of int
        ``(ny, nx)`` of the science array, DMS orientation.
    fastaxis, slowaxis : int
        DMS keywords FASTAXIS and SLOWAXIS: ``+-1`` is the x axis (array axis 1), ``+-2`` the
        y axis (array axis 0); a negative sign means the read runs towards decreasing index.
    noutputs : int
        Number of detector outputs used (1 or 4).
    xstart, ystart : int
        1-based detector position of the array's first pixel (SUBSTRT1, SUBSTRT2). Only MIRI's
        timing depends on it (rows and columns outside the subarray are still clocked).
    slow_mode : bool
        MIRI SLOW/SLOWR1 read pattern (9 clocks per pixel instead of 1).
    pixel_time : float
        Seconds per clock, 10 us for every JWST science detector.
    window : tuple of int, optional
        ``(row0, col0, ny, nx)``: the science array is this 0-based cut-out of the readout
        region ``shape`` (an extract_2d product); per-pixel maps are returned for the cut-out.
    """

    instrument: str
    shape: tuple[int, int]
    fastaxis: int
    slowaxis: int
    noutputs: int
    xstart: int = 1
    ystart: int = 1
    slow_mode: bool = False
    pixel_time: float = PIXEL_TIME
    window: tuple[int, int, int, int] | None = None

    def __post_init__(self):
        instrument = str(self.instrument).upper()
        object.__setattr__(self, "instrument", instrument)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if instrument not in (*_HXRG_INSTRUMENTS, "MIRI"):
            raise ReadoutMetadataError(
                f"Readout clocking is not known for instrument {self.instrument!r}; "
                "expected NIRCAM, NIRISS, NIRSPEC or MIRI."
            )
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ReadoutMetadataError(f"Science array shape must be (ny, nx), got {self.shape}.")
        if {abs(self.fastaxis), abs(self.slowaxis)} != {1, 2}:
            raise ReadoutMetadataError(
                f"FASTAXIS={self.fastaxis} and SLOWAXIS={self.slowaxis} must be +-1 and +-2 "
                "(one each)."
            )
        if self.noutputs not in (1, 4):
            raise ReadoutMetadataError(f"NOUTPUTS={self.noutputs} is not supported (1 or 4).")
        if instrument == "MIRI" and self.noutputs != 4:
            raise ReadoutMetadataError(
                f"MIRI science arrays are read through 4 interleaved outputs, got "
                f"NOUTPUTS={self.noutputs}."
            )
        if instrument == "MIRI" and (abs(self.fastaxis), abs(self.slowaxis)) != (1, 2):
            raise ReadoutMetadataError(
                f"MIRI reads along x (FASTAXIS=+-1), got FASTAXIS={self.fastaxis}."
            )
        if instrument == "MIRI" and (
            self.xstart < 1
            or self.ystart < 1
            or self.xstart + self.shape[1] - 1 > _MIRI_COLUMNS
            or self.ystart + self.shape[0] - 1 > _MIRI_ROWS
        ):
            raise ReadoutMetadataError(
                f"MIRI array {self.shape} at SUBSTRT1={self.xstart}, SUBSTRT2={self.ystart} does "
                f"not fit on the {_MIRI_ROWS} x {_MIRI_COLUMNS} detector."
            )
        if self.window is not None:
            row0, col0, ny, nx = (int(v) for v in self.window)
            object.__setattr__(self, "window", (row0, col0, ny, nx))
            if (
                row0 < 0
                or col0 < 0
                or ny < 1
                or nx < 1
                or row0 + ny > self.shape[0]
                or (col0 + nx > self.shape[1])
            ):
                raise ReadoutMetadataError(
                    f"A {ny}x{nx} cut-out at 0-based row {row0}, column {col0} does not fit in "
                    f"the {self.shape[0]}x{self.shape[1]} readout region; check the slit "
                    "xstart/ystart and SUBSIZE1/SUBSIZE2."
                )
        if not self.interleaved and self.n_fast % self.noutputs:
            raise ReadoutMetadataError(
                f"{self.n_fast} pixels along the fast axis do not divide among "
                f"{self.noutputs} outputs."
            )

    # ----------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, shape=None):
        """Build the geometry from a datamodel's readout metadata.

        Parameters
        ----------
        model : `~stdatamodels.jwst.datamodels.JwstDataModel`
            Any model with ``meta.instrument.name``, ``meta.subarray.fastaxis/slowaxis`` and
            (for NIRCam, NIRISS and NIRSpec) ``meta.exposure.noutputs``.
        shape : tuple of int, optional
            ``(ny, nx)`` of the science array; default the last two axes of ``model.data``.

        Returns
        -------
        ReadoutGeometry

        Raises
        ------
        ReadoutMetadataError
            When a keyword is missing or the values are inconsistent.
        """
        from tso_steps.readout.header import geometry_arguments

        args, extra = geometry_arguments(model, shape)
        return cls(*args, **extra)

    # ----------------------------------------------------------------------------------
    @property
    def fast_array_axis(self):
        """int : Array axis (0 = y, 1 = x) along which pixels are read fast."""
        return 1 if abs(self.fastaxis) == 1 else 0

    @property
    def slow_array_axis(self):
        """int : Array axis along which the fast lines follow each other."""
        return 1 - self.fast_array_axis

    @property
    def n_fast(self):
        """int : Pixels along the fast axis."""
        return self.shape[self.fast_array_axis]

    @property
    def n_slow(self):
        """int : Pixels (lines) along the slow axis."""
        return self.shape[self.slow_array_axis]

    @property
    def interleaved(self):
        """bool : Outputs interleaved pixel by pixel (MIRI) rather than in bands (HxRG)."""
        return self.instrument == "MIRI"

    @property
    def samples_per_line(self):
        """int : Pixel samples each output makes along one fast line (HxRG)."""
        return self.n_fast // self.noutputs

    @property
    def line_ticks(self):
        """int : Clock ticks from the start of one fast line to the start of the next."""
        if self.interleaved:
            return _miri_row_clocks(self.xstart, self.shape[1], self.slow_mode)[0]
        line_overhead = _HXRG_OVERHEADS[(self.instrument, self.noutputs)][0]
        return self.samples_per_line + line_overhead

    @property
    def line_time(self):
        """float : Seconds from the start of one fast line to the start of the next."""
        return self.line_ticks * self.pixel_time

    @property
    def frame_ticks(self):
        """int : Clock ticks to read one frame, including every overhead."""
        if self.interleaved:
            return self.line_ticks * self.n_slow + _MIRI_ROW_RESET * (_MIRI_ROWS - self.n_slow)
        _, extra_lines, extra_pixels = _HXRG_OVERHEADS[(self.instrument, self.noutputs)]
        return self.line_ticks * (self.n_slow + extra_lines) + extra_pixels

    @property
    def frame_time(self):
        """float : Seconds to read one frame (TFRAME), including every overhead."""
        return self.frame_ticks * self.pixel_time

    # ----------------------------------------------------------------------------------
    def _detector_fast_slow(self):
        """Fast and slow index in read order of every DMS pixel, as two (ny, nx) arrays."""
        ny, nx = self.shape
        yy, xx = np.indices((ny, nx))
        fast = xx if self.fast_array_axis == 1 else yy
        slow = yy if self.fast_array_axis == 1 else xx
        if self.fastaxis < 0:
            fast = self.n_fast - 1 - fast
        if self.slowaxis < 0:
            slow = self.n_slow - 1 - slow
        return fast, slow

    @property
    def array_shape(self):
        """tuple of int : ``(ny, nx)`` of the science array (the cut-out when windowed)."""
        return self.shape if self.window is None else self.window[2:]

    def _cut(self, full_map):
        """The science array's part of a map of the whole readout region."""
        if self.window is None:
            return full_map
        row0, col0, ny, nx = self.window
        return full_map[row0 : row0 + ny, col0 : col0 + nx]

    def amplifier_map(self):
        """Output (amplifier) number, 0-based in read order, of every pixel.

        Returns
        -------
        ndarray of int, shape ``(ny, nx)``
        """
        fast, _ = self._detector_fast_slow()
        if self.interleaved:
            return self._cut((fast + self.xstart - 1) % self.noutputs)
        return self._cut(fast // self.samples_per_line)

    def line_position(self):
        """Position of every pixel in its output's sample sequence along a fast line.

        Odd/even column offsets alternate with this position (``line_position() % 2``).

        Returns
        -------
        ndarray of int, shape ``(ny, nx)``
            0 for the first pixel an output reads in a line, 1 for the next, ...
        """
        return self._cut(self._line_position_full())

    def _line_position_full(self):
        """:meth:`line_position` over the whole readout region."""
        fast, _ = self._detector_fast_slow()
        if self.interleaved:
            return (fast + self.xstart - 1) // self.noutputs
        amp, position = np.divmod(fast, self.samples_per_line)
        if self.noutputs > 1:
            position = np.where(amp % 2 == 1, self.samples_per_line - 1 - position, position)
        return position

    def amplifier_slices(self):
        """Slices of the DMS array that each output reads (HxRG band outputs).

        Returns
        -------
        list of tuple of slice
            One ``(slice_y, slice_x)`` per output, in read order.

        Raises
        ------
        ValueError
            For MIRI, whose outputs interleave column by column, and for cut-outs (whose
            outputs may be partly outside); use :meth:`amplifier_map`.
        """
        if self.interleaved or self.window is not None:
            raise ValueError("Outputs of MIRI or of a cut-out: use amplifier_map() instead.")
        width = self.samples_per_line
        slices = []
        for amp in range(self.noutputs):
            start, stop = amp * width, (amp + 1) * width
            if self.fastaxis < 0:
                start, stop = self.n_fast - stop, self.n_fast - start
            band = slice(start, stop)
            full = slice(None)
            slices.append((full, band) if self.fast_array_axis == 1 else (band, full))
        return slices

    def read_ticks(self):
        """Pixel-clock ticks from the start of the frame readout to each pixel's sample.

        Returns
        -------
        ndarray of int64, shape ``(ny, nx)``
            Adjacent pixels read by one output along the fast axis differ by 1.
        """
        fast, slow = self._detector_fast_slow()
        slow = slow.astype(np.int64)
        if self.interleaved:
            # rows above the subarray cost only their reset overhead
            row_start = (self.ystart - 1) * _MIRI_ROW_RESET + slow * self.line_ticks
            column_ticks = _miri_row_clocks(self.xstart, self.shape[1], self.slow_mode)[1]
            return self._cut(row_start + column_ticks[fast])
        # each line's 12-tick overhead comes after its samples
        return self._cut(slow * self.line_ticks + self._line_position_full())

    def read_offsets(self):
        """Seconds after the start of a frame's readout at which each pixel is sampled.

        Returns
        -------
        ndarray of float64, shape ``(ny, nx)``
        """
        return self.read_ticks() * self.pixel_time

    def check_frame_time(self, frame_time, rtol=1e-4):
        """Compare the frame time this geometry implies with the one in the header.

        Parameters
        ----------
        frame_time : float or None
            ``meta.exposure.frame_time`` (TFRAME), seconds.
        rtol : float
            Allowed relative difference.

        Raises
        ------
        ReadoutMetadataError
            If the header value is missing or disagrees: the array is then not the full
            readout region (a cut-out) or a keyword is wrong, and pixel times would be wrong.
        """
        if frame_time is None:
            raise ReadoutMetadataError("TFRAME (meta.exposure.frame_time) is missing.")
        expected = self.frame_time
        if not np.isclose(frame_time, expected, rtol=rtol, atol=0):
            raise ReadoutMetadataError(
                f"TFRAME={frame_time:.6f} s in the header, but a {self.instrument} "
                f"{self.shape[0]}x{self.shape[1]} array read through {self.noutputs} output(s) "
                f"takes {expected:.6f} s. The array may be a cut-out of the readout region, or "
                "FASTAXIS/SLOWAXIS/NOUTPUTS may be wrong."
            )
