"""Reading a BioImage.IO package written by :func:`~napari_coordgate.export.export_bioimageio` back as a model.

:func:`load_bioimageio_package` (used by :func:`napari_coordgate.load_model`
for ``.zip`` paths) rebuilds the model from the package with :mod:`zipfile`,
PyYAML and ``torch.load(weights_only=True)``; it never unpickles anything
else and does not need bioimageio installed.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..models.unet import UNet
from ..normalization import DEFAULT_PERCENTILES
from ..device import resolve_device
from .header import FORMAT_VERSION, MAX_PARAMETERS, check_header
from .state import model_from_state

__all__ = ["load_bioimageio_package", "is_bioimageio_package", "is_exported_package", "WRAPPER_IMPORT",
           "INSTALL_EXTRA"]

#: Where a package's ``pytorch_state_dict`` architecture is imported from: what marks a package as ours.
WRAPPER_IMPORT = ("napari_coordgate.export.bioimageio_wrapper", "CoordGateBioImageIO")
#: How to install what reading and writing packages needs.
INSTALL_EXTRA = 'pip install "napari-coordgate[bioimageio]"'

# Largest weights file read back: MAX_PARAMETERS float32 values plus room for the pickle framing.
_MAX_WEIGHTS_BYTES = 4 * MAX_PARAMETERS + 2**24
_MAX_RDF_BYTES = 64 * 2**20
_SPEC_YAML_NAMES = ("rdf.yaml", "bioimageio.yaml")


def is_bioimageio_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip file with a BioImage.IO description (``rdf.yaml``) in it."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _find_rdf(zf.namelist()) is not None
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def is_exported_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a BioImage.IO model package written by :func:`~napari_coordgate.export.export_bioimageio`
    (its ``rdf.yaml`` names this package's architecture); only the description is read."""
    try:
        with zipfile.ZipFile(path) as zf:
            rdf_name = _find_rdf(zf.namelist())
            if rdf_name is None:
                return False
            rdf = _safe_load_yaml(_read_member(zf, rdf_name, _MAX_RDF_BYTES, path), path)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    entry = ((rdf.get("weights") or {}).get("pytorch_state_dict") or {}) if isinstance(rdf, dict) else {}
    arch = entry.get("architecture") if isinstance(entry, dict) else None
    return isinstance(arch, dict) and (arch.get("import_from"), arch.get("callable")) == WRAPPER_IMPORT


def _find_rdf(names: Sequence[str]) -> str | None:
    for wanted in _SPEC_YAML_NAMES:
        if wanted in names:
            return wanted
    for wanted in _SPEC_YAML_NAMES:
        hits = sorted(n for n in names if "/" not in n and n.endswith("." + wanted))
        if hits:
            return hits[0]
    return None


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ValueError(f"{path}: the package lists {name!r} but does not contain it") from None
    if info.file_size > limit:
        raise ValueError(f"{path}: {name!r} is {info.file_size} bytes, more than a napari-coordgate model holds")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: {name!r} is larger than a napari-coordgate model holds")
    return data


def _safe_load_yaml(text: bytes, path) -> Any:
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: its rdf.yaml is not valid YAML: {err}") from None
    try:
        from ruyaml import YAML
    except ImportError:
        raise ImportError(f"reading a BioImage.IO package needs PyYAML or bioimageio.spec; install {INSTALL_EXTRA}") from None
    return YAML(typ="safe").load(text)


def load_bioimageio_package(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """Load a model from a BioImage.IO package written by :func:`~napari_coordgate.export.export_bioimageio`.

    Only ``rdf.yaml`` (parsed with YAML's safe loader) and the
    ``pytorch_state_dict`` weights (``torch.load(weights_only=True)``) are
    read; nothing else is unpickled. The architecture and normalisation are
    checked against the model-file schema (:mod:`.header`) before any
    weight is loaded.

    Parameters
    ----------
    path : str or Path
        The ``.zip`` package.
    device : str or torch.device
        Where to put the model (as for :func:`napari_coordgate.load_model`).

    Returns
    -------
    UNet
        In eval mode, with ``percentiles``, ``metadata`` and ``source_path`` set.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a zip file, not a BioImage.IO model package, a package not written
        by napari-coordgate, or a damaged one (weights not matching their
        checksum or the described architecture, non-finite weights).
    """
    resolve_device(device)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no BioImage.IO package at {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{path} is not a readable zip file, so not a BioImage.IO package: {err}") from None
    with zf:
        rdf_name = _find_rdf(zf.namelist())
        if rdf_name is None:
            raise ValueError(f"{path} is a zip file but not a BioImage.IO package (no rdf.yaml in it)")
        rdf = _safe_load_yaml(_read_member(zf, rdf_name, _MAX_RDF_BYTES, path), path)
        if not isinstance(rdf, dict) or rdf.get("type") != "model":
            raise ValueError(f"{path} is a BioImage.IO package but does not describe a model")
        entry = (rdf.get("weights") or {}).get("pytorch_state_dict")
        arch = entry.get("architecture") if isinstance(entry, dict) else None
        if not isinstance(arch, dict) or (arch.get("import_from"), arch.get("callable")) != WRAPPER_IMPORT:
            found = f"{arch.get('import_from')}.{arch.get('callable')}" if isinstance(arch, dict) else "none"
            raise ValueError(f"{path} is a BioImage.IO model package but not one exported by napari-coordgate "
                             f"(its pytorch_state_dict architecture is {found}); only packages written by "
                             "export_bioimageio can be loaded as napari-coordgate models")
        kwargs = arch.get("kwargs") or {}
        ours = ((rdf.get("config") or {}).get("napari_coordgate") or {})
        info = check_header({
            "format_version": ours.get("format_version", FORMAT_VERSION),
            "config": kwargs.get("config"),
            "normalization": {"percentiles": kwargs.get("percentiles", list(DEFAULT_PERCENTILES))},
            "metadata": ours.get("metadata", {}),
        }, path)
        source = entry.get("source")
        if not isinstance(source, str) or source not in zf.namelist():
            raise ValueError(f"{path}: the pytorch_state_dict weights ({source!r}) are not inside the package")
        raw = _read_member(zf, source, _MAX_WEIGHTS_BYTES, path)
    expected = entry.get("sha256")
    if expected and hashlib.sha256(raw).hexdigest() != str(expected).lower():
        raise ValueError(f"{path}: the weights {source!r} do not match their SHA-256 in rdf.yaml; "
                         "the package is damaged")
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
        raise ValueError(f"{path}: the weights {source!r} are not a plain PyTorch state dict: {err}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: the weights {source!r} are not a state dict of tensors")
    prefix = "net."
    tensors = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
    if len(tensors) != len(state):
        raise ValueError(f"{path}: the weights {source!r} do not belong to a CoordGateBioImageIO module")
    return model_from_state(info, tensors, path, device, damaged="the package is damaged")
