"""Readout geometry of the JWST detectors: the one place that knows how pixels are clocked.

Every step that needs the fast/slow axes, the amplifier boundaries and read directions,
or the time at which a pixel is read (pixel timing, 1/f correction, jump detection, the
1/f-aware extraction) takes it from :class:`ReadoutGeometry`; the steps that work on detector
lines (1/f correction, jump detection, outlier common modes, the 1/f-aware extraction) take
the line view of it, :class:`LineLayout`, from :meth:`LineLayout.from_model`, which holds the
one policy for missing readout metadata.  The geometry is built from a
model's own readout metadata (``meta.subarray.fastaxis/slowaxis``, ``meta.exposure.noutputs``,
``meta.instrument.name``): missing or inconsistent keywords raise
:class:`ReadoutMetadataError`, except NOUTPUTS, which is inferred (with a warning) when the
frame time TFRAME of the full readout region matches exactly one output count.

Cut-outs: calwebb_spec2 cuts an NRC_TSGRISM spectrum out of the subarray (extract_2d); the
calints is a SlitModel whose subarray keywords stay the full subarray's and whose slit
``xstart``/``ystart`` (1-based) place the cut-out in it.  The geometry is then that of the
full subarray (frame time, output boundaries, read directions, line layout) with a
``window``; every per-pixel map is computed on the full subarray and indexed by the window,
so a cut-out pixel has exactly the read time and output of the same detector pixel.

Clocking (sources are listed in ``docs/timing.rst``):

* HxRG detectors (NIRCam, NIRISS, NIRSpec) are read by SIDECAR ASICs at 10 us per pixel.
  Each output (amplifier) reads a contiguous band of ``n_fast / noutputs`` pixels along the
  fast axis; all outputs are sampled simultaneously.  Every line along the fast axis is
  followed by 12 pixel times of overhead, and each frame by one or two more lines (and one
  pixel time with 4 outputs), which is why

  - NIRCam, NIRISS, NIRSpec, 4 outputs: ``((n_fast/4 + 12) * (n_slow + 1) + 1) * 10 us``
    (FULL: 10.73677 s),
  - NIRCam and NIRISS, 1 output: ``(n_fast + 12) * (n_slow + 2) * 10 us``
    (NIRISS SUBSTRIP256: 5.494 s),
  - NIRSpec, 1 output: ``(n_fast + 12) * (n_slow + 1) * 10 us`` (SUB2048: 0.90156 s).

  With 4 outputs, adjacent outputs read in opposite directions along the fast axis
  (the first output in the direction given by the sign of FASTAXIS).

* MIRI's Si:As detectors (1032 x 1024, DMS = detector orientation) have four outputs
  interleaved along the row: output ``k`` reads detector columns ``k, k+4, k+8, ...`` (0-based)
  and the four are sampled together.  Every one of the 1024 rows starts with a 7-clock reset
  overhead, whether or not it is in the subarray; a row inside the subarray then reads the
  left reference column group (4 clocks), skips columns left of the subarray at five per
  clock ("burst mode") and reads one clock per column group (FAST) or 9 (SLOW; 11 for reference
  pixels).  This reproduces FULL 2.77504 s, FULL SLOW 23.88992 s and SLITLESSPRISM 0.15904 s
  (Ressler, JPL MIRI DFM 478 04.02, 2014, as implemented in the MIRI team's MiriTE simulator;
  Ressler et al. 2015, PASP 127, 675).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PIXEL_TIME",
    "LineLayout",
    "ReadoutGeometry",
    "ReadoutMetadataError",
]

log = logging.getLogger("stpipe.tso_steps.readout")

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
        from tso_steps.readout_header import geometry_arguments

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


_MIRI_ROWS = 1024
_MIRI_COLUMNS = 1032
_MIRI_ROW_RESET = 7  # clocks: reset pulse (4) + shift-register reset (3), every row
_MIRI_COLUMN_GROUPS = _MIRI_COLUMNS // 4  # 258 groups of 4 simultaneously read columns
_MIRI_BURST_FACTOR = 5  # columns left of a subarray are skipped five per clock


def _miri_row_clocks(xstart, ncols, slow_mode):
    """Clocks of one MIRI subarray row, and the sample tick of each of its columns.

    Parameters
    ----------
    xstart : int
        1-based first detector column of the subarray.
    ncols : int
        Columns in the subarray.
    slow_mode : bool
        SLOW read pattern.

    Returns
    -------
    row_ticks : int
        Clocks from the start of the row to the start of the next.
    column_ticks : ndarray of int64, shape ``(ncols,)``
        Tick, counted from the start of the row, of the last clock of each column's sample.
    """
    science_clocks = 9 if slow_mode else 1
    reference_clocks = 11 if slow_mode else 4
    groups = (np.arange(ncols) + xstart - 1) // 4  # 4 simultaneously read columns per group
    first, last = int(groups[0]), int(groups[-1])
    # the left reference group (0) is read in every row; groups between it and the subarray
    # are skipped five per clock
    skipped = max(first - 1, 0)
    burst = -(-skipped * science_clocks // _MIRI_BURST_FACTOR)
    read = np.arange(max(first, 1), last + 1)
    durations = np.where(read == _MIRI_COLUMN_GROUPS - 1, reference_clocks, science_clocks)
    start = _MIRI_ROW_RESET + reference_clocks + burst
    ends = np.empty(last + 1, dtype=np.int64)
    ends[0] = _MIRI_ROW_RESET + reference_clocks - 1
    ends[read] = start + np.cumsum(durations) - 1
    row_ticks = int(start + durations.sum())
    return row_ticks, ends[groups]


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
