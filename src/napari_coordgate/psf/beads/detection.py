"""Finding beads in a bead-slide image: background, noise, multi-scale detection.

Beads may be sharp (a few pixels) or strongly defocused (rings tens of
pixels wide) in different parts of the same image, so detection looks at
several smoothing scales: a pixel is part of a bead when the background-
subtracted image smoothed at some scale rises ``threshold`` noise standard
deviations (of that smoothed image) above zero. Connected regions are beads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max

__all__ = ["BeadCandidates", "estimate_background", "detect_beads"]


@dataclass
class BeadCandidates:
    """Everything detection learns about each bead-like object.

    Attributes
    ----------
    centres : (n, 2) ndarray
        Sub-pixel ``(y, x)`` centroids.
    snr : (n,) ndarray
        Peak significance: the largest value, over the smoothing scales, of
        the smoothed background-subtracted image divided by its noise.
    diameters : (n,) ndarray
        Diameter of the disc with the area of the detected footprint, in px.
    peak_values : (n,) ndarray
        Largest raw pixel value in the footprint (for saturation checks).
    background : (H, W) ndarray
        Smooth background estimate.
    noise_sigma : float
        Standard deviation of the pixel noise.
    """

    centres: np.ndarray
    snr: np.ndarray
    diameters: np.ndarray
    peak_values: np.ndarray
    background: np.ndarray
    noise_sigma: float

    def __len__(self) -> int:
        return len(self.centres)


def estimate_background(image: np.ndarray, block: int | None = None) -> np.ndarray:
    """Smooth background: medians of ``block x block`` tiles, interpolated back to full size."""
    H, W = image.shape
    block = block or int(np.clip(min(H, W) // 8, 16, 128))
    ny, nx = max(1, H // block), max(1, W // block)
    ys = np.linspace(0, H, ny + 1).astype(int)
    xs = np.linspace(0, W, nx + 1).astype(int)
    tiles = np.array([[np.median(image[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]) for j in range(nx)] for i in range(ny)])
    if tiles.size == 1:
        return np.full(image.shape, tiles.item())
    return ndimage.zoom(tiles, (H / ny, W / nx), order=1, mode="nearest", grid_mode=True)


def _robust_std(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _separate_peaks(z: np.ndarray, peaks: np.ndarray, dip: float = 0.6) -> np.ndarray:
    """Keep only peaks that are separate objects: the map must dip between them.

    Peaks come from ``peak_local_max`` (strongest first). A weaker peak is a
    lobe of a stronger one (an astigmatic or comatic PSF has several) unless
    the map falls below ``dip`` times the weaker peak somewhere on the
    straight line between them.
    """
    kept: list[np.ndarray] = []
    for peak in peaks[np.argsort(-z[tuple(peaks.T)])]:
        separate = True
        for other in kept:
            steps = np.linspace(0.0, 1.0, max(8, int(2 * np.hypot(*(peak - other)))))
            line = other[None, :] + steps[:, None] * (peak - other)[None, :]
            profile = ndimage.map_coordinates(z, line.T, order=1)
            if profile.min() > dip * z[tuple(peak)]:
                separate = False
                break
        if separate:
            kept.append(peak)
    return np.array(kept)


def detect_beads(image: np.ndarray, *, bead_size_px: float = 1.0, threshold: float = 5.0) -> BeadCandidates:
    """Detect bead-like objects at several scales.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Bead-slide image.
    bead_size_px : float
        Bead diameter in pixels; sets the finest smoothing scale.
    threshold : float
        Detection threshold in noise standard deviations of the smoothed image.

    Returns
    -------
    BeadCandidates
    """
    background = estimate_background(image)
    residual = image - background
    # Neighbour differences cancel smooth structure; the median ignores the sparse beads.
    noise_sigma = _robust_std(np.diff(residual, axis=1)) / np.sqrt(2.0)
    finest = max(1.0, bead_size_px / 2)
    scales = [finest * 2**j for j in range(4) if finest * 2**j <= min(image.shape) / 8] or [finest]
    smoothed, z_maps = [], []
    for scale in scales:
        g = ndimage.gaussian_filter(residual, scale, mode="reflect")
        smoothed.append(g)
        z_maps.append(g / max(_robust_std(g), 1e-12))
    z_best = np.max(z_maps, axis=0)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(z_best > threshold, iterations=1))
    labels, n_objects = ndimage.label(mask)
    found = {k: [] for k in ("centres", "snr", "diameters", "peak_values")}
    positive = np.clip(smoothed[0], 0, None)
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        footprint = labels[region] == index
        area = int(footprint.sum())
        if area < 4:
            continue  # isolated noise pixels
        scale_scores = [z[region][footprint].max() for z in z_maps]
        best = int(np.argmax(scale_scores))
        # Touching beads make one footprint: split it at the peaks of the best-scale map
        # (smoothed at the scale that detects these beads best, so a ring is one peak).
        z = np.where(footprint, z_maps[best][region], 0.0)
        peaks = peak_local_max(z, min_distance=max(2, int(round(2 * scales[best]))), threshold_abs=threshold,
                               exclude_border=False)
        if len(peaks) == 0:
            peaks = np.array([np.unravel_index(np.argmax(z), z.shape)])
        peaks = _separate_peaks(z, peaks)
        offset = np.array([region[0].start, region[1].start])
        radius = np.sqrt(area / np.pi / len(peaks)) + 2 * scales[best]
        if len(peaks) > 1:
            gaps = np.linalg.norm(peaks[:, None] - peaks[None], axis=-1) + np.eye(len(peaks)) * 1e9
            radii = np.minimum(radius, 0.5 * gaps.min(axis=1))
        else:
            radii = np.array([radius])
        weights = positive[region] * footprint
        if weights.sum() <= 0:
            continue
        rows, cols = np.indices(footprint.shape)
        for peak, reach in zip(peaks, radii):
            near = weights * (np.hypot(rows - peak[0], cols - peak[1]) <= max(reach, 1.5))
            if near.sum() <= 0:
                continue
            centre = np.array([(near * rows).sum(), (near * cols).sum()]) / near.sum() + offset
            found["centres"].append(centre)
            found["snr"].append(float(z[tuple(peak)]) if len(peaks) > 1 else float(scale_scores[best]))
            found["diameters"].append(2.0 * np.sqrt(area / np.pi / len(peaks)))
            found["peak_values"].append(float((image[region] * (near > 0)).max()))
    return BeadCandidates(
        centres=np.array(found["centres"]).reshape(-1, 2),
        snr=np.array(found["snr"]),
        diameters=np.array(found["diameters"]),
        peak_values=np.array(found["peak_values"]),
        background=background,
        noise_sigma=noise_sigma,
    )
