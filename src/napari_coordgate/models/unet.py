"""U-Net backbones: plain, CoordGate (CG U-Net) and CoordConv (paper Sec. IV-B).

A model of depth ``d`` has ``d`` resolution levels (``d - 1`` max-poolings).
Level ``l`` has ``base_channels * 2**l`` channels, and each level holds two 3x3
convolutions with ReLU on the way down and two on the way up. Going up, the
coarser features are up-sampled bilinearly and concatenated with the skip
connection. A 1x1 convolution makes the single output channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..normalization import DEFAULT_PERCENTILES
from .blocks import CoordConvBlock, GatedBlock, PlainBlock
from .coord_grid import as_offsets
from .coordgate import CoordGate
from ..validation import int_pair, integer

__all__ = ["UNet", "CGUNet", "CoordConvUNet", "MODEL_CLASSES", "GATE_CACHE_BYTES"]

#: Memory for cached gate maps, per model (see :meth:`CGUNet.set_gate_cache`).
GATE_CACHE_BYTES = 256 * 2**20


class UNet(nn.Module):
    """The plain U-Net backbone (paper Fig. 4a), 2D, one channel in and out.

    Parameters
    ----------
    depth : int
        Number of resolution levels (>= 1).
    base_channels : int
        Channels at full resolution; doubled at every level.
    field_shape : (H, W), optional, keyword-only
        The calibrated field. Plain U-Nets do not use it, but it is stored so
        that inference can check that images fit. Keyword-only in every
        architecture, so that the three take their arguments alike.
    residual : bool
        If True (default) the network predicts a correction that is added to
        its input; if False it predicts the image directly.

    Notes
    -----
    ``forward(x, offset=None)`` takes ``(B, 1, H, W)`` images of any size: the
    input is reflect-padded at the bottom and right to a multiple of
    ``alignment = 2**(depth-1)`` and the output is cropped back. ``offset`` is
    the global field position of each image's top-left pixel: one ``(y, x)``
    pair, or one per sample as a ``(B, 2)`` tensor.
    """

    block_class: type[nn.Module] = PlainBlock
    arch = "UNet"
    #: Whether the architecture uses positions, and so needs ``field_shape``.
    requires_field = False

    def __init__(
        self,
        depth: int = 3,
        base_channels: int = 32,
        *,
        field_shape: Sequence[int] | None = None,
        residual: bool = True,
        **block_options,
    ) -> None:
        super().__init__()
        depth = integer("depth", depth, low=1, high=MAX_DEPTH)
        base_channels = integer("base_channels", base_channels, low=1, high=MAX_BASE_CHANNELS)
        if field_shape is None and self.requires_field:
            raise ValueError(f"{self.arch} needs the field_shape (H, W) it is calibrated for")
        if field_shape is not None:
            field_shape = int_pair("field_shape", field_shape, low=1)
        self.depth = int(depth)
        self.base_channels = int(base_channels)
        self.field_shape = field_shape
        self.residual = bool(residual)
        #: Input percentiles mapped to 0 and 1 by inference (see inference/normalization.py).
        self.percentiles: tuple[float, float] = DEFAULT_PERCENTILES
        #: Free-form metadata (filled by :func:`~napari_coordgate.load_model`).
        self.metadata: dict = {}
        self.block_options = dict(block_options)
        ch = [self.base_channels * 2**level for level in range(self.depth)]
        make = self.block_class
        self.down = nn.ModuleList()
        in_ch = 1
        for level in range(self.depth):
            self.down.append(make(in_ch, ch[level], field_shape, **block_options))
            in_ch = ch[level]
        self.up = nn.ModuleList(
            make(ch[level + 1] + ch[level], ch[level], field_shape, **block_options)
            for level in reversed(range(self.depth - 1))
        )
        self.head = nn.Conv2d(ch[0], 1, 1)

    # -- description -----------------------------------------------------------------
    @property
    def alignment(self) -> int:
        """Input sizes and tile offsets are aligned to this (``2**(depth-1)``)."""
        return 2 ** (self.depth - 1)

    @property
    def receptive_radius(self) -> int:
        """An upper bound, in pixels, on how far an output pixel sees."""
        r = sum(2 * 2**level for level in range(self.depth))  # encoder convs
        # pooling, bilinear up-sampling and decoder convs
        r += sum(2**level + 2 ** (level + 1) + 2 * 2**level for level in range(self.depth - 1))
        return r

    @property
    def config(self) -> dict:
        """Everything needed to rebuild this architecture (JSON-serialisable)."""
        return {
            "arch": self.arch,
            "depth": self.depth,
            "base_channels": self.base_channels,
            "field_shape": list(self.field_shape) if self.field_shape else None,
            "residual": self.residual,
            **self.block_options,
        }

    def gated_blocks(self) -> list[tuple[str, int, CoordGate]]:
        """The CoordGate blocks as ``(name, level, module)``, encoder then decoder."""
        named = [(f"down{lv}", lv, b) for lv, b in enumerate(self.down)]
        named += [(f"up{self.depth - 2 - i}", self.depth - 2 - i, b) for i, b in enumerate(self.up)]
        return [(n, lv, b) for n, lv, b in named if isinstance(b, CoordGate)]

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # -- forward -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, offset=None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, H, W) tensor, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        a = self.alignment
        pad_h, pad_w = (-h) % a, (-w) % a
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x_in = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        else:
            x_in = x
        offsets = as_offsets(offset, x.shape[0], x.device)
        y = self._features(x_in, offsets)
        # Under bf16 autocast the features are bf16: the residual sum and the output are float32.
        y = y[..., :h, :w].to(x.dtype)
        return x + y if self.residual else y

    def _features(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x, offsets, 2**level)
            skips.append(x)
        for i, block in enumerate(self.up):
            level = self.depth - 2 - i
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat((x, skips[level]), dim=1), offsets, 2**level)
        return self.head(x)


class CGUNet(UNet):
    """CG U-Net: the U-Net with a CoordGate on every level block (paper Sec. IV-B).

    Each down- and up-sampling point's double convolution is the block ``h`` of a
    :class:`~napari_coordgate.CoordGate`; its gate comes from an MLP of the
    field coordinates at that level's resolution.

    Parameters
    ----------
    depth, base_channels, residual
        As for :class:`UNet`.
    field_shape : (H, W), keyword-only
        The calibrated field (required).
    gate_hidden : int
        Width of the gate MLPs' hidden layers.
    gate_layers : int
        Number of hidden layers of each gate MLP.
    gate_stride : int
        Spacing, in field pixels, of the lattice the gate MLPs are evaluated
        on; gates in between are interpolated linearly. ``1`` (default)
        evaluates them at every pixel of every level, as in the paper; 16
        deblurs a 2048 x 2048 frame 1.4-1.6x faster and trains about 10 %
        faster on the CPU (docs/benchmarks.md, section 14).
    """

    block_class = GatedBlock
    arch = "CGUNet"
    requires_field = True

    def __init__(self, depth: int = 3, base_channels: int = 32, *, gate_hidden: int = 32, gate_layers: int = 2,
                 gate_stride: int = 1, **options) -> None:
        # options: field_shape (required) and residual, keyword-only as for UNet
        gate_stride = integer("gate_stride", gate_stride, low=1, high=MAX_GATE_STRIDE)
        # the stride is part of the configuration only when it is not the paper's per-pixel gate,
        # so that files of per-pixel models stay readable by versions from before the lattice
        lattice = {"gate_stride": gate_stride} if gate_stride != 1 else {}
        super().__init__(depth, base_channels, gate_hidden=int(gate_hidden), gate_layers=int(gate_layers),
                         **lattice, **options)
        self.set_gate_cache(GATE_CACHE_BYTES)

    def set_gate_cache(self, total_bytes: int) -> None:
        """Share a memory budget for cached gate maps among the gated blocks.

        Inference caches each block's gate maps per tile position (they depend
        on the position only), which makes every plane of a stack after the
        first cheaper. The budget is for the whole model: per block, it would
        multiply by the number of blocks (5 for depth 3).
        """
        blocks = [b for _, _, b in self.gated_blocks()]
        for block in blocks:
            block.cache_bytes = int(total_bytes) // len(blocks)
            block.clear_cache()


class CoordConvUNet(UNet):
    """CoordConv-UNet baseline: coordinates concatenated to every level's input.

    Parameters are as for :class:`UNet`; ``field_shape`` is required.
    """

    block_class = CoordConvBlock
    arch = "CoordConvUNet"
    requires_field = True


#: Deepest U-Net built: eight levels already see over 1000 px and hold 128x the base channels.
MAX_DEPTH = 8
#: Widest first level.
MAX_BASE_CHANNELS = 256
#: Widest gate lattice spacing (field pixels).
MAX_GATE_STRIDE = 1024

MODEL_CLASSES: dict[str, type[UNet]] = {cls.arch: cls for cls in (UNet, CGUNet, CoordConvUNet)}


def build_model(config: dict) -> UNet:
    """Rebuild a model from its :attr:`UNet.config`."""
    config = dict(config)
    arch = config.pop("arch", None)
    if arch not in MODEL_CLASSES:
        raise ValueError(f"unknown model architecture {arch!r}; known: {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[arch](**config)
