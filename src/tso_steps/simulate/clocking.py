"""The simulator's own model of how a JWST detector clocks its pixels out.

The simulator's truth must not come from the production code it is used to test, so this
module does not use :mod:`tso_steps.readout`: it builds the read *schedule* (which output reads
which pixel at which clock tick) by walking the detector in read order, from the published
descriptions of the readout.  ``tests/test_clocking.py`` holds this model and the production
:class:`tso_steps.readout.ReadoutGeometry` to the published frame times and to each other,
pixel by pixel.

HxRG detectors (NIRCam, NIRISS, NIRSpec; JDox "NIRCam Detector Readout", "NIRCam Detector
Subarrays", "NIRISS Detector Readout Patterns"):

* one sample every 10 us on each output; the outputs sample simultaneously;
* each output reads its own stripe of ``n_fast / noutputs`` pixels along the fast direction,
  and with 4 outputs neighbouring stripes are read in opposite directions;
* every fast line is followed by 12 sample times of overhead;
* the frame time is the published one: with 4 outputs ``((n_fast/4 + 12)(n_slow + 1) + 1)``
  sample times, with 1 output ``(n_fast + 12)(n_slow + 2)`` (NIRCam, NIRISS) or
  ``(n_fast + 12)(n_slow + 1)`` (NIRSpec, whose published subarray frame times follow it).

MIRI Si:As detectors, FAST readout (JDox "MIRI Detector Subarrays"; Ressler et al. 2015,
PASP 127, 675; the clock counts from M. Ressler, "MIRI FPS Exposure Time Calculations", JPL
MIRI DFM 478 04.02, 2014):

* 1032 columns in 258 groups of 4; the 4 outputs read the 4 columns of a group together, one
  group per clock, the reference groups (the first and last) in 4 clocks;
* every one of the 1024 rows costs 7 reset clocks, read or not; a row of the subarray then
  reads the left reference group, passes over the groups left of the subarray five per clock
  without digitising them, and reads its own groups.

A pixel's *tick* is the clock at which its sample is taken, counted from the start of the
frame readout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["SAMPLE_TIME", "DetectorClock"]

#: Seconds per sample on one output (10 us, every JWST science detector).
SAMPLE_TIME = 10e-6

_LINE_OVERHEAD = 12  # HxRG: sample times after every fast line
_MIRI_ROWS, _MIRI_GROUPS = 1024, 258
_MIRI_RESET, _MIRI_REFERENCE, _MIRI_SKIP_PER_CLOCK = 7, 4, 5


@dataclass(frozen=True)
class DetectorClock:
    """Read schedule of one simulated readout region (DMS orientation).

    Parameters
    ----------
    instrument : str
        One of NIRCAM, NIRISS, NIRSPEC, MIRI.
    shape : tuple of int
        Rows and columns ``(ny, nx)`` of the region read.
    fastaxis, slowaxis : int
        The FASTAXIS / SLOWAXIS header values: 1 means along x (columns), 2 along y (rows);
        a minus sign means the read starts at the high-index end.
    noutputs : int
        Number of outputs: 1 or 4 (MIRI: 4).
    xstart, ystart : int
        SUBSTRT1 / SUBSTRT2, the 1-based detector column and row of the region's corner.

    Raises
    ------
    ValueError
        When the region cannot be read this way (naming the reason).
    """

    instrument: str
    shape: tuple[int, int]
    fastaxis: int
    slowaxis: int
    noutputs: int
    xstart: int = 1
    ystart: int = 1

    def __post_init__(self):
        object.__setattr__(self, "instrument", str(self.instrument).upper())
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        if {abs(self.fastaxis), abs(self.slowaxis)} != {1, 2}:
            raise ValueError(
                f"FASTAXIS={self.fastaxis}, SLOWAXIS={self.slowaxis}: need +-1 and +-2."
            )
        if self.instrument == "MIRI":
            ny, nx = self.shape
            if self.noutputs != 4 or (self.fastaxis, self.slowaxis) != (1, 2):
                raise ValueError("MIRI is read along +x, rows along +y, through 4 outputs.")
            inside = 1 <= self.xstart and self.xstart - 1 + nx <= 4 * _MIRI_GROUPS
            if not (inside and 1 <= self.ystart and self.ystart - 1 + ny <= _MIRI_ROWS):
                raise ValueError(
                    f"a {ny}x{nx} region at SUBSTRT1={self.xstart}, SUBSTRT2={self.ystart} "
                    "is not on the 1024 x 1032 MIRI detector."
                )
        elif self.instrument in ("NIRCAM", "NIRISS", "NIRSPEC"):
            if self.noutputs not in (1, 4):
                raise ValueError(f"{self.noutputs} outputs: HxRG detectors use 1 or 4.")
            if self._n_fast % self.noutputs:
                raise ValueError(
                    f"{self._n_fast} pixels along the fast axis do not divide among "
                    f"{self.noutputs} outputs."
                )
        else:
            raise ValueError(f"no readout model for instrument {self.instrument!r}.")

    # -- sizes along the read directions -------------------------------------------------
    @property
    def _fast_is_x(self):
        return abs(self.fastaxis) == 1

    @property
    def _n_fast(self):
        return self.shape[1] if self._fast_is_x else self.shape[0]

    @property
    def _n_slow(self):
        return self.shape[0] if self._fast_is_x else self.shape[1]

    @property
    def sample_time(self):
        """float : Seconds per clock tick."""
        return SAMPLE_TIME

    # -- the frame -----------------------------------------------------------------------
    @property
    def frame_ticks(self):
        """int : Ticks to read one frame, overheads included."""
        if self.instrument == "MIRI":
            row = self._miri_row()[0]
            return self._n_slow * row + (_MIRI_ROWS - self._n_slow) * _MIRI_RESET
        stripe = self._n_fast // self.noutputs
        if self.noutputs == 4:
            return (stripe + _LINE_OVERHEAD) * (self._n_slow + 1) + 1
        extra_lines = 1 if self.instrument == "NIRSPEC" else 2
        return (stripe + _LINE_OVERHEAD) * (self._n_slow + extra_lines)

    @property
    def frame_time(self):
        """float : Seconds to read one frame (TFRAME)."""
        return self.frame_ticks * SAMPLE_TIME

    # -- per-pixel schedule --------------------------------------------------------------
    @property
    def ticks(self):
        """ndarray of int64, shape ``(ny, nx)`` : Tick at which each pixel is sampled."""
        return self._schedule[0]

    @property
    def outputs(self):
        """ndarray of int, shape ``(ny, nx)`` : Output (0-based, in read order) of each pixel."""
        return self._schedule[1]

    @property
    def positions(self):
        """ndarray of int, shape ``(ny, nx)`` : Index of each pixel in its output's line."""
        return self._schedule[2]

    @cached_property
    def _schedule(self):
        if self.instrument == "MIRI":
            return self._miri_schedule()
        return self._hxrg_schedule()

    def _to_array(self, along_fast, along_slow, value):
        """Scatter values given per (fast, slow) read coordinate into a DMS array."""
        fast = along_fast if self.fastaxis > 0 else self._n_fast - 1 - along_fast
        slow = along_slow if self.slowaxis > 0 else self._n_slow - 1 - along_slow
        out = np.empty(self.shape, dtype=np.asarray(value).dtype)
        if self._fast_is_x:
            out[slow, fast] = value
        else:
            out[fast, slow] = value
        return out

    def _hxrg_schedule(self):
        stripe = self._n_fast // self.noutputs
        line_ticks = stripe + _LINE_OVERHEAD
        # walk one line: every output takes its samples s = 0, 1, ... at tick s
        fast_coord, output, sample = [], [], []
        for k in range(self.noutputs):
            s = np.arange(stripe)
            reversed_stripe = self.noutputs > 1 and k % 2 == 1
            fast_coord.append(k * stripe + (stripe - 1 - s if reversed_stripe else s))
            output.append(np.full(stripe, k))
            sample.append(s)
        fast_coord, output, sample = map(np.concatenate, (fast_coord, output, sample))
        # ... and repeat it for every line, line_ticks later each time
        line = np.arange(self._n_slow)
        f = np.broadcast_to(fast_coord[:, None], (self._n_fast, self._n_slow))
        s_ = np.broadcast_to(line[None, :], f.shape)
        tick = sample[:, None].astype(np.int64) + line[None, :].astype(np.int64) * line_ticks
        return (
            self._to_array(f, s_, tick),
            self._to_array(f, s_, np.broadcast_to(output[:, None], f.shape)),
            self._to_array(f, s_, np.broadcast_to(sample[:, None], f.shape)),
        )

    def _miri_row(self):
        """Clocks of one subarray row, and the tick (from the row's start) of each column."""
        columns = np.arange(self.shape[1]) + self.xstart - 1  # 0-based detector columns
        groups = columns // 4
        clock = _MIRI_RESET
        sampled_at = {0: clock + _MIRI_REFERENCE - 1}  # the left reference group, every row
        clock += _MIRI_REFERENCE
        first = max(int(groups[0]), 1)
        clock += -(-(first - 1) // _MIRI_SKIP_PER_CLOCK)  # groups passed over, five per clock
        for group in range(first, int(groups[-1]) + 1):
            clocks = _MIRI_REFERENCE if group == _MIRI_GROUPS - 1 else 1
            clock += clocks
            sampled_at[group] = clock - 1
        return clock, np.array([sampled_at[g] for g in groups], dtype=np.int64)

    def _miri_schedule(self):
        row_clocks, column_ticks = self._miri_row()
        rows = np.arange(self.shape[0], dtype=np.int64)
        # the rows below the region were only reset, 7 clocks each
        row_start = (self.ystart - 1) * _MIRI_RESET + rows * row_clocks
        columns = np.arange(self.shape[1]) + self.xstart - 1
        ticks = row_start[:, None] + column_ticks[None, :]
        outputs = np.broadcast_to(columns % 4, self.shape).copy()
        positions = np.broadcast_to(columns // 4, self.shape).copy()
        return ticks, outputs, positions
