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

from tso_steps.readout.geometry import PIXEL_TIME, ReadoutGeometry, ReadoutMetadataError
from tso_steps.readout.lines import LineLayout

__all__ = [
    "PIXEL_TIME",
    "LineLayout",
    "ReadoutGeometry",
    "ReadoutMetadataError",
]
