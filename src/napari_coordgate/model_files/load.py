"""load_model: a model from any file this package writes, its own ``.safetensors`` or a BioImage.IO package."""

from __future__ import annotations

import os

import torch

from ..models.unet import UNet
from .bioimageio_package import load_bioimageio_package
from .safetensors_file import load_safetensors_model

__all__ = ["load_model"]


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """Load a model saved by :func:`~.safetensors_file.save_model`, or a BioImage.IO package (``.zip``)
    written by :func:`napari_coordgate.export.export_bioimageio`.

    The file is parsed with safetensors and JSON (or, for a package, YAML's
    safe loader and PyTorch's weights-only loader) only: nothing else is
    unpickled. The returned model is in eval mode and carries
    ``model.metadata`` (the metadata it was saved with) and ``model.percentiles``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is corrupt, truncated or not a napari-coordgate model; its
        header breaks the schema (:mod:`.header`); a weight is NaN or
        infinite; or ``device`` is not available.
    """
    if str(path).lower().endswith(".zip"):
        return load_bioimageio_package(path, device)
    return load_safetensors_model(path, device)
