"""The grid of a PSF field: where its nodes sit, and the tent weights that interpolate between them.

A PSF field of shape ``(H, W)`` is described by PSFs at the centres of a
``gy x gx`` grid of equal cells. Along one axis of length ``L`` split into
``n`` cells, node ``i`` sits at the field coordinate ``(i + 0.5) * L / n - 0.5``
(pixel centres are integers). Between nodes the PSF is interpolated with
piecewise-linear "tent" weights; outside the outermost nodes it is held
constant. The weights of all nodes add up to one everywhere (a partition of
unity), which is what makes the spatially varying blur preserve flat images.
"""

from __future__ import annotations

import numpy as np

__all__ = ["node_coordinates", "tent_weights"]


def node_coordinates(length: int, n_cells: int) -> np.ndarray:
    """Field coordinates of the grid nodes along one axis.

    Parameters
    ----------
    length : int
        Length of the field along the axis, in pixels.
    n_cells : int
        Number of grid cells along the axis.

    Returns
    -------
    (n_cells,) ndarray
        Coordinate of each cell centre, in pixels.
    """
    return (np.arange(n_cells) + 0.5) * (length / n_cells) - 0.5


def tent_weights(coords: np.ndarray, length: int, n_cells: int) -> np.ndarray:
    """Piecewise-linear interpolation weights of each grid node at ``coords``.

    Parameters
    ----------
    coords : (m,) array_like
        Field coordinates along one axis (may lie outside the field).
    length : int
        Length of the field along the axis.
    n_cells : int
        Number of grid cells along the axis.

    Returns
    -------
    (n_cells, m) ndarray
        ``weights[i, j]`` is the weight of node ``i`` at ``coords[j]``; each
        column sums to one. Coordinates beyond the outermost nodes take the
        outermost node's PSF (constant extrapolation).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if n_cells == 1:
        return np.ones((1, coords.size))
    # Position in units of node spacing, node i at u = i.
    u = (coords + 0.5) * (n_cells / length) - 0.5
    u = np.clip(u, 0.0, n_cells - 1)
    return np.maximum(0.0, 1.0 - np.abs(u[None, :] - np.arange(n_cells)[:, None]))
