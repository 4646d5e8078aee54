"""The CoordGate module (Howard, Norreys & Döpp, paper Eq. 3).

A convolutional block ``h`` produces ``n_gates`` feature channels, each a
globally applied (shared-weight) filter. A gate ``g`` computed from the pixel
coordinates alone scales every channel at every position, so each pixel gets
its own mixture of the learned filters::

    y[i, a] = h(x)[i, a] * g(C[i])[a]

Once trained the gate depends only on coordinates, so in inference it is
computed once per (level, tile position) and cached: the run-time cost over a
plain convolution is one element-wise multiply.

In training the gate is recomputed at every step. The paper's MLP runs on every
pixel; :class:`GateMLP` can instead run on a lattice of field positions
``stride`` pixels apart and interpolate linearly between them (the gates are
smooth in position by construction), which makes the gates' share of a
training step small. The lattice is anchored to the field, not to the crop or
tile, so a pixel's gate is the same however the image is cut.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .coord_grid import coordinate_grid, lattice_interpolation

__all__ = ["CoordGate", "GateMLP", "DirectGate"]


class GateMLP(nn.Module):
    """Pixel-wise MLP from normalised coordinates to gate values.

    Implemented with 1x1 convolutions, so it maps a ``(B, 2, h, w)`` coordinate
    map to a ``(B, n_gates, h, w)`` gate map, each pixel independently.

    Parameters
    ----------
    n_gates : int
        Number of gated channels (the output width).
    hidden : int
        Width of each hidden layer.
    n_hidden : int
        Number of hidden layers (at least 1): a purely linear MLP could only
        make gates that are affine in position.
    stride : int
        Spacing, in full-resolution field pixels, of the lattice the MLP is
        evaluated on; the gate between lattice points is interpolated
        linearly. ``1`` evaluates the MLP at every pixel (the paper's form), as
        does any stride no larger than a level's pixel size.

    Notes
    -----
    The output is ``1 + MLP(C)`` with a small final layer, so an untrained gate
    is close to 1 everywhere and the network starts as its ungated backbone.
    """

    def __init__(self, n_gates: int, hidden: int = 32, n_hidden: int = 2, stride: int = 1) -> None:
        super().__init__()
        if n_hidden < 1:
            raise ValueError("the gate MLP needs at least one nonlinear hidden layer")
        if int(stride) < 1:
            raise ValueError(f"the gate lattice stride must be at least 1 pixel, got {stride}")
        self.stride = int(stride)
        layers: list[nn.Module] = []
        width = 2
        for _ in range(n_hidden):
            layers += [nn.Conv2d(width, hidden, 1), nn.SiLU()]
            width = hidden
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, n_gates, 1)
        nn.init.normal_(self.out.weight, std=0.05)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, field_shape: Sequence[int], shape: Sequence[int], offsets: torch.Tensor, scale: int
    ) -> torch.Tensor:
        """Gate map ``(B, n_gates, h, w)`` for a grid at ``offsets`` and ``scale``."""
        if self.stride <= scale:
            coords = coordinate_grid(field_shape, shape, offsets, scale).to(self.out.weight.dtype)
            return 1.0 + self.out(self.hidden(coords))
        lattice, to_rows, to_cols = lattice_interpolation(field_shape, shape, offsets, scale, self.stride)
        values = self.out(self.hidden(lattice.to(self.out.weight.dtype)))  # (B, n_gates, my, mx)
        # Separable linear interpolation, laid out channels-last like the features it scales
        # (an element-wise product of mismatched layouts is several times slower).
        b, c, my, mx = values.shape
        h, w = int(shape[0]), int(shape[1])
        values = values.permute(0, 2, 3, 1)  # (B, my, mx, C)
        values = to_cols[:, None].to(values.dtype) @ values  # (B, my, w, C)
        values = to_rows.to(values.dtype) @ values.reshape(b, my, w * c)  # (B, h, w * C)
        return 1.0 + values.view(b, h, w, c).permute(0, 3, 1, 2)


class DirectGate(nn.Module):
    """A directly trainable gate: one free value per channel and field pixel.

    The paper's appendix notes that with a complete kernel basis this makes
    CoordGate exactly as expressive as a locally connected layer. It has
    ``n_gates * H * W`` parameters and no smoothness prior, so it is meant for
    analysis and tests, not for deblurring models.
    """

    def __init__(self, n_gates: int, field_shape: Sequence[int]) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.ones(n_gates, *field_shape))

    def forward(
        self, field_shape: Sequence[int], shape: Sequence[int], offsets: torch.Tensor, scale: int
    ) -> torch.Tensor:
        if scale != 1:
            raise ValueError("DirectGate works only at full resolution (scale 1)")
        h, w = int(shape[0]), int(shape[1])
        maps = []
        for oy, ox in offsets.long().tolist():
            if oy < 0 or ox < 0 or oy + h > field_shape[0] or ox + w > field_shape[1]:
                raise ValueError(f"a {h}x{w} input at offset ({oy}, {ox}) leaves the field {tuple(field_shape)}")
            maps.append(self.values[:, oy : oy + h, ox : ox + w])
        return torch.stack(maps)


class CoordGate(nn.Module):
    """Gate a convolutional block's output channels with a coordinate map.

    Parameters
    ----------
    block : nn.Module
        The convolutional block ``h``; its output must have ``n_gates`` channels.
    n_gates : int
        Number of output channels of ``block``.
    field_shape : (H, W)
        The calibrated field, in full-resolution pixels.
    gate : nn.Module, optional
        Maps ``(field_shape, (h, w), offsets, scale)`` to a ``(B, n_gates, h, w)``
        gate. Default: :class:`GateMLP` with two hidden layers of 32.
    out_channels : int, optional
        If given, a 1x1 convolution after the gate maps to this many channels.
    cache_bytes : int
        Memory budget of the inference gate cache (least recently used maps are
        dropped first).

    Shapes
    ------
    ``forward(x: (B, C_in, h, w), offsets: (B, 2), scale) -> (B, n_gates or
    out_channels, h, w)``. ``offsets`` are the full-resolution field positions of
    each sample's top-left pixel, ``scale`` the pixel size of this U-Net level.
    """

    def __init__(
        self,
        block: nn.Module,
        n_gates: int,
        field_shape: Sequence[int],
        gate: nn.Module | None = None,
        out_channels: int | None = None,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        super().__init__()
        self.block = block
        self.n_gates = int(n_gates)
        self.field_shape = tuple(int(s) for s in field_shape)
        self.gate = gate if gate is not None else GateMLP(n_gates)
        self.project = nn.Conv2d(n_gates, out_channels, 1) if out_channels else None
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0

    def gate_map(self, shape: Sequence[int], offsets: torch.Tensor, scale: int = 1) -> torch.Tensor:
        """The gate ``g(C)`` for a grid, ``(B, n_gates, h, w)`` (or ``(1, ...)``
        when every sample sits at the same offset).

        Cached when the module is in eval mode and autograd is off; the cache key
        includes the gate parameters' version counters, so any update of the
        weights (an optimiser step, ``load_state_dict``) invalidates it.
        """
        if offsets.shape[0] > 1 and bool((offsets == offsets[:1]).all()):
            offsets = offsets[:1]
        use_cache = not self.training and not torch.is_grad_enabled() and self.cache_bytes > 0
        if not use_cache:
            return self.gate(self.field_shape, shape, offsets, scale)
        params = tuple(self.gate.parameters())
        key = (
            tuple(int(s) for s in shape),
            tuple(offsets.flatten().tolist()),
            int(scale),
            str(offsets.device),
            torch.is_autocast_enabled(offsets.device.type),
            tuple((p.data_ptr(), p._version, p.dtype) for p in params),
        )
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        g = self.gate(self.field_shape, shape, offsets, scale)
        nbytes = g.element_size() * g.nelement()
        if nbytes <= self.cache_bytes:
            while self._cache and self._cached_bytes + nbytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.element_size() * old.nelement()
            self._cache[key] = g
            self._cached_bytes += nbytes
        return g

    def clear_cache(self) -> None:
        """Drop all cached gate maps."""
        self._cache.clear()
        self._cached_bytes = 0

    def train(self, mode: bool = True) -> CoordGate:
        # Entering training frees the cache's memory; switching to eval keeps it warm
        # (the cache key holds the parameters' version counters, so it is never stale).
        if mode:
            self.clear_cache()
        return super().train(mode)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, scale: int = 1) -> torch.Tensor:
        features = self.block(x)
        g = self.gate_map(features.shape[-2:], offsets, scale)
        y = features * g.to(features.dtype)
        return self.project(y) if self.project is not None else y
