"""Grid nodes, interpolation weights and PSF measurements shared by the PSF code.

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

__all__ = ["node_coordinates", "tent_weights", "psf_fwhm", "unit_sum", "clean_psf_tails"]


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


def unit_sum(kernel: np.ndarray) -> np.ndarray:
    """Return ``kernel`` scaled to sum to one; raise for a kernel with no signal."""
    total = float(kernel.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError("a PSF must have a positive, finite sum")
    return kernel / total


def psf_fwhm(psf: np.ndarray, subsample: int = 5) -> float:
    """Width of a 2D PSF in pixels, as the FWHM of the Gaussian it is equivalent to.

    Measured as the diameter of the circle around the PSF's centroid that
    encloses half of its energy. For a Gaussian this equals the full width at
    half maximum; unlike a half-maximum threshold it stays meaningful for
    defocused PSFs (rings, discs with a bright central spot). Each pixel is
    treated as a uniform square split into ``subsample**2`` parts.

    Parameters
    ----------
    psf : (k, k) ndarray
        The PSF; negative values are ignored.
    subsample : int
        Sub-pixel sampling used to measure the enclosed energy.

    Returns
    -------
    float
        The width in pixels (NaN for a PSF with no positive values).
    """
    weights = np.clip(np.asarray(psf, dtype=np.float64), 0, None)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    rows, cols = np.indices(weights.shape)
    cy, cx = (weights * rows).sum() / total, (weights * cols).sum() / total
    fine = np.repeat(np.repeat(weights, subsample, axis=0), subsample, axis=1).ravel()
    sub_rows, sub_cols = ((np.arange(n * subsample) + 0.5) / subsample - 0.5 for n in weights.shape)
    fy, fx = np.meshgrid(sub_rows - cy, sub_cols - cx, indexing="ij")
    radius = np.hypot(fy, fx).ravel()
    order = np.argsort(radius)
    enclosed = np.cumsum(fine[order]) / fine.sum()
    return float(2.0 * np.interp(0.5, enclosed, radius[order]))


def clean_psf_tails(psfs: np.ndarray, noise_floor: float = 2.0) -> np.ndarray:
    """Remove leftover background and noise from measured PSFs.

    The median of the two outermost rings of each kernel (where a kernel of
    the right size is close to zero) is subtracted, and values below
    ``noise_floor`` times the noise measured there (robust standard
    deviation) are set to zero, which also clips negatives.

    Parameters
    ----------
    psfs : (..., k, k) ndarray
        Measured kernels.
    noise_floor : float
        Threshold in units of the border noise.

    Returns
    -------
    (..., k, k) ndarray
        Non-negative kernels (not renormalised). A kernel with nothing above
        the threshold is only clipped at zero.
    """
    ring = np.ones(psfs.shape[-2:], bool)
    ring[2:-2, 2:-2] = False
    border = psfs[..., ring]
    pedestal = np.median(border, axis=-1)
    noise = 1.4826 * np.median(np.abs(border - pedestal[..., None]), axis=-1)
    cleaned = psfs - pedestal[..., None, None]
    cleaned[cleaned < noise_floor * noise[..., None, None]] = 0.0
    # A kernel lost in its own noise keeps its clipped values rather than vanishing.
    empty = cleaned.sum(axis=(-2, -1)) <= 0
    cleaned[empty] = np.clip(psfs[empty], 0, None)
    return cleaned
