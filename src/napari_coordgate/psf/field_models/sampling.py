"""Sampling a fitted PSF field model on the grid of a :class:`.PSFField`, and summarising its aberrations."""

from __future__ import annotations

import numpy as np
import torch

from ..centroid import centre_on_centroid
from ..field_grid import node_coordinates
from .polynomials import field_uv
from .pupil_field import ABERRATIONS, PupilFieldModel

__all__ = ["default_grid", "sample_field", "aberration_summary"]


def default_grid(shape) -> tuple[int, int]:
    """Cells of about 32 px, 4 to 16 along each side."""
    return tuple(int(np.clip(round(n / 32), 4, 16)) for n in shape)


def sample_field(model, shape, grid_shape, k: int, *, largest: int | None = None) -> np.ndarray:
    """Model PSFs at the grid nodes, clipped and centred on their centroids: ``(gy, gx, k', k')``.

    An empirical model gives its fitted ``k x k`` kernels. A pupil model
    knows its PSFs beyond the fitted window, so its kernels grow (up to
    ``largest``) until the widest holds 98 % of its energy: the tails of
    aberrated corner PSFs are then in the field, and centring on the
    centroid of the kernel is centring on the centroid of the PSF.
    """
    ys, xs = node_coordinates(shape[0], grid_shape[0]), node_coordinates(shape[1], grid_shape[1])
    nodes = torch.as_tensor(field_uv(np.array([(y, x) for y in ys for x in xs]), shape))
    zero = torch.zeros(len(nodes), 2, dtype=torch.float64)
    if isinstance(model, PupilFieldModel) and largest is not None and largest > k:
        wide = model.with_window(largest)
        with torch.no_grad():
            kernels = wide.kernels(nodes, zero).numpy()
        centre = largest // 2
        # Each pupil kernel is a fraction of its PSF's whole energy: grow the box until all hold 98 %.
        enclosed = np.array([kernels[:, centre - h : centre + h + 1, centre - h : centre + h + 1].sum(axis=(1, 2)).min()
                             for h in range(centre + 1)])
        half = max(int(np.argmax(enclosed >= 0.98)) if enclosed[-1] >= 0.98 else centre, k // 2)
        k = 2 * half + 1
    else:
        with torch.no_grad():
            kernels = model.kernels(nodes, zero).numpy()
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
