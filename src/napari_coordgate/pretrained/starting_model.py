"""The model a training starts from: the shipped base, a new network, or a model file (the CLI and the
Fine-tune dock both choose here)."""

from __future__ import annotations

from collections.abc import Sequence

from ..model_files import load_model
from ..models.unet import UNet, build_model
from .base_models import base_model, find_base

__all__ = ["ARCHITECTURES", "START_FROM", "build_named_model", "starting_model"]

#: Short names of the architectures (the CLI's ``--arch``) and their classes' names.
ARCHITECTURES = {"cgunet": "CGUNet", "unet": "UNet", "coordconv": "CoordConvUNet"}
#: Where a training starts: "auto" (the shipped base when one has this architecture, else a new
#: model), "base" (the shipped base, or an error), "scratch" (a new model).
START_FROM = ("auto", "base", "scratch")


def build_named_model(arch: str, depth: int, base_channels: int, field_shape: Sequence[int]) -> UNet:
    """A new network; ``arch`` is ``cgunet``, ``unet`` or ``coordconv`` (or a class name)."""
    name = ARCHITECTURES.get(arch.lower(), arch)
    return build_model({"arch": name, "depth": int(depth), "base_channels": int(base_channels),
                        "field_shape": list(field_shape)})


def starting_model(start_from: str, arch: str, depth: int, base_channels: int, field_shape: Sequence[int],
                   gates: str = "base") -> tuple[UNet, str]:
    """The model a training starts from, and a few words saying which.

    Parameters
    ----------
    start_from : str
        One of :data:`START_FROM`, or the path of a model file (fine-tuned
        further; its architecture wins over ``arch``, ``depth`` and
        ``base_channels``, and its field must be ``field_shape``).
    arch, depth, base_channels
        The network wanted (see :func:`build_named_model`).
    field_shape : (H, W)
        The calibrated field.
    gates : str
        How a base's gates start (:func:`.base_models.base_model`).

    Raises
    ------
    ValueError
        ``"base"`` with no shipped base of that architecture, or a model file
        for another field.
    """
    name = ARCHITECTURES.get(arch.lower(), arch)
    if start_from not in START_FROM:
        model = load_model(start_from)
        if model.field_shape is not None and tuple(model.field_shape) != tuple(field_shape):
            raise ValueError(f"{start_from} is a model for a {tuple(model.field_shape)} field; this calibration's "
                             f"field is {tuple(field_shape)}")
        return model, f"the model in {start_from}"
    base = find_base(name, depth, base_channels) if start_from != "scratch" else None
    if start_from == "base" and base is None:
        raise ValueError(f"no shipped base model is a {name}({depth}) with {base_channels} channels; the base is a "
                         "CGUNet(3) with 16 channels: use those, or start from scratch")
    if base is not None:
        return base_model(field_shape, base, gates=gates), f"the shipped base model {base}"
    return build_named_model(arch, depth, base_channels, field_shape), "scratch"
