"""Our own model files: weights in safetensors, everything else as JSON in its header.

One ``.safetensors`` file holds a model: the tensors, plus a JSON document under
the header key ``napari_coordgate`` with the architecture (:attr:`UNet.config`),
the intensity normalisation and free-form metadata (training summary, the PSF
field it was calibrated on, ...). Loading never unpickles anything, and saving
is atomic: a crash mid-save leaves any previous file intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..device import resolve_device
from ..files.atomic import atomic_write
from ..models.unet import UNet
from ..normalization import DEFAULT_PERCENTILES
from .header import check_header, format_version
from .state import model_from_state

__all__ = ["save_model", "load_safetensors_model", "read_model_info", "is_model_file", "HEADER_KEY"]

#: The safetensors metadata key that holds the model's JSON header.
HEADER_KEY = "napari_coordgate"


def save_model(model: UNet, path: str | os.PathLike, **metadata: Any) -> Path:
    """Save a model atomically to a ``.safetensors`` file.

    Parameters
    ----------
    model : UNet, CGUNet or CoordConvUNet
        The model to save (its weights are copied to the CPU).
    path : str or Path
        Destination file. An existing file is replaced only once the new one
        is completely written.
    **metadata
        JSON-serialisable extras stored with the model (e.g. training metrics,
        a PSF field summary).

    Returns
    -------
    Path
        The path written.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"save_model expects a napari_coordgate model, got {type(model).__name__}")
    header = {
        "format_version": format_version(model.config),
        "config": model.config,
        "normalization": {"percentiles": list(getattr(model, "percentiles", DEFAULT_PERCENTILES))},
        "metadata": metadata,
    }
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as err:
        raise TypeError(f"model metadata must be JSON-serialisable: {err}") from err
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={HEADER_KEY: text}))
    return path


def is_model_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file written by this package.

    Only the file's JSON header is read; the header is not checked against the
    schema (that is :func:`read_model_info`'s job), so a damaged model of ours
    still counts as ours and gets our error message when loaded.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or n > min(100 * 2**20, size - 8):
                return False
            raw = json.loads(fh.read(n))
        return isinstance(raw, dict) and HEADER_KEY in (raw.get("__metadata__") or {})
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False


def read_model_info(path: str | os.PathLike) -> dict:
    """Read a model file's JSON header (config, normalisation, metadata) without
    loading the weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or n > min(100 * 2**20, path.stat().st_size - 8):
                raise ValueError
            raw = json.loads(fh.read(n))
        text = raw.get("__metadata__", {}).get(HEADER_KEY)
        if text is None:
            raise LookupError
        info = json.loads(text)
    except LookupError:
        raise ValueError(f"{path} is a safetensors file but not a napari-coordgate model (no model description in it)") from None
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise ValueError(f"{path} is not a napari-coordgate model file (corrupt, truncated or another format)") from None
    return check_header(info, path)


def load_safetensors_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """Load a model saved by :func:`save_model`, parsed with safetensors and JSON only (see
    :func:`napari_coordgate.load_model`, which also reads BioImage.IO packages, for what it raises)."""
    resolve_device(device)
    info = read_model_info(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable napari-coordgate model file (corrupt or truncated): {err}") from None
    return model_from_state(info, tensors, path, device,
                            damaged="the training that wrote it diverged or the file is damaged; train the model again")
