"""The centring convention of every PSF in this package: the intensity centroid.

A PSF field is used to blur (training data) and, through the network, to
undo blur. If a kernel were centred on its peak, a comatic PSF (bright core,
long one-sided tail) would move an object's centre of mass by several
pixels, and a network trained on such data would shift the image back and
forth across the field. So every PSF here, simulated or measured, is stored
with its (background-free) intensity centroid at the kernel centre
``(k // 2, k // 2)``: blurring with it does not move an object's centre of
mass.

Measured kernels carry noise and a residual background. :func:`robust_centroid`
iterates a first moment over a window that follows the estimate, so far-off
noise and neighbours do not count. It keeps the faint pixels with their sign:
zero-mean noise averages out, whereas clipping or thresholding it would cut
a comatic tail and pull the centroid towards the bright core.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["robust_centroid", "centre_on_centroid", "centroid_offset"]


def centroid_offset(kernel: np.ndarray) -> np.ndarray:
    """Plain intensity centroid of ``kernel`` (negatives ignored), relative to ``(k // 2, k // 2)``.

    Parameters
    ----------
    kernel : (k, k) ndarray

    Returns
    -------
    (2,) ndarray
        ``(dy, dx)`` in pixels; zero for a kernel with no positive values.
    """
    weights = np.clip(np.asarray(kernel, dtype=np.float64), 0, None)
    total = weights.sum()
    if total <= 0:
        return np.zeros(2)
    rows, cols = np.indices(weights.shape)
    centre = (np.array(weights.shape) - 1) / 2
    return np.array([(weights * rows).sum() / total, (weights * cols).sum() / total]) - centre


def robust_centroid(
    patch: np.ndarray,
    *,
    noise_sigma: float | None = None,
    radius: float | None = None,
    iterations: int = 10,
) -> np.ndarray:
    """Background-subtracted intensity centroid by an iterated, windowed first moment.

    Parameters
    ----------
    patch : (h, w) ndarray
        A PSF or bead image whose background is already subtracted.
    noise_sigma : float, optional
        Pixel noise, used only to pick the starting point (the centre of
        mass of the pixels above twice it). By default estimated from the
        patch's outer ring (robust standard deviation).
    radius : float, optional
        Radius of the circular window around the current estimate (to keep
        neighbours out). By default the whole patch counts: a window cuts
        the tail of a comatic PSF and biases its centroid.
    iterations : int
        Largest number of re-centring steps (it stops when the estimate moves
        less than 0.001 px).

    Returns
    -------
    (2,) ndarray
        ``(y, x)`` of the centroid in patch pixel coordinates.
    """
    data = np.asarray(patch, dtype=np.float64)
    if noise_sigma is None:
        ring = np.ones(data.shape, bool)
        ring[2:-2, 2:-2] = False
        border = data[ring]
        noise_sigma = 1.4826 * float(np.median(np.abs(border - np.median(border))))
    bright = np.where(data > 2.0 * noise_sigma, data, 0.0)
    if bright.sum() <= 0:
        bright = np.clip(data, 0, None)
    if bright.sum() <= 0:
        return (np.array(data.shape) - 1) / 2
    radius = float(radius) if radius is not None else float(np.hypot(*data.shape))
    rows, cols = np.indices(data.shape)
    estimate = np.array(ndimage.center_of_mass(bright))
    for _ in range(iterations):
        inside = np.hypot(rows - estimate[0], cols - estimate[1]) <= radius
        w = data * inside
        if w.sum() <= 0:
            break
        new = np.array([(w * rows).sum(), (w * cols).sum()]) / w.sum()
        moved = np.hypot(*(new - estimate))
        estimate = new
        if moved < 1e-3:
            break
    return estimate


def centre_on_centroid(kernel: np.ndarray, *, passes: int = 3) -> np.ndarray:
    """Shift a kernel (cubic spline, sub-pixel) so its intensity centroid sits at ``(k // 2, k // 2)``.

    The shift is repeated a few times because the part of the kernel pushed
    over its border is lost; afterwards the centroid is within about
    0.01 px of the centre for any kernel that holds its PSF. Negative values
    produced by the spline are clipped and the sum is kept.

    Parameters
    ----------
    kernel : (k, k) ndarray
        A noise-free (model or cleaned) PSF.
    passes : int
        Number of shift-and-measure passes.

    Returns
    -------
    (k, k) ndarray of float64
    """
    out = np.clip(np.asarray(kernel, dtype=np.float64), 0, None)
    total = out.sum()
    if total <= 0:
        return out
    for _ in range(passes):
        offset = centroid_offset(out)
        if np.hypot(*offset) < 1e-3:
            break
        out = np.clip(ndimage.shift(out, -offset, order=3, mode="constant"), 0, None)
    return out * (total / out.sum()) if out.sum() > 0 else out
