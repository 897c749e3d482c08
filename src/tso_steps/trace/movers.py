"""How the mean frame moves under a cross-dispersion shift: the per-integration fit's models.

A :class:`FrameMover` gives, at the traced pixels, the mean frame moved by a shift ``dy``
and its derivative along the cross-dispersion.  Two models of how the light moves:

* band-limited (Fourier) interpolation of the mirror-padded mean frame, Wiener-filtered
  with the mean frame's own noise (its variance is known, so the filter passes every
  frequency where the profile's power exceeds that noise); the moved frame is the filtered
  one (its residual from the mean frame is the same in every integration).  It is
  transformed exactly only at nodes of a fine grid of shifts, as the shifts of the
  integrations need them, and interpolated between them (:class:`_FourierTable`): one
  transform of every column per integration and Gauss-Newton iteration was most of the
  cost of the per-integration fit;
* for orders with a :class:`~tso_steps.trace.pixel_profile.PixelProfiles`, the mean frame
  plus that pixel-integrated parametric model's increment ``m(u - dy) - m(u)`` (the model
  only says how the light moves; the frame stays the data), tabulated once on a fine grid
  of shifts (its exact evaluation was the costly part of the fit).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FrameMover"]

#: Shifts (px) within which a pixel model is tabulated, and the table's step.
TABLE_RANGE = 1.0
TABLE_STEP = 1.0 / 32.0
#: Profile evaluations (shift x pixel x component) per block of the exact evaluation.
EXACT_SAMPLES = 1 << 19
#: Samples of the moved frames (shift x column x padded row) per block of columns.
FOURIER_SAMPLES = 1 << 18


def _padded_spectrum(reference, variance):
    """Wiener-filtered FFT along the cross-dispersion of the mirror-padded mean frame.

    Mirror padding makes each column periodic without a jump.  The filter is
    ``max(0, 1 - N / P(f))`` with ``P`` the power at frequency ``f`` averaged over columns
    and ``N`` the white-noise power of the mean frame, ``2 sum_y var`` per column (the
    padding doubles every sample), averaged over columns: it keeps the mean frame's noise
    out of the derivative without cutting a profile's real high frequencies, which an
    estimate of the noise floor from the highest frequencies of an undersampled profile
    would (that cut the derivative of a 2-3 px core by a few per cent).
    """
    padded = np.concatenate([reference, reference[::-1]], axis=0).astype(np.float64)
    freq = np.fft.rfftfreq(padded.shape[0])
    spectrum = np.fft.rfft(padded, axis=0)
    power = np.mean(np.abs(spectrum) ** 2, axis=1)
    good = np.isfinite(variance) & (variance > 0)
    noise = 2.0 * np.mean(np.sum(np.where(good, variance, 0.0), axis=0))
    with np.errstate(all="ignore"):
        wiener = np.where(power > 0, np.clip(1.0 - noise / power, 0.0, 1.0), 0.0)
    wiener[0] = 1.0
    # stored (n_disp, nfreq): the transforms then run along the contiguous axis
    return np.ascontiguousarray((spectrum * wiener[:, None]).T), freq


def _shifted(spectrum, freq, dy, n_cross, nderiv=1):
    """Filtered frame moved by ``dy`` (per integration) and its derivatives along y.

    ``spectrum`` is ``(n_disp, nfreq)`` (:func:`_padded_spectrum`); the results are
    ``nderiv + 1`` arrays ``(ndy, n_cross, n_disp)`` (views): the moved frame, its slope
    and, with ``nderiv=2``, its curvature.  Transforming along the contiguous last axis
    gives the same numbers as along the rows of a ``(nfreq, n_disp)`` spectrum, twice as
    fast.
    """
    phase = np.exp(-2j * np.pi * freq[None, None, :] * dy[:, None, None])
    moved = spectrum[None] * phase
    out = [np.fft.irfft(moved, n=2 * n_cross, axis=-1)[..., :n_cross]]
    deriv = 2j * np.pi * freq
    for k in range(1, nderiv + 1):
        part = np.fft.irfft(moved * (deriv if k == 1 else deriv**k), n=2 * n_cross, axis=-1)
        out.append(part[..., :n_cross])
    return [a.transpose(0, 2, 1) for a in out]


def _hermite(t, v0, d0, v1, d1, out):
    """Cubic Hermite interpolation at fraction ``t`` between nodes, into ``out``.

    ``v0``, ``v1`` are the node values, ``d0``, ``d1`` their derivatives times the step.
    """
    t2 = t * t
    t3 = t2 * t
    np.multiply(2 * t3 - 3 * t2 + 1, v0, out=out)
    out += (t3 - 2 * t2 + t) * d0
    out += (-2 * t3 + 3 * t2) * v1
    out += (t3 - t2) * d1
    return out


class _FourierTable:
    """The band-limited moved frame at its pixels, Hermite-interpolated in the shift.

    The moved frame, its slope and its curvature are transformed exactly at nodes
    ``TABLE_STEP`` apart, only at the nodes the shifts asked for need (the integrations of a
    segment usually span a few of them), and cached.  Between nodes the frame and its slope
    are cubic Hermite polynomials (each node's value and its derivative in the shift, which
    is minus the next derivative along y): for a profile band-limited to the Nyquist
    frequency the relative error is below ``(pi * TABLE_STEP)**4 / 384``, 1e-7 with a
    1/32 px step, far below the noise of any pixel.  A shift of ``TABLE_RANGE`` or more is
    transformed exactly.  At a node (``dy = 0`` in the first iteration) the interpolation
    returns the node's exact transform.
    """

    def __init__(self, spectrum, freq, rows, cols, n_cross):
        self.spectrum, self.freq, self.n_cross = spectrum, freq, n_cross
        # transformed by blocks of columns: the pixels sorted by column, and where each goes
        self.order = np.argsort(cols, kind="stable")
        self.rows, self.cols = rows[self.order], cols[self.order]
        self.nodes = {}  # node index -> (value, slope, curvature) at the pixels

    def exact(self, dy, nderiv=1):
        """Moved frame and ``nderiv`` derivatives at the pixels, blocks of columns at once.

        Every column is transformed on its own, so blocks give the same numbers as the
        whole frame, while the moved frames (``dy.size`` x columns x twice the
        cross-dispersion size, complex) stay a few MB instead of tens per integration.
        """
        rows, cols = self.rows, self.cols
        out = [np.empty((dy.size, rows.size)) for _ in range(nderiv + 1)]
        order = self.order
        step = max(1, FOURIER_SAMPLES // (dy.size * 2 * self.n_cross))
        first, last = int(cols[0]), int(cols[-1]) + 1
        bounds = np.searchsorted(cols, np.arange(first, last + step, step))
        for k, start in enumerate(range(first, last, step)):
            part = slice(bounds[k], bounds[k + 1])
            if part.start == part.stop:
                continue
            spectrum = self.spectrum[start : start + step]
            full = _shifted(spectrum, self.freq, dy, self.n_cross, nderiv)
            r, c = rows[part], cols[part] - start
            for target, moved in zip(out, full, strict=True):
                target[:, order[part]] = moved[:, r, c]
        return out

    def _node(self, indices):
        """The cached exact transforms of the nodes ``indices`` (computing the missing ones)."""
        missing = sorted(set(indices.tolist()) - self.nodes.keys())
        if missing:
            dy = -TABLE_RANGE + TABLE_STEP * np.array(missing, dtype=np.float64)
            value, slope, curvature = self.exact(dy, nderiv=2)
            for j, index in enumerate(missing):
                self.nodes[index] = (value[j], slope[j], curvature[j])
        return [self.nodes[i] for i in indices.tolist()]

    def __call__(self, dy, value, slope):
        """Fill ``value`` and ``slope`` ``(dy.size, npix)`` with the frame moved by ``dy``."""
        inside = np.abs(dy) < TABLE_RANGE
        if (~inside).any():
            value[~inside], slope[~inside] = self.exact(dy[~inside])
        nnodes = int(round(2 * TABLE_RANGE / TABLE_STEP)) + 1
        for j in np.flatnonzero(inside):
            x = (dy[j] + TABLE_RANGE) / TABLE_STEP
            k = min(int(np.floor(x)), nnodes - 2)
            t = x - k
            (v0, s0, c0), (v1, s1, c1) = self._node(np.array([k, k + 1]))
            if t == 0.0:
                value[j], slope[j] = v0, s0
                continue
            # d value / d dy = -slope, d slope / d dy = -curvature
            h = TABLE_STEP
            _hermite(t, v0, -h * s0, v1, -h * s1, value[j])
            _hermite(t, s0, -h * c0, s1, -h * c1, slope[j])


class _PixelTable:
    """A pixel model's values and slopes at the traced pixels, tabulated in the shift.

    Values are interpolated by cubic Hermite polynomials (value and slope at the nodes),
    slopes linearly; with a 1/32 px step both are exact to far below the noise.  Shifts
    outside the table are evaluated exactly.
    """

    def __init__(self, profile, u, cols):
        self.profile, self.u, self.cols = profile, u, cols
        self.nodes = np.arange(-TABLE_RANGE, TABLE_RANGE + TABLE_STEP / 2, TABLE_STEP)
        self.value, self.slope = self._exact(self.nodes)
        self.base = self._exact(np.zeros(1))[0][0]

    def _exact(self, dy):
        value = np.empty((dy.size, self.u.size))
        slope = np.empty_like(value)
        # The profile's temporaries are (shifts, pixels, components) float64: by blocks of
        # pixels they stay a few MB (the whole table at once took 1.7 GB on a NIRCam grism).
        ncomp = self.profile.weights.shape[1]
        step = max(1, EXACT_SAMPLES // max(dy.size * ncomp, 1))
        for start in range(0, self.u.size, step):
            part = slice(start, start + step)
            u = self.u[None, part] - dy[:, None]
            c = np.broadcast_to(self.cols[part], u.shape)
            value[:, part] = self.profile.value(u, c)
            slope[:, part] = self.profile.slope(u, c)
        return value, slope

    def __call__(self, dy):
        inside = np.abs(dy) < TABLE_RANGE
        value = np.empty((dy.size, self.u.size))
        slope = np.empty_like(value)
        if (~inside).any():
            value[~inside], slope[~inside] = self._exact(dy[~inside])
        if inside.any():
            x = (dy[inside] + TABLE_RANGE) / TABLE_STEP
            k = np.minimum(np.floor(x).astype(int), self.nodes.size - 2)
            t = (x - k)[:, None]
            v0, v1 = self.value[k], self.value[k + 1]
            # d value / d dy = -slope
            d0, d1 = -self.slope[k] * TABLE_STEP, -self.slope[k + 1] * TABLE_STEP
            h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
            h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
            value[inside] = h00 * v0 + h10 * d0 + h01 * v1 + h11 * d1
            slope[inside] = (1 - t) * self.slope[k] + t * self.slope[k + 1]
        return value, slope


class FrameMover:
    """The mean frame at the traced pixels, moved by ``dy``, and its derivative along y.

    Parameters
    ----------
    reference : ndarray, shape ``(n_cross, n_disp)``
        Mean frame (NaN-free).
    variance : ndarray, shape ``(n_cross, n_disp)``
        Its variance (for the Wiener filter).
    rows, cols, centre, order : ndarray, shape ``(npix,)``
        Traced pixels, their order's reference centre and order index.
    profiles : list
        Per order, a :class:`~tso_steps.trace.pixel_profile.PixelProfiles` (that model moves
        the order's pixels) or None (band-limited interpolation).
    """

    def __init__(self, reference, variance, rows, cols, centre, order, profiles):
        self.n_cross = reference.shape[0]
        self.rows, self.cols = rows, cols
        self.values = reference[rows, cols].astype(np.float64)
        self.parts = []
        fourier = np.ones(rows.size, dtype=bool)
        for k, profile in enumerate(profiles or []):
            if profile is not None:
                sel = np.flatnonzero(order == k)
                fourier[sel] = False
                self.parts.append((sel, _PixelTable(profile, rows[sel] - centre[sel], cols[sel])))
        self.fourier = np.flatnonzero(fourier)
        if self.fourier.size:
            spectrum, freq = _padded_spectrum(reference, variance)
            self.table = _FourierTable(
                spectrum, freq, rows[self.fourier], cols[self.fourier], self.n_cross
            )

    def __call__(self, dy):
        """Moved frame and its y-derivative at the traced pixels, shape ``(dy.size, npix)``."""
        dy = np.atleast_1d(np.asarray(dy, dtype=np.float64))
        model = np.empty((dy.size, self.rows.size))
        slope = np.empty_like(model)
        if self.fourier.size == self.rows.size:  # every pixel band-limited: no copy
            self.table(dy, model, slope)
        elif self.fourier.size:
            value, part_slope = np.empty((2, dy.size, self.fourier.size))
            self.table(dy, value, part_slope)
            model[:, self.fourier] = value
            slope[:, self.fourier] = part_slope
        for sel, table in self.parts:
            value, part_slope = table(dy)
            model[:, sel] = self.values[sel] + value - table.base
            slope[:, sel] = part_slope
        return model, slope
