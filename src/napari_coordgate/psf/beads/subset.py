"""spread_subset: a subset of a slide's beads that covers the field evenly."""

from __future__ import annotations

import numpy as np

__all__ = ["spread_subset"]


def spread_subset(positions: np.ndarray, significance: np.ndarray, shape: tuple[int, int], n: int) -> np.ndarray:
    """At most ``n`` beads spread over the field, the most significant of each region first.

    The field is cut into about ``n`` cells (as many across as the field's
    aspect gives); every cell that holds beads gives its most significant
    one, then its second, and so on, until ``n`` are chosen. A sparse corner
    is therefore always represented, and a crowded centre does not take the
    subset over.

    Parameters
    ----------
    positions : (m, 2) ndarray
        ``(y, x)`` of each bead.
    significance : (m,) ndarray
        How well each bead is measured (flux over its standard error).
    shape : (H, W)
        The field.
    n : int
        Most beads to choose.

    Returns
    -------
    (m,) bool ndarray
        The chosen beads (all of them when ``m <= n``).
    """
    positions = np.asarray(positions, float).reshape(-1, 2)
    m = len(positions)
    chosen = np.zeros(m, bool)
    if m <= n:
        chosen[:] = True
        return chosen
    H, W = shape
    rows = max(1, int(round(np.sqrt(n * H / W))))
    cols = max(1, int(round(n / rows)))
    cy = np.clip((positions[:, 0] / H * rows).astype(int), 0, rows - 1)
    cx = np.clip((positions[:, 1] / W * cols).astype(int), 0, cols - 1)
    cell = cy * cols + cx
    order = np.lexsort((-np.asarray(significance, float), cell))  # by cell, the most significant first
    sorted_cells = cell[order]
    first_of_cell = np.r_[0, np.flatnonzero(np.diff(sorted_cells)) + 1]
    rank = np.arange(m) - np.repeat(first_of_cell, np.diff(np.r_[first_of_cell, m]))
    # Every cell's best, then every cell's second best...; within a rank, the most significant first.
    picked = order[np.lexsort((-np.asarray(significance, float)[order], rank))][:n]
    chosen[picked] = True
    return chosen
