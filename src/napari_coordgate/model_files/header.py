"""The schema of a model file's header, checked before any model is built.

A model file's JSON header (see :mod:`.safetensors_file`) says which network to
build. It comes from a file the user picked, so every field is checked here
for its type and range, unknown fields are refused, and the model it
describes must stay below :data:`MAX_PARAMETERS` (counted on torch's
``meta`` device, which allocates nothing) before a single weight is read.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.unet import MAX_BASE_CHANNELS, MAX_DEPTH, MAX_GATE_STRIDE, MODEL_CLASSES, build_model
from ..normalization import DEFAULT_PERCENTILES
from ..validation import check_percentiles, integer

__all__ = ["check_header", "format_version", "MAX_PARAMETERS", "FORMAT_VERSION"]

#: Version of the header's layout; a file of a newer version is refused with a message to update.
#: 2: a CGUNet with gates on a lattice (``gate_stride``). Every other model is still written as
#: version 1, which versions from before the lattice read.
FORMAT_VERSION = 2

#: Largest model a file may describe (200 MB of float32 weights).
MAX_PARAMETERS = 50_000_000
#: Largest field side a model may be calibrated for.
_MAX_FIELD_SIDE = 1 << 16

# Fields of ``config`` after ``arch``: name -> (kind, low, high); kind "int", "bool" or "field".
_COMMON = {"depth": ("int", 1, MAX_DEPTH), "base_channels": ("int", 1, MAX_BASE_CHANNELS),
           "field_shape": ("field", 1, _MAX_FIELD_SIDE), "residual": ("bool", None, None)}
_FIELDS = {
    "UNet": _COMMON,
    "CoordConvUNet": _COMMON,
    "CGUNet": {**_COMMON, "gate_hidden": ("int", 1, 1024), "gate_layers": ("int", 1, 8),
               "gate_stride": ("int", 1, MAX_GATE_STRIDE)},
}
assert set(_FIELDS) == set(MODEL_CLASSES)


def format_version(config: dict) -> int:
    """The oldest header version that describes ``config`` (what a file of this model is written as)."""
    return 2 if "gate_stride" in config else 1


def check_header(info, path: str | Path) -> dict:
    """Check a model header against the schema; return it with defaults filled in.

    Parameters
    ----------
    info : object
        The parsed JSON header.
    path : str or Path
        The file, named in every message.

    Returns
    -------
    dict
        ``format_version``, ``config``, ``normalization`` (``percentiles``) and ``metadata``.

    Raises
    ------
    ValueError
        A field missing, of the wrong type or out of range, an unknown
        field, a format newer than this package reads, or too large a model.
    """
    def fail(problem: str):
        raise ValueError(f"{path}: {problem}; the file is damaged or was not written by napari-coordgate")

    if not isinstance(info, dict):
        fail("the header is not a JSON object")
    try:
        version = integer("format_version", info.get("format_version", 0), low=0)
    except (TypeError, ValueError) as err:
        fail(str(err))
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer napari-coordgate (format {version}; this one reads up to "
                         f"{FORMAT_VERSION}): update napari-coordgate")
    config = info.get("config")
    if not isinstance(config, dict):
        fail("the header has no model configuration ('config')")
    arch = config.get("arch")
    if arch not in _FIELDS:
        fail(f"unknown model architecture {arch!r} (known: {', '.join(sorted(_FIELDS))})")
    fields = _FIELDS[arch]
    unknown = sorted(set(config) - set(fields) - {"arch"})
    if unknown:
        fail(f"unknown {arch} settings {unknown}")
    checked = {"arch": arch}
    for name, (kind, low, high) in fields.items():
        if name not in config:
            if name in ("depth", "base_channels") or (name == "field_shape" and MODEL_CLASSES[arch].requires_field):
                fail(f"the {arch} setting {name!r} is missing")
            continue
        value = config[name]
        try:
            if kind == "int":
                checked[name] = _strict_int(name, value, low, high)
            elif kind == "bool":
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be true or false, got {value!r}")
                checked[name] = value
            elif value is None and not MODEL_CLASSES[arch].requires_field:
                checked[name] = None
            else:
                if not isinstance(value, list) or len(value) != 2:
                    raise TypeError(f"field_shape must be [height, width], got {value!r}")
                checked[name] = [_strict_int(f"field_shape {axis}", v, low, high) for axis, v in zip("yx", value)]
        except (TypeError, ValueError) as err:
            fail(str(err))
    with torch.device("meta"):
        n_parameters = sum(p.numel() for p in build_model(checked).parameters())
    if n_parameters > MAX_PARAMETERS:
        fail(f"it describes a {arch} of {n_parameters / 1e6:.0f} million parameters, more than the "
             f"{MAX_PARAMETERS / 1e6:.0f} million this package builds")
    normalization = info.get("normalization", {})
    if not isinstance(normalization, dict):
        fail("'normalization' is not a JSON object")
    try:
        percentiles = check_percentiles(normalization.get("percentiles", DEFAULT_PERCENTILES), "normalisation percentiles")
    except (TypeError, ValueError) as err:
        fail(str(err))
    metadata = info.get("metadata", {})
    if not isinstance(metadata, dict):
        fail("'metadata' is not a JSON object")
    return {"format_version": version, "config": checked, "normalization": {"percentiles": list(percentiles)},
            "metadata": metadata}


def _strict_int(name: str, value, low: int, high: int) -> int:
    # JSON gives ints, floats, strings, booleans: only a whole number (not a bool, not "3") is a size.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    return integer(name, value, low=low, high=high)
