"""Sampling a fitted PSF field model on the grid of a :class:`.PSFField`, and summarising its aberrations."""

from __future__ import annotations

import numpy as np
import torch

from .centroid import centre_on_centroid
from .field_interp import node_coordinates
from .field_polynomials import field_uv
from .pupil_field import ABERRATIONS, PupilFieldModel

__all__ = ["default_grid", "sample_field", "aberration_summary"]


def default_grid(shape) -> tuple[int, int]:
    """Cells of about 32 px, 4 to 16 along each side."""
    return tuple(int(np.clip(round(n / 32), 4, 16)) for n in shape)


def sample_field(model, shape, grid_shape, k: int) -> np.ndarray:
    """Model PSFs at the grid nodes, cropped to ``k``, clipped and centred on their centroids."""
    ys, xs = node_coordinates(shape[0], grid_shape[0]), node_coordinates(shape[1], grid_shape[1])
    nodes = np.array([(y, x) for y in ys for x in xs])
    with torch.no_grad():
        kernels = model.kernels(torch.as_tensor(field_uv(nodes, shape)), torch.zeros(len(nodes), 2, dtype=torch.float64))
    kernels = kernels.numpy()
    pad = (kernels.shape[-1] - k) // 2
    cropped = kernels[:, pad : pad + k, pad : pad + k]
    psfs = np.array([centre_on_centroid(np.clip(p, 0, None) + 1e-12) for p in cropped])
    return psfs.reshape(grid_shape[0], grid_shape[1], k, k)


def aberration_summary(model: PupilFieldModel, shape) -> dict:
    """Aberrations in waves at the field centre and two opposite corners."""
    H, W = shape
    at = {"at_centre": ((H - 1) / 2, (W - 1) / 2), "at_corner_top_left": (0, 0), "at_corner_bottom_right": (H - 1, W - 1)}
    out = {}
    with torch.no_grad():
        for label, point in at.items():
            values = model.aberrations(torch.as_tensor(field_uv([point], shape)))[0].numpy()
            out[label] = {name: round(float(v), 4) for (name, _), v in zip(ABERRATIONS, values)}
    return out
