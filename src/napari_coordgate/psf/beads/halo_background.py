"""The background of a bead slide under the beads' own light.

Bead detection estimates the background as the median of tiles of the image
(:func:`.detection.estimate_background`). Where the PSFs have wide,
faint tails (a strongly aberrated lens; the depth-induced spherical
aberration of beads deep in a mismatched medium) the tails of all beads add
up to a veil over the whole slide, and the tile medians count it as
background: 2-5 % of the background level in the median (up to 11 % locally)
on the psfmodels test slides of docs/benchmarks.md (section 11), whose true
background is flat. A bead fit on that background sees tails that are too
faint, and the calibrated PSFs lack part of their halo.

A fitted pupil model knows its tails beyond the fitted window, so the light
of every fitted bead can be rendered over a wide window and removed before
the tiles' medians are taken again: :func:`background_under_beads`.
"""

from __future__ import annotations

import numpy as np
import torch

from ...cancellation import check_cancelled
from .detection import estimate_background
from ..field_models.polynomials import field_uv
from ..field_models.pupil_field import PupilFieldModel

__all__ = ["modelled_light", "background_under_beads"]

#: Beads rendered per batch (bounds the memory of the wide windows' field components).
_CHUNK = 32


def modelled_light(model: PupilFieldModel, shape: tuple[int, int], positions: np.ndarray, fluxes: np.ndarray,
                   window: int) -> np.ndarray:
    """The image the fitted beads make: each bead's PSF over a ``window x window`` box, times its flux.

    Parameters
    ----------
    model : PupilFieldModel
        The fitted field model (its PSFs are fractions of their whole energy, so
        the box holds the light that falls in it).
    shape : (H, W)
        The image's shape.
    positions : (n, 2) ndarray
        Bead ``(y, x)`` (sub-pixel; a bead may lie just outside the image).
    fluxes : (n,) ndarray
        Each bead's total light.
    window : int
        Odd side of each bead's box.

    Returns
    -------
    (H, W) ndarray of float64
    """
    H, W = shape
    half = window // 2
    wide = model.with_window(window)
    canvas = np.zeros((H + 2 * window, W + 2 * window))
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    fluxes = np.asarray(fluxes, dtype=float).reshape(-1)
    anchors = np.round(positions).astype(int)
    for start in range(0, len(positions), _CHUNK):
        check_cancelled()
        part = slice(start, start + _CHUNK)
        uv = torch.as_tensor(field_uv(positions[part], shape))
        shift = torch.as_tensor(positions[part] - anchors[part])
        with torch.no_grad():
            kernels = wide.kernels(uv, shift).numpy()
        for (iy, ix), flux, kernel in zip(anchors[part], fluxes[part], kernels):
            y0, x0 = iy + window - half, ix + window - half
            if 0 <= y0 <= H + window and 0 <= x0 <= W + window:  # the box lies on the padded canvas
                canvas[y0 : y0 + window, x0 : x0 + window] += flux * kernel
    return canvas[window : window + H, window : window + W]


def background_under_beads(data: np.ndarray, model: PupilFieldModel, positions: np.ndarray, fluxes: np.ndarray,
                           window: int) -> np.ndarray:
    """The tile-median background of ``data`` once the fitted beads' light (over ``window``) is removed."""
    light = modelled_light(model, data.shape, positions, fluxes, window)
    return estimate_background(np.asarray(data, dtype=float) - light)
