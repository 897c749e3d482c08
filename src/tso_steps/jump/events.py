"""Flag the neighbourhood of large events (bright cosmic rays, snowballs, showers).

A bright cosmic ray spreads charge into its neighbours (inter-pixel capacitance, diffusion)
below the detection threshold, and snowballs and showers cover many pixels with a halo
fainter than their core. Two rules, both applied to the group where the event happened:

1. **Bright single hits.** A sample flagged at score ``z >= neighbor_threshold`` gets the
   pixels within radius ``r = min(max_radius, 1 + floor(log10(z / neighbor_threshold)))``
   flagged (radius 1 is the four adjacent pixels): one more pixel of radius per decade.
2. **Extended events.** In each integration and group, flagged samples and pixels that
   saturate earlier than they usually do (a saturated event core, whose own group the
   detector cannot test) are grouped into 8-connected clusters. A cluster of at least
   ``min_event_area`` pixels, or one with a saturated core, is dilated by
   ``max(1, ceil((expand_factor - 1) * sqrt(area / pi)))`` pixels (at most ``max_radius``),
   i.e. a round event of radius rho is flagged out to ``expand_factor * rho``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tso_steps.inputs import GROUP_JUMP_DET as JUMP_DET

__all__ = ["disk_offsets", "expand_events"]


def disk_offsets(radius):
    """Integer ``(dy, dx)`` offsets within ``radius`` of the origin (origin excluded).

    Parameters
    ----------
    radius : int

    Returns
    -------
    ndarray of int, shape ``(n, 2)``
    """
    r = int(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = (dy**2 + dx**2 <= r * r) & ((dy != 0) | (dx != 0))
    return np.column_stack([dy[inside], dx[inside]])


def _set_flags(groupdq, ints, groups, ys, xs):
    """OR JUMP_DET into the listed samples (clipped to the array); return how many were new."""
    _, _, ny, nx = groupdq.shape
    inside = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
    index = (ints[inside], groups[inside], ys[inside], xs[inside])
    if not index[0].size:
        return 0
    linear = np.unique(np.ravel_multi_index(index, groupdq.shape))
    index = np.unravel_index(linear, groupdq.shape)
    new = int(np.count_nonzero((groupdq[index] & JUMP_DET) == 0))
    groupdq[index] |= JUMP_DET
    return new


def expand_events(
    groupdq,
    seeds,
    saturated_cores,
    neighbor_threshold=200.0,
    max_radius=30,
    min_event_area=5,
    expand_factor=2.0,
):
    """Flag neighbourhoods of large events in place (see the module docstring for the rules).

    Parameters
    ----------
    groupdq : ndarray of uint8, shape ``(nints, ngroups, ny, nx)``
        Modified in place (JUMP_DET OR-ed in).
    seeds : ndarray, shape ``(n, 5)``
        Flagged samples: integration, group, y, x, score (residual / scatter).
    saturated_cores : ndarray, shape ``(m, 4)``
        Early saturation onsets: integration, group, y, x.
    neighbor_threshold : float
        Score from which a single hit flags its neighbours.
    max_radius : int
        Largest radius (pixels) flagged around any event.
    min_event_area : int
        Smallest cluster (pixels) treated as an extended event.
    expand_factor : float
        Ratio of the flagged radius to the event's equivalent radius.

    Returns
    -------
    n_new : int
        Samples newly flagged.
    n_events : int
        Extended events found (rule 2).
    """
    nints, ngroups, ny, nx = groupdq.shape
    n_new = 0
    seeds = np.asarray(seeds, dtype=np.float64).reshape(-1, 5)
    cores = np.asarray(saturated_cores, dtype=np.float64).reshape(-1, 4)

    # rule 1: bright single hits
    bright = seeds[seeds[:, 4] >= neighbor_threshold]
    if len(bright):
        radius = 1 + np.floor(np.log10(bright[:, 4] / neighbor_threshold)).astype(int)
        radius = np.minimum(radius, max_radius)
        for r in np.unique(radius):
            rows = bright[radius == r].astype(np.int64)
            offsets = disk_offsets(r)
            ys = (rows[:, 2:3] + offsets[None, :, 0]).ravel()
            xs = (rows[:, 3:4] + offsets[None, :, 1]).ravel()
            ints = np.repeat(rows[:, 0], len(offsets))
            groups = np.repeat(rows[:, 1], len(offsets))
            n_new += _set_flags(groupdq, ints, groups, ys, xs)

    # rule 2: extended events
    points = np.concatenate([seeds[:, :4], cores], axis=0).astype(np.int64)
    is_core = np.r_[np.zeros(len(seeds), bool), np.ones(len(cores), bool)]
    if not len(points):
        return n_new, 0
    keys = points[:, 0] * ngroups + points[:, 1]
    order = np.argsort(keys, kind="stable")
    keys, points, is_core = keys[order], points[order], is_core[order]
    unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
    n_events = 0
    structure = np.ones((3, 3), bool)
    for key, start, count in zip(unique, first, counts, strict=True):
        core = is_core[start : start + count]
        if count < min_event_area and not core.any():
            continue
        pts = points[start : start + count]
        y0, x0 = pts[:, 2].min(), pts[:, 3].min()
        image = np.zeros((pts[:, 2].max() - y0 + 1, pts[:, 3].max() - x0 + 1), bool)
        image[pts[:, 2] - y0, pts[:, 3] - x0] = True
        labels, nlab = ndimage.label(image, structure=structure)
        core_labels = set(labels[pts[core, 2] - y0, pts[core, 3] - x0].tolist())
        areas = np.bincount(labels.ravel(), minlength=nlab + 1)
        boxes = ndimage.find_objects(labels)
        for label in range(1, nlab + 1):
            area = areas[label]
            if area < min_event_area and label not in core_labels:
                continue
            n_events += 1
            grow = int(np.ceil((expand_factor - 1.0) * np.sqrt(area / np.pi)))
            grow = int(min(max(1, grow), max_radius))
            box = boxes[label - 1]
            ly, lx = np.nonzero(labels[box] == label)
            ly, lx = ly + box[0].start, lx + box[1].start
            offsets = np.vstack([[0, 0], disk_offsets(grow)])
            ys = (ly[:, None] + y0 + offsets[None, :, 0]).ravel()
            xs = (lx[:, None] + x0 + offsets[None, :, 1]).ravel()
            n = len(ys)
            i, g = divmod(int(key), ngroups)
            n_new += _set_flags(groupdq, np.full(n, i), np.full(n, g), ys, xs)
    return n_new, n_events
