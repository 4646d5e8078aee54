"""The base models shipped with the package, and how a fine-tune starts from one.

A base model is a CG U-Net trained on a wide family of simulated lenses
(:mod:`.lens_family`, trained by :mod:`.train_base`): its backbone already
deblurs, so fine-tuning it for one instrument needs far fewer steps than
training from scratch. The gate MLPs work on normalised field coordinates,
so the weights carry over to a field of any shape.

:data:`REGISTRY_FILE` (``base_models.json``, next to the weights) records for
each base its configuration, how it was trained and the SHA-256 of its file;
:func:`base_model_path` refuses a file that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..model_files import load_model
from ..models.coordgate import GateMLP
from ..models.unet import UNet, build_model
from ..validation import int_pair

__all__ = ["DEFAULT_BASE", "FINE_TUNE_LR", "GATE_STARTS", "REGISTRY_FILE", "SCRATCH_LR", "base_model", "base_model_path",
           "find_base", "registry"]

#: The registry of shipped base models.
REGISTRY_FILE = Path(__file__).with_name("base_models.json")
#: The base a fine-tune starts from by default.
DEFAULT_BASE = "cgunet3-w16"
#: How the gates of a base start a fine-tune: the base's own (learned over many
#: lenses), exactly 1 everywhere, or freshly initialised.
GATE_STARTS = ("base", "identity", "reinit")
#: Default learning rates: fine-tuning from a base, and training a new model. From the
#: base, 3e-3 beat 1e-3 by 0.10-0.14 dB after 60 s and by 0.00-0.09 dB after 3 min on three
#: independent lenses (docs/benchmarks.md, section 8); 1e-3 is the measured default from scratch.
FINE_TUNE_LR = 3e-3
SCRATCH_LR = 1e-3


def registry() -> dict:
    """The registry: ``{name: entry}``; empty if there is no registry file."""
    if not REGISTRY_FILE.is_file():
        return {}
    return json.loads(REGISTRY_FILE.read_text())


def find_base(arch: str, depth: int, base_channels: int) -> str | None:
    """The name of a shipped base with this architecture, or None."""
    for name, entry in sorted(registry().items()):
        if (entry["arch"], entry["depth"], entry["base_channels"]) == (arch, int(depth), int(base_channels)):
            return name
    return None


def base_model_path(name: str = DEFAULT_BASE) -> Path:
    """The file of a shipped base model, checked against its registry entry.

    Raises
    ------
    ValueError
        If ``name`` is not a shipped base, or its file is missing or does not
        match the recorded checksum (a damaged or replaced install).
    """
    entries = registry()
    if name not in entries:
        raise ValueError(f"no base model named {name!r}; shipped: {sorted(entries) or 'none'}")
    entry = entries[name]
    path = REGISTRY_FILE.with_name(entry["file"])
    if not path.is_file():
        raise ValueError(f"the base model file {path} is missing: reinstall napari-coordgate")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"the base model file {path} does not match its checksum: reinstall napari-coordgate")
    return path


def base_model(field_shape: Sequence[int], name: str = DEFAULT_BASE, *, gates: str = "base") -> UNet:
    """A shipped base model set up for a field, ready to fine-tune.

    Parameters
    ----------
    field_shape : (H, W)
        The field of the instrument to fine-tune for.
    name : str
        A base of :func:`registry`.
    gates : {"base", "identity", "reinit"}
        The gate MLPs start as the base learned them, as exactly 1 everywhere
        (the backbone alone; the last layer zeroed), or freshly initialised.

    Returns
    -------
    UNet
        In train-ready state on the CPU; ``metadata["base_model"]`` names the base.
    """
    field_shape = int_pair("field_shape", field_shape, low=1)
    if gates not in GATE_STARTS:
        raise ValueError(f"gates must be one of {GATE_STARTS}; got {gates!r}")
    base = load_model(base_model_path(name))
    model = build_model({**base.config, "field_shape": list(field_shape)})
    model.load_state_dict(base.state_dict())
    model.percentiles = base.percentiles
    model.metadata = {"base_model": name}
    for _, _, block in model.gated_blocks():
        if not isinstance(block.gate, GateMLP):
            continue
        if gates == "identity":
            with torch.no_grad():
                block.gate.out.weight.zero_()
                block.gate.out.bias.zero_()
        elif gates == "reinit":
            fresh = GateMLP(block.n_gates, block.gate.out.in_channels, len(block.gate.hidden) // 2)
            block.gate.load_state_dict(fresh.state_dict())
    return model
