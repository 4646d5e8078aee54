"""How the network computes on a device: bf16 autocast and channels_last where they pay.

On CUDA, and on CPUs with native bf16 instructions (AVX-512 BF16 or AMX),
convolutions run in bfloat16 under ``torch.autocast`` on channels-last
tensors: on this project's 2-core AVX-512 BF16 machine a 3x3 convolution
runs 3x faster than NCHW float32 (docs/benchmarks.md). Elsewhere float32
with channels_last. The loss, the residual addition and every output stay
float32 (the U-Net casts its output back; callers compute losses on
``.float()``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["ComputeMode", "compute_mode", "native_bf16", "PRECISIONS"]

#: Choices of ``precision``: ``"auto"`` (bf16 where native), ``"bf16"`` or ``"fp32"``.
PRECISIONS = ("auto", "bf16", "fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (so autocast to bf16 is faster, not emulated)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


@dataclass(frozen=True)
class ComputeMode:
    """The numeric format of a model's forward pass on one device.

    Attributes
    ----------
    device : torch.device
    bf16 : bool
        Autocast convolutions and matrix products to bfloat16.
    channels_last : bool
        Keep 4D tensors and weights in channels-last memory order.
    """

    device: torch.device
    bf16: bool
    channels_last: bool

    def autocast(self):
        """A context manager for the forward pass (a no-op in float32)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` to the device, in this memory order (weights stay float32)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device, float32, in this memory order."""
        x = x.to(self.device, dtype=torch.float32)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def describe(self) -> str:
        """E.g. ``"bf16 autocast, channels_last"``."""
        return ", ".join(["bf16 autocast" if self.bf16 else "fp32"] + (["channels_last"] if self.channels_last else []))


def compute_mode(device: torch.device, precision: str = "auto") -> ComputeMode:
    """The compute mode for ``device``.

    Parameters
    ----------
    device : torch.device
        A resolved device (:func:`~napari_coordgate.device.resolve_device`).
    precision : {"auto", "bf16", "fp32"}
        ``"auto"``: bf16 autocast where the device computes bf16 natively
        (CUDA with bf16, CPUs with AVX-512 BF16 or AMX), else float32.
        ``"bf16"`` forces it (slow where emulated), ``"fp32"`` turns it off.

    Raises
    ------
    ValueError
        An unknown ``precision``, or ``"bf16"`` on a device without bf16 autocast (MPS).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 autocast is not available on {device.type}; use precision='fp32' or 'auto'")
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    # channels_last helps oneDNN and cuDNN convolutions; MPS gains nothing from it.
    return ComputeMode(device, bf16=bf16, channels_last=device.type in ("cpu", "cuda"))
