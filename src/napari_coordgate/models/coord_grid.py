"""Normalised field coordinates for whole images, crops and U-Net levels.

Every pixel of the calibrated field (the sensor area a model is trained for,
of shape ``field_shape``) has a fixed coordinate in ``[-1, 1]``, sampled at
pixel centres. A crop or tile carries its global ``offset`` (the field pixel of
its top-left corner), so a pixel gets the same coordinate whether the image is
processed whole or in pieces. A U-Net level ``l`` works on pixels that are
``2**l`` field pixels wide; its grid holds the coordinates of those coarse
pixels' centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

OffsetLike = "tuple[int, int] | Sequence[tuple[int, int]] | torch.Tensor | None"


def as_offsets(offset, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Return per-sample offsets as a ``(batch, 2)`` float tensor of (y, x).

    Parameters
    ----------
    offset : None, (2,) sequence, (B, 2) sequence or tensor
        Global field position of the top-left pixel of each sample. ``None``
        means ``(0, 0)``. A single pair is shared by the whole batch.
    batch : int
        Batch size.
    device : torch.device, optional
        Device of the returned tensor.
    """
    if offset is None:
        return torch.zeros(batch, 2, device=device)
    off = torch.as_tensor(offset, dtype=torch.float32, device=device)
    if off.ndim == 1:
        if off.shape[0] != 2:
            raise ValueError(f"offset must be (y, x); got shape {tuple(off.shape)}")
        off = off.expand(batch, 2)
    if off.shape != (batch, 2):
        raise ValueError(f"offset must be (y, x) or one (y, x) per sample; got shape {tuple(off.shape)} for batch {batch}")
    return off


def coordinate_grid(
    field_shape: Sequence[int],
    shape: Sequence[int],
    offsets: torch.Tensor,
    scale: int = 1,
) -> torch.Tensor:
    """Normalised (y, x) coordinates of a grid of pixels inside the field.

    Parameters
    ----------
    field_shape : (H, W)
        Shape of the calibrated field in full-resolution pixels.
    shape : (h, w)
        Shape of the grid at this resolution.
    offsets : (B, 2) tensor
        Global full-resolution position of each sample's top-left pixel.
    scale : int
        Size of one grid pixel in full-resolution pixels (``2**level``).

    Returns
    -------
    (B, 2, h, w) tensor
        Channel 0 holds y and channel 1 holds x, each ``-1`` at the field's
        top/left edge and ``+1`` at its bottom/right edge; pixel centres lie
        strictly inside. Pixels beyond the field (padding) extrapolate
        linearly.
    """
    H, W = (float(s) for s in field_shape)
    h, w = int(shape[0]), int(shape[1])
    dev = offsets.device
    # centre of coarse pixel j, in full-resolution edge coordinates
    jy = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) * scale
    jx = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) * scale
    y = (offsets[:, 0:1] + jy[None, :]) * (2.0 / H) - 1.0  # (B, h)
    x = (offsets[:, 1:2] + jx[None, :]) * (2.0 / W) - 1.0  # (B, w)
    b = offsets.shape[0]
    return torch.stack(
        (y[:, :, None].expand(b, h, w), x[:, None, :].expand(b, h, w)), dim=1
    )


def lattice_interpolation(
    field_shape: Sequence[int],
    shape: Sequence[int],
    offsets: torch.Tensor,
    scale: int,
    stride: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A lattice of field points around a grid, and the grid's linear
    interpolation weights on it.

    The lattice points lie ``stride`` full-resolution pixels apart at the
    field positions ``(m * stride, n * stride)`` (edge coordinates, as the
    offsets), for every sample the few rows and columns that enclose its
    grid. Because the lattice is fixed to the field, a pixel's interpolated
    value depends on its field position only, not on the crop it is in.

    Parameters
    ----------
    field_shape, shape, offsets, scale
        As for :func:`coordinate_grid`.
    stride : int
        Lattice spacing in full-resolution pixels.

    Returns
    -------
    lattice : (B, 2, my, mx) tensor
        Normalised coordinates of the lattice points (as :func:`coordinate_grid`).
    to_rows : (B, h, my) tensor
        Weights of the lattice rows for each grid row (two non-zero per row, summing to 1).
    to_cols : (B, w, mx) tensor
        Weights of the lattice columns for each grid column.
    """
    H, W = (float(s) for s in field_shape)
    h, w = int(shape[0]), int(shape[1])
    dev = offsets.device

    def axis(n: int, offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centres = offset[:, None] + (torch.arange(n, device=dev, dtype=torch.float32) + 0.5) * scale  # (B, n)
        u = centres / stride  # position in lattice steps
        first = torch.floor(u[:, :1])  # (B, 1): the lattice line at or before the first centre
        count = int(math.ceil((n - 1) * scale / stride)) + 2  # enough lines for any phase
        lines = first + torch.arange(count, device=dev, dtype=torch.float32)  # (B, count)
        weights = (1.0 - (u[:, :, None] - lines[:, None, :]).abs()).clamp_(min=0.0)  # (B, n, count)
        return lines * stride, weights

    ys, to_rows = axis(h, offsets[:, 0])
    xs, to_cols = axis(w, offsets[:, 1])
    y = ys * (2.0 / H) - 1.0
    x = xs * (2.0 / W) - 1.0
    b, my, mx = offsets.shape[0], ys.shape[1], xs.shape[1]
    lattice = torch.stack((y[:, :, None].expand(b, my, mx), x[:, None, :].expand(b, my, mx)), dim=1)
    return lattice, to_rows, to_cols
