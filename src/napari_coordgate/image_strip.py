"""Side-by-side image panels as a PNG, with NumPy and imageio only (no matplotlib).

Used where a figure must be written without the ``napari`` extra: the demo's
figure when matplotlib is missing, a BioImage.IO cover image. Each panel is
scaled to 8 bits with its own display range and coloured with a small built-in
colormap; panels are separated by a gap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["strip", "save_strip", "colour"]

# Anchors of the colormaps: grey for images, diverging ones (white in the middle) for gates and differences.
_COLORMAPS = {
    "gray": np.array([[0, 0, 0], [255, 255, 255]], float),
    "diverging": np.array([[142, 1, 82], [222, 119, 174], [247, 247, 247], [127, 188, 65], [39, 100, 25]], float),
    "blue-red": np.array([[40, 90, 200], [245, 245, 245], [200, 50, 40]], float),
}


def colour(values: np.ndarray, name: str) -> np.ndarray:
    """Map ``values`` in [0, 1] (clipped) to ``(..., 3)`` uint8 RGB with the colormap ``name``."""
    anchors = _COLORMAPS[name]
    position = np.clip(values, 0.0, 1.0) * (len(anchors) - 1)
    low = np.minimum(position.astype(int), len(anchors) - 2)
    frac = (position - low)[..., None]
    return (anchors[low] * (1 - frac) + anchors[low + 1] * frac + 0.5).astype(np.uint8)


def strip(panels: Sequence[np.ndarray], limits: Sequence[tuple[float, float] | None] | None = None,
          colormaps: Sequence[str] | None = None, *, height: int = 256, gap: int = 8) -> np.ndarray:
    """Lay 2D ``panels`` side by side as one RGB ``uint8`` image.

    Parameters
    ----------
    panels : sequence of (Y, X) arrays
        The images, each resized (nearest neighbour) to ``height`` rows.
    limits : sequence of (low, high) or None
        Display range of each panel (None: its 0.5 and 99.8 percentiles).
    colormaps : sequence of {"gray", "diverging"}
        Colormap of each panel (default grey).
    """
    limits = list(limits or [None] * len(panels))
    colormaps = list(colormaps or ["gray"] * len(panels))
    tiles = []
    for image, limit, cmap in zip(panels, limits, colormaps):
        image = np.asarray(image, np.float64)
        if image.ndim != 2:
            raise ValueError(f"each panel must be one 2D image, got shape {image.shape}")
        low, high = limit if limit is not None else np.percentile(image, (0.5, 99.8))
        if not high > low:
            high = low + 1.0
        rows = np.linspace(0, image.shape[0] - 1, height).round().astype(int)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        cols = np.linspace(0, image.shape[1] - 1, width).round().astype(int)
        tiles.append(colour((image[np.ix_(rows, cols)] - low) / (high - low), cmap))
    total = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    out = np.full((height, total, 3), 255, np.uint8)
    x = 0
    for tile in tiles:
        out[:, x : x + tile.shape[1]] = tile
        x += tile.shape[1] + gap
    return out


def save_strip(path: str | os.PathLike, panels, limits=None, colormaps=None, **kwargs) -> None:
    """Write :func:`strip` of ``panels`` as a PNG file."""
    import imageio.v3 as iio

    iio.imwrite(os.fspath(path), strip(panels, limits, colormaps, **kwargs), extension=".png")
