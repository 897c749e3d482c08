"""MIRI's row clocking: reset overhead, reference columns, burst-mode skips.

See :mod:`tso_steps.readout` for the read pattern and its sources.
"""

from __future__ import annotations

import numpy as np

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
