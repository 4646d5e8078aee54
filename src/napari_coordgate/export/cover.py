"""The cover image of a BioImage.IO package: before | after | gate map.

Drawn with NumPy and scikit-image only (no matplotlib), as an RGB PNG of
width-to-height ratio 2:1, the ratio the BioImage.IO website recommends.
"""

from __future__ import annotations

import os

import numpy as np
from skimage.transform import resize

from ..gate_map import gate_maps
from ..image_strip import colour
from ..models.unet import UNet

__all__ = ["cover_image", "write_cover", "strongest_gate"]

#: Side of each of the three panels, in pixels (the PNG stays well below 500 KB).
PANEL = 256
_GAP = 8
_BACKGROUND = (24, 24, 24)


def _fit(image: np.ndarray, side: int = PANEL) -> np.ndarray:
    """Resize a 2D image so its longer side is ``side`` (anti-aliased), keeping its aspect."""
    h, w = image.shape
    f = side / max(h, w)
    shape = (max(1, round(h * f)), max(1, round(w * f)))
    return resize(image.astype(np.float32), shape, order=1, anti_aliasing=f < 1, preserve_range=True)


def _grey(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """(h, w) to (h, w, 3) uint8, with ``low`` and ``high`` mapped to black and white."""
    return colour((image - low) / (high - low if high > low else 1.0), "gray")


def _diverging(image: np.ndarray) -> np.ndarray:
    """(h, w) to (h, w, 3) uint8: blue below the median, white at it, red above."""
    centre = float(np.median(image))
    spread = float(np.max(np.abs(image - centre)))
    return colour(0.5 + 0.5 * (image - centre) / (spread if spread > 0 else 1.0), "blue-red")


def strongest_gate(model: UNet) -> tuple[str, int, np.ndarray] | None:
    """The full-resolution gate map that varies most over the field.

    Returns
    -------
    (block, channel, (H, W) array) or None
        The block ``"down0"``'s gate channel with the largest standard
        deviation over the field; None for a model without CoordGate blocks.
    """
    names = [name for name, level, _ in model.gated_blocks() if level == 0]
    if not names:
        return None
    maps = gate_maps(model, names[0])
    channel = int(np.argmax(maps.reshape(len(maps), -1).std(axis=1)))
    return names[0], channel, maps[channel]


def cover_image(model: UNet, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The cover as an ``(h, 2 * h, 3)`` uint8 array.

    Parameters
    ----------
    model : UNet
        The model (for the gate map; on any device).
    before, after : (H, W) arrays
        The test input and the model's output, shown with the same grey scale
        (the input's 1st and 99.8th percentiles).

    Notes
    -----
    The third panel is the gate map of :func:`strongest_gate` in a diverging
    colour map (white at its median). A model without gates (a plain U-Net or
    CoordConv U-Net) shows ``after - before`` there instead.
    """
    low, high = (float(v) for v in np.percentile(before, (1.0, 99.8)))
    panels = [_grey(_fit(before), low, high), _grey(_fit(after), low, high)]
    gate = strongest_gate(model)
    third = gate[2] if gate is not None else np.asarray(after, np.float32) - np.asarray(before, np.float32)
    panels.append(_diverging(_fit(third)))
    ph = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + _GAP * (len(panels) + 1)
    height = max(ph + 2 * _GAP, -(-width // 2))
    canvas = np.empty((height, 2 * height, 3), np.uint8)
    canvas[...] = _BACKGROUND
    x = (2 * height - width) // 2 + _GAP
    for p in panels:
        y = (height - p.shape[0]) // 2
        canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + _GAP
    return canvas


def write_cover(path: str | os.PathLike, model: UNet, before: np.ndarray, after: np.ndarray) -> None:
    """Write :func:`cover_image` as a PNG file."""
    import imageio.v3 as iio

    iio.imwrite(os.fspath(path), cover_image(model, before, after), extension=".png")
