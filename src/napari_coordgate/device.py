"""Choosing and describing the compute device."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "describe_device", "available_devices"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"cpu"`` into a device.

    ``"auto"`` picks CUDA, then MPS, then the CPU. Asking for a device that is
    not present raises a ``ValueError`` that says what is available.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but no CUDA GPU is available (found: {', '.join(available_devices())})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"device {device!r} requested but MPS is not available (found: {', '.join(available_devices())})")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def available_devices() -> list[str]:
    """Device names that can be passed to :func:`resolve_device` on this machine."""
    names = ["auto", "cpu"]
    names += [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    names += ["mps"] if _mps_available() else []
    return names


def describe_device(device: str | torch.device) -> str:
    """A human-readable description, e.g. ``"cuda:0 (NVIDIA H200, 139.8 GiB)"``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    n = torch.get_num_threads()
    return f"cpu, {n} thread{'s' if n != 1 else ''}"
