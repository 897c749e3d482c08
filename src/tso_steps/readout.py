"""Readout geometry of the JWST detectors: the one place that knows how pixels are clocked.

Every step that needs the fast/slow axes, the amplifier boundaries and read directions,
or the time at which a pixel is read (pixel timing, 1/f correction, jump detection, the
1/f-aware extraction) takes it from :class:`ReadoutGeometry`.  The geometry is built from a
model's own readout metadata (``meta.subarray.fastaxis/slowaxis``, ``meta.exposure.noutputs``,
``meta.instrument.name``) and never guessed: missing or inconsistent keywords raise
:class:`ReadoutMetadataError`.

Clocking (sources are listed in ``docs/timing.rst``):

* HxRG detectors (NIRCam, NIRISS, NIRSpec) are read by SIDECAR ASICs at 10 us per pixel.
  Each output (amplifier) reads a contiguous band of ``n_fast / noutputs`` pixels along the
  fast axis; all outputs are sampled simultaneously.  Every line along the fast axis costs
  12 extra pixel times of overhead, and each frame a few more lines, which is why

  - NIRCam, NIRISS, NIRSpec, 4 outputs: ``((n_fast/4 + 12) * (n_slow + 1) + 1) * 10 us``
    (FULL: 10.73677 s),
  - NIRCam and NIRISS, 1 output: ``(n_fast + 12) * (n_slow + 2) * 10 us``
    (NIRISS SUBSTRIP256: 5.494 s),
  - NIRSpec, 1 output: ``(n_fast + 12) * (n_slow + 1) * 10 us`` (SUB2048: 0.90156 s).

  With 4 outputs, adjacent outputs read in opposite directions along the fast axis
  (the first output in the direction given by the sign of FASTAXIS).

* MIRI's SiAs detectors have four outputs interleaved along the row: output ``k`` reads
  columns ``k, k+4, k+8, ...`` and the four are sampled together, so a row of ``n_fast``
  pixels takes ``n_fast/4`` pixel times (10 us each) plus overhead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PIXEL_TIME",
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
    pixel_time : float
        Seconds per pixel sample, 10 us for every JWST science detector.
    """

    instrument: str
    shape: tuple[int, int]
    fastaxis: int
    slowaxis: int
    noutputs: int
    pixel_time: float = PIXEL_TIME

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
        if self.n_fast % self.noutputs:
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
        instrument = model.meta.instrument.name
        fastaxis = model.meta.subarray.fastaxis
        slowaxis = model.meta.subarray.slowaxis
        noutputs = model.meta.exposure.noutputs
        missing = [
            keyword
            for keyword, value in (
                ("INSTRUME (meta.instrument.name)", instrument),
                ("FASTAXIS (meta.subarray.fastaxis)", fastaxis),
                ("SLOWAXIS (meta.subarray.slowaxis)", slowaxis),
            )
            if value is None
        ]
        if noutputs is None:
            if instrument is not None and str(instrument).upper() == "MIRI":
                noutputs = 4  # MIRI has a single readout scheme: 4 interleaved outputs
            else:
                missing.append("NOUTPUTS (meta.exposure.noutputs)")
        if missing:
            raise ReadoutMetadataError(
                "Cannot work out the pixel readout order: missing keyword(s) " + ", ".join(missing)
            )
        if shape is None:
            shape = model.data.shape[-2:]
        return cls(instrument, tuple(shape), int(fastaxis), int(slowaxis), int(noutputs))

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
        """int : Pixel samples each output makes along one fast line."""
        return self.n_fast // self.noutputs

    @property
    def _overheads(self):
        if self.interleaved:
            return _miri_overheads(self.n_fast, self.n_slow)
        return _HXRG_OVERHEADS[(self.instrument, self.noutputs)]

    @property
    def line_time(self):
        """float : Seconds from the start of one fast line to the start of the next."""
        line_overhead = self._overheads[0]
        return (self.samples_per_line + line_overhead) * self.pixel_time

    @property
    def frame_time(self):
        """float : Seconds to read one frame (TFRAME), including every overhead."""
        line_overhead, extra_lines, extra_pixels = self._overheads
        ticks = (self.samples_per_line + line_overhead) * (self.n_slow + extra_lines)
        return (ticks + extra_pixels) * self.pixel_time

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

    def amplifier_map(self):
        """Output (amplifier) number, 0-based in read order, of every pixel.

        Returns
        -------
        ndarray of int, shape ``(ny, nx)``
        """
        fast, _ = self._detector_fast_slow()
        if self.interleaved:
            return fast % self.noutputs
        return fast // self.samples_per_line

    def amplifier_slices(self):
        """Slices of the DMS array that each output reads (HxRG band outputs).

        Returns
        -------
        list of tuple of slice
            One ``(slice_y, slice_x)`` per output, in read order.

        Raises
        ------
        ValueError
            For MIRI, whose outputs interleave column by column; use :meth:`amplifier_map`.
        """
        if self.interleaved:
            raise ValueError("MIRI outputs are interleaved; use amplifier_map() instead.")
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
        width = self.samples_per_line
        line_overhead = self._overheads[0]
        if self.interleaved:
            position = fast // self.noutputs
        else:
            amp, position = np.divmod(fast, width)
            if self.noutputs > 1:
                # adjacent outputs run in opposite directions along the fast axis
                position = np.where(amp % 2 == 1, width - 1 - position, position)
        # the line overhead precedes the samples of each line
        ticks = slow.astype(np.int64) * (width + line_overhead) + line_overhead + position
        return ticks

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


def _miri_overheads(n_fast, n_slow):
    """MIRI line and frame overheads (pixel times per line, extra lines, extra ticks).

    MIRI clocks each row as ``n_fast/4`` samples per output plus a fixed row overhead; the
    values here reproduce FULL (1032 x 1024, 2.77504 s).
    """
    return (13, 0, 0)
