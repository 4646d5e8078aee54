"""Building blocks of the U-Net backbone (paper Fig. 4a).

Every level block has the same call signature, ``block(x, offsets, scale)``,
so the U-Net can be assembled from plain, CoordGate or CoordConv blocks alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .coord_grid import coordinate_grid
from .coordgate import CoordGate, GateMLP

__all__ = ["DoubleConv", "PlainBlock", "GatedBlock", "CoordConvBlock"]


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions with ReLU: ``(B, in, h, w) -> (B, out, h, w)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class PlainBlock(nn.Module):
    """A :class:`DoubleConv` that ignores position (the plain U-Net)."""

    def __init__(self, in_channels: int, out_channels: int, field_shape=None, **_) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, scale: int) -> torch.Tensor:
        return self.conv(x)


class GatedBlock(CoordGate):
    """A :class:`DoubleConv` whose output channels are gated by a :class:`CoordGate`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        field_shape: Sequence[int],
        gate_hidden: int = 32,
        gate_layers: int = 2,
        gate_stride: int = 1,
        **_,
    ) -> None:
        super().__init__(
            DoubleConv(in_channels, out_channels),
            out_channels,
            field_shape,
            gate=GateMLP(out_channels, gate_hidden, gate_layers, stride=gate_stride),
        )


class CoordConvBlock(nn.Module):
    """A :class:`DoubleConv` with the (y, x) coordinate map concatenated to its
    input (CoordConv; the CoordConv-UNet baseline)."""

    def __init__(self, in_channels: int, out_channels: int, field_shape: Sequence[int], **_) -> None:
        super().__init__()
        self.field_shape = tuple(int(s) for s in field_shape)
        self.conv = DoubleConv(in_channels + 2, out_channels)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, scale: int) -> torch.Tensor:
        coords = coordinate_grid(self.field_shape, x.shape[-2:], offsets, scale).to(x.dtype)
        coords = coords.expand(x.shape[0], -1, -1, -1)
        return self.conv(torch.cat((x, coords), dim=1))
