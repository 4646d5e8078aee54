"""model_from_state: the network a checked model header describes, with the weights a file holds."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ..device import resolve_device
from ..models.unet import UNet, build_model

__all__ = ["model_from_state"]


def model_from_state(info: dict, tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     device: str | torch.device = "cpu", *, damaged: str = "the file is damaged") -> UNet:
    """Build the model ``info`` describes and load ``tensors`` into it, strictly.

    Parameters
    ----------
    info : dict
        A header checked by :func:`.header.check_header` (``config``,
        ``normalization``, ``metadata``).
    tensors : mapping of str to torch.Tensor
        The weights, named as in the model's ``state_dict``.
    path : str or Path
        The file they came from: named in every message and kept as
        ``model.source_path``.
    device : str or torch.device
        Where to put the model.
    damaged : str
        What a non-finite weight means for this kind of file, for the message.

    Returns
    -------
    UNet
        In eval mode, with the file's ``percentiles`` and ``metadata``, and ``source_path``.

    Raises
    ------
    ValueError
        The model cannot be built, the weights do not match it, or a weight
        is NaN or infinite.
    """
    dev = resolve_device(device)
    try:
        model = build_model(info["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{path} describes a model that cannot be built: {err}") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ValueError(f"{path}: the weights do not match the described {info['config'].get('arch')}: "
                         f"{first}") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{path} holds non-finite weights (NaN or inf, in {name}): {damaged}")
    model.percentiles = tuple(float(p) for p in info["normalization"]["percentiles"])
    model.metadata = info["metadata"]
    model.source_path = str(path)
    return model.to(dev).eval()
