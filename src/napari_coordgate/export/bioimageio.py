"""Export a napari-coordgate model as a BioImage.IO model package.

:func:`export_bioimageio` writes a ``.zip`` package of the current BioImage.IO
model specification (0.5.x, built with :mod:`bioimageio.spec.model.v0_5`)
that any BioImage.IO consumer can run: the raw image goes in, the deblurred
image (same units) comes out. It holds

* ``pytorch_state_dict`` weights with their architecture,
  :class:`~.bioimageio_wrapper.CoordGateBioImageIO` imported from this
  library (so running them needs ``napari-coordgate`` installed), and
  ``torchscript`` weights traced from the same module (PyTorch only);
* a test input (the ``sample`` given, or a procedural specimen) and the test
  output computed by :func:`napari_coordgate.deblur` (float32, CPU);
* a cover image (before | after | a gate map), a README with a Validation
  section, a conda environment file naming the dependency, and the original
  ``.safetensors`` model file as an attachment;
* the model's architecture, normalisation and metadata (training summary,
  PSF field summary) under ``config.napari_coordgate``.

A CoordGate model is tied to positions in its calibrated field, so the input
is the FULL field: fixed ``(1, 1, H, W)``, no parameterised size and no halo.
Consumers must not tile it.

Reading a package back is :mod:`napari_coordgate.model_files.bioimageio_package`'s job.
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..normalization import DEFAULT_PERCENTILES
from .._version import __version__
from ..files.atomic import atomic_write, blocking_file
from ..model_files import INSTALL_EXTRA, WRAPPER_IMPORT, save_model
from ..model_files.header import format_version
from ..models.unet import UNet, build_model
from .bioimageio_wrapper import CoordGateBioImageIO

__all__ = ["export_bioimageio", "PackageExistsError", "DEFAULT_CITATIONS", "WRAPPER_IMPORT"]

#: Cited unless ``cite`` says otherwise: the CoordGate paper and this project.
DEFAULT_CITATIONS: tuple[dict, ...] = (
    {"text": "Howard, Norreys & Döpp, \"CoordGate: Efficiently Computing Spatially-Varying Convolutions in "
             "Convolutional Neural Networks\", arXiv:2401.04680 (2024)",
     "doi": "10.48550/arXiv.2401.04680"},
    {"text": "napari-coordgate: remove the static, spatially varying blur of your own microscope with CoordGate "
             "U-Nets, inside napari (the software that trained and exported this model)",
     "url": "https://pypi.org/project/napari-coordgate/"},
)
_NAME_CHARS = set(string.ascii_letters + string.digits + "_+- ()")
_INPUT_ID, _OUTPUT_ID = "raw", "deblurred"


class PackageExistsError(FileExistsError, ValueError):
    """The export's destination exists and ``overwrite`` is False."""


# --------------------------------------------------------------------------------------- checks
def _check_model(model) -> tuple[int, int]:
    if not isinstance(model, UNet):
        raise TypeError(f"export_bioimageio expects a napari_coordgate model (UNet, CGUNet, CoordConvUNet), "
                        f"got {type(model).__name__}")
    if model.field_shape is None:
        raise ValueError(f"this {model.arch} has no field_shape: a BioImage.IO package describes a fixed input, "
                         "the model's calibrated field; build the model with field_shape=(H, W)")
    return tuple(int(s) for s in model.field_shape)


def _check_path(path, overwrite: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".zip":
        raise ValueError(f"a BioImage.IO package is a .zip file; {path.name!r} does not end in .zip")
    if path.is_dir():
        raise ValueError(f"cannot export to {path}: it is a folder; give a file name ending in .zip")
    if path.exists() and not overwrite:
        raise PackageExistsError(f"{path} exists; pass overwrite=True to replace it")
    blocking = blocking_file(path)
    if blocking is not None:
        raise ValueError(f"cannot export to {path}: {blocking} is a file, not a folder")
    return path


def _check_name(name, model: UNet, field: tuple[int, int]) -> str:
    if name is None:
        return f"napari-coordgate {model.arch} {field[0]}x{field[1]} field deblurring"
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    bad = sorted(set(name) - _NAME_CHARS)
    if bad or not 5 <= len(name) <= 128:
        raise ValueError(f"name {name!r} is not a valid BioImage.IO model name: it needs 5 to 128 characters, "
                         f"only letters, digits, spaces and _+-() (offending: {''.join(bad) or 'its length'})")
    return name


def _check_text(value, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what} has {len(value)} characters; BioImage.IO allows at most {limit}")
    return value


def _check_authors(authors) -> list[dict]:
    if authors is None:
        return [{"name": "napari-coordgate user"}]
    if isinstance(authors, (str, Mapping)):
        authors = [authors]
    if not isinstance(authors, Sequence) or not authors:
        raise TypeError("authors must be a name, a dict with a 'name' (and optionally 'affiliation', 'email', "
                        "'orcid', 'github_user'), or a non-empty list of those")
    out = []
    for i, a in enumerate(authors):
        entry = {"name": a} if isinstance(a, str) else dict(a) if isinstance(a, Mapping) else None
        if entry is None or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise TypeError(f"authors[{i}] must be a name or a dict with a non-empty 'name', got {a!r}")
        if "/" in entry["name"]:
            raise ValueError(f"authors[{i}]: BioImage.IO author names may not contain '/': {entry['name']!r}")
        unknown = sorted(set(entry) - {"name", "affiliation", "email", "orcid", "github_user"})
        if unknown:
            raise ValueError(f"authors[{i}] has unknown fields {unknown}")
        out.append(entry)
    return out


def _check_cite(cite) -> list[dict]:
    if cite is None:
        return [dict(c) for c in DEFAULT_CITATIONS]
    if isinstance(cite, Mapping):
        cite = [cite]
    if not isinstance(cite, Sequence) or isinstance(cite, str) or not cite:
        raise TypeError("cite must be a dict {'text': ..., 'doi': ... or 'url': ...} or a non-empty list of them")
    out = []
    for i, c in enumerate(cite):
        if not isinstance(c, Mapping) or not isinstance(c.get("text"), str):
            raise TypeError(f"cite[{i}] must be a dict with a 'text' and a 'doi' or 'url', got {c!r}")
        if not (c.get("doi") or c.get("url")):
            raise ValueError(f"cite[{i}] needs a 'doi' or a 'url'")
        unknown = sorted(set(c) - {"text", "doi", "url"})
        if unknown:
            raise ValueError(f"cite[{i}] has unknown fields {unknown}")
        out.append(dict(c))
    return out


def _check_sample(sample, field: tuple[int, int]) -> np.ndarray | None:
    if sample is None:
        return None
    arr = np.asarray(sample)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"sample must be a real-valued image, got dtype {arr.dtype}")
    if arr.shape != field:
        raise ValueError(f"sample has shape {arr.shape}, but the package's input is the model's full calibrated "
                         f"field of shape {field} (the model is tied to field positions); pass an image of that shape")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("sample holds NaN or infinite values (or values beyond the float32 range)")
    return arr


def _json_metadata(model: UNet) -> dict:
    try:
        return json.loads(json.dumps(dict(getattr(model, "metadata", {}) or {}), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"model.metadata must be JSON-serialisable (no NaN or inf) to go into the package: {err}") from None


def _import_spec():
    try:
        from bioimageio.spec import load_description, save_bioimageio_package
        from bioimageio.spec.model import v0_5
    except ImportError as err:
        raise ImportError(f"BioImage.IO export needs bioimageio.spec ({err}); install it with {INSTALL_EXTRA}") from None
    _check_pydantic()
    return v0_5, save_bioimageio_package, load_description


def _version_tuple(text: str) -> tuple[int, ...]:
    """``"0.5.12.0"`` -> ``(0, 5, 12)``; a part without leading digits counts as 0."""
    parts = []
    for piece in text.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def _check_pydantic() -> None:
    """bioimageio.spec before 0.5.14 passes pydantic's ``SerializationInfo`` where
    pydantic 2.14 wants an index key, so it cannot write any package there."""
    import bioimageio.spec
    import pydantic

    spec, pyd = _version_tuple(bioimageio.spec.__version__), _version_tuple(pydantic.VERSION)
    if spec < (0, 5, 14) and pyd >= (2, 14):
        raise ImportError(f"bioimageio.spec {bioimageio.spec.__version__} cannot write packages with pydantic "
                          f"{pydantic.VERSION} (its file serialisers break on pydantic 2.14; fixed in "
                          "bioimageio.spec 0.5.14): install 'pydantic<2.14' or a newer bioimageio.spec")


# ------------------------------------------------------------------------------------ contents
def _cpu_copy(model: UNet) -> UNet:
    """A float32 CPU copy of ``model`` in eval mode (the user's model is left untouched)."""
    copy = build_model(model.config)
    copy.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()})
    copy.percentiles = tuple(float(p) for p in getattr(model, "percentiles", DEFAULT_PERCENTILES))
    copy.metadata = dict(getattr(model, "metadata", {}) or {})
    return copy.eval()


def _wrapper_for(model: UNet) -> CoordGateBioImageIO:
    wrapper = CoordGateBioImageIO(model.config, model.percentiles)
    wrapper.net.load_state_dict(model.state_dict())
    return wrapper.eval()


def _default_sample(field: tuple[int, int]) -> np.ndarray:
    from ..data.specimens import make_specimen

    return make_specimen(field, np.random.default_rng(20240109), "mixed")


def _trace(wrapper: CoordGateBioImageIO, example: torch.Tensor):
    """``torch.jit.trace`` the wrapper. Its tensor-to-Python conversions are the
    shape checks of a fixed-shape input, so the tracer's warnings are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated", category=Warning)
        with torch.no_grad():
            return torch.jit.trace(wrapper, example, check_trace=False)


def _max_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 6 or any(isinstance(v, (list, tuple, dict)) for v in value):
            return f"({len(value)} values; see `config.napari_coordgate`)"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _summary_lines(d: Mapping, prefix: str = "", depth: int = 0) -> list[str]:
    """A Markdown list of a metadata dict's scalar entries (nested dicts as dotted keys)."""
    lines = []
    for key, value in d.items():
        if key == "preview":
            continue
        if isinstance(value, Mapping):
            if depth < 2:
                lines += _summary_lines(value, f"{prefix}{key}.", depth + 1)
            continue
        lines.append(f"- `{prefix}{key}`: {_fmt(value)}")
    return lines


def _readme(model: UNet, field, name: str, description: str, checks: Mapping[str, float], metadata: dict,
            torchscript_note: str) -> str:
    h, w = field
    training = metadata.get("training") if isinstance(metadata.get("training"), Mapping) else None
    psf = metadata.get("psf_field") if isinstance(metadata.get("psf_field"), Mapping) else None
    other = {k: v for k, v in metadata.items() if k not in ("training", "psf_field")}
    gates = len(model.gated_blocks())
    parts = [
        f"# {name}", "", description, "",
        "## Model", "",
        f"A {model.arch} (depth {model.depth}, {model.base_channels} base channels, "
        f"{'residual' if model.residual else 'direct'} output, {model.n_parameters():,} parameters"
        + (f", {gates} CoordGate blocks" if gates else "") + ") trained with "
        "[napari-coordgate](https://pypi.org/project/napari-coordgate/) to remove the static, spatially varying "
        "blur of one microscope. CoordGate U-Nets multiply their feature channels by gate maps computed from the "
        "pixel coordinates of the calibrated field (Howard, Norreys & Döpp, arXiv:2401.04680), so every weight "
        "is tied to a position in that field.", "",
        "## Input: the full calibrated field, fixed size", "",
        f"- `{_INPUT_ID}`: float32, axes batch (1) / channel (1) / y ({h}) / x ({w}), raw intensities of the "
        "whole calibrated field, its top-left pixel at field position (0, 0). The size is fixed: no parameterised "
        "size, no halo. **Do not tile, crop or pad the input**: a tile would be processed as if it were the "
        "top-left corner of the field, with the wrong position-dependent correction. For camera ROIs or "
        "larger-than-memory data use napari-coordgate itself (`napari_coordgate.deblur(image, model, "
        "offset=...)`), which tiles with the right field offsets.",
        f"- `{_OUTPUT_ID}`: float32, same axes and size, the deblurred image in the input's units.", "",
        "Normalisation happens inside the model: the input's "
        f"percentiles {model.percentiles[0]:g} and {model.percentiles[1]:g} map to 0 and 1 (a flat image gets "
        "a unit range), the network runs, and the result is mapped back, exactly as `napari_coordgate.deblur` "
        "does. There is no pre- or postprocessing for the consumer to apply.", "",
        "## Weights", "",
        "- `pytorch_state_dict`: the architecture is `CoordGateBioImageIO` imported from "
        "`napari_coordgate.export.bioimageio_wrapper`, so running these weights needs `napari-coordgate` "
        "installed (`pip install napari-coordgate`; see the environment file). The architecture's kwargs are "
        "the model's `config` and its normalisation `percentiles`.",
        f"- `torchscript`: {torchscript_note}", "",
        "The original napari-coordgate model file is attached (`model.safetensors`); "
        "`napari_coordgate.load_model(\"package.zip\")` loads this package back losslessly.", "",
        "## Training", "",
    ]
    if training:
        parts += ["Training summary (from the model's metadata):", "", *_summary_lines(training), ""]
    else:
        parts += ["The model carries no training summary (it was not trained with `napari_coordgate.train`, "
                  "or its metadata was dropped).", ""]
    if psf:
        parts += ["It was trained on blur simulated through this calibrated PSF field:", "", *_summary_lines(psf), ""]
    else:
        parts += ["No PSF field summary is stored with the model.", ""]
    if other:
        parts += ["Other metadata:", "", *_summary_lines(other), ""]
    parts += [
        "## Validation", "",
        "What was checked when this package was written:", "",
        "- The test input is "
        + ("the sample image given at export" if checks.get("sample_given") else
           "a procedural fluorescence-like specimen (`napari_coordgate.data.specimens.make_specimen`)")
        + f" of the full field, {h} x {w} pixels.",
        "- The test output was computed by napari-coordgate's own `deblur(image, model, precision=\"fp32\", "
        "device=\"cpu\")`, in one tile covering the whole field.",
        f"- The `pytorch_state_dict` weights with their architecture reproduce it within "
        f"{checks['pytorch_state_dict']:.2e} (max. absolute difference, input units).",
    ]
    if "torchscript" in checks:
        parts.append(f"- The `torchscript` weights reproduce it within {checks['torchscript']:.2e}.")
    parts += [
        "- The package was validated with `bioimageio.spec` (format version "
        f"{checks.get('format_version', '0.5')}); run `bioimageio test <package>.zip` to repeat the "
        "inference test.", "",
        "To validate the deblurring quantitatively on unseen data, image beads (or a sharp/blurred image pair) "
        "across the field with the same microscope settings, deblur the blurred image and compare the bead "
        "widths (FWHM) or the error against the sharp reference at the centre and the corners; "
        "napari-coordgate's calibration widgets and `napari_coordgate.psf` report these numbers. The model "
        "is only valid for the instrument, objective, wavelength, pixel size and field it was calibrated on.", "",
        "## Limitations", "",
        "- One microscope, one field: images from another setup, or crops of the field, are not supported by "
        "this package (crops are by napari-coordgate with an `offset`).",
        "- 2D, single channel; stacks are processed plane by plane.", "",
    ]
    return "\n".join(parts)


def _environment_yaml() -> str:

    return ("name: napari-coordgate\nchannels:\n  - conda-forge\n  - nodefaults\ndependencies:\n"
            f"  - python>=3.10\n  - pytorch>={torch.__version__.split('+')[0].rsplit('.', 1)[0]}\n  - pip\n"
            f"  - pip:\n      - napari-coordgate>={__version__}\n")


def _training_details(v0_5, training: Mapping | None):
    if not training:
        return v0_5.TrainingDetails()
    fields: dict[str, Any] = {}
    for key, target in (("batch_size", "training_batch_size"), ("lr_initial", "initial_learning_rate")):
        value = training.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            fields[target] = float(value)
    if isinstance(training.get("schedule"), str):
        fields["learning_rate_schedule"] = training["schedule"]
    fields["training_preprocessing"] = ("pairs (blurred, sharp) simulated through the calibrated PSF field; "
                                        "inputs normalised with the model's percentiles")
    return v0_5.TrainingDetails(**fields)


# ---------------------------------------------------------------------------------------- export
def _package_files(tmp: Path, cpu: UNet, field: tuple[int, int], sample_: np.ndarray | None, name: str,
                   description: str, metadata: dict, v0_5) -> tuple[np.ndarray, dict, str]:
    """Write the package's files into ``tmp``: test tensors and samples, the weights (checked against
    :func:`~napari_coordgate.deblur`, and traced when tracing works), the cover, the model file, the
    environment and the README. Returns the test output, the checks made, and a note on the torchscript weights."""
    test_input = _default_sample(field) if sample_ is None else sample_
    from ..inference.deblur import deblur
    from .cover import write_cover

    # one tile (the aligned field), as the package runs it: no blending of overlapping tiles
    whole = tuple(-(-s // cpu.alignment) * cpu.alignment for s in field)
    test_output = deblur(test_input, cpu, precision="fp32", device="cpu", tile_shape=whole)
    x = torch.from_numpy(np.ascontiguousarray(test_input, np.float32))[None, None]
    np.save(tmp / "test_input.npy", x.numpy())
    np.save(tmp / "test_output.npy", test_output[None, None].astype(np.float32))
    import tifffile

    tifffile.imwrite(tmp / "sample_input.tif", x.numpy()[0, 0])
    tifffile.imwrite(tmp / "sample_output.tif", test_output.astype(np.float32))

    wrapper = _wrapper_for(cpu)
    checks: dict[str, Any] = {"sample_given": sample_ is not None}
    with torch.no_grad():
        checks["pytorch_state_dict"] = _max_error(wrapper(x)[0, 0].numpy(), test_output)
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(test_output))))
    if checks["pytorch_state_dict"] > tolerance:
        raise RuntimeError(f"the exported module differs from napari_coordgate.deblur by "
                           f"{checks['pytorch_state_dict']:.3g}: this is a bug, please report it")
    torch.save(wrapper.state_dict(), tmp / "weights.pt")

    torchscript_note = "traced with `torch.jit.trace` from the same module; needs PyTorch only."
    try:
        traced = _trace(wrapper, x)
        with torch.no_grad():
            checks["torchscript"] = _max_error(traced(x)[0, 0].numpy(), test_output)
        if checks["torchscript"] > tolerance:
            raise RuntimeError(f"the traced module differs from deblur by {checks['torchscript']:.3g}")
        traced.save(str(tmp / "weights_torchscript.pt"))
    except Exception as err:  # noqa: BLE001 - reported in the package and as a warning
        checks.pop("torchscript", None)
        torchscript_note = f"not included: tracing failed ({type(err).__name__}: {err})."
        warnings.warn(f"BioImage.IO export without torchscript weights: {torchscript_note}", RuntimeWarning,
                      stacklevel=2)

    write_cover(tmp / "cover.png", cpu, test_input, test_output)
    save_model(cpu, tmp / "model.safetensors", **metadata)
    (tmp / "environment.yaml").write_text(_environment_yaml(), encoding="utf-8")
    checks["format_version"] = v0_5.ModelDescr.implemented_format_version
    (tmp / "README.md").write_text(
        _readme(cpu, field, name, description, checks, metadata, torchscript_note), encoding="utf-8")
    return test_output, checks, torchscript_note


def _description(v0_5, tmp: Path, cpu: UNet, field: tuple[int, int], name: str, description: str,
                 authors: list[dict], cite: list[dict], license: str, metadata: dict, checks: dict,
                 test_output: np.ndarray, percentiles: list[float]):
    """The package's BioImage.IO model description (spec 0.5), over the files in ``tmp``."""
    from pydantic import ValidationError

    h, w = field
    torch_version = v0_5.Version(torch.__version__.split("+")[0])
    absolute = 1e-3 * max(float(np.max(np.abs(test_output))), 1e-12)
    try:
        weights = {
            "pytorch_state_dict": v0_5.PytorchStateDictWeightsDescr(
                source=tmp / "weights.pt",
                architecture=v0_5.ArchitectureFromLibraryDescr(
                    import_from=WRAPPER_IMPORT[0], callable=v0_5.Identifier(WRAPPER_IMPORT[1]),
                    kwargs={"config": cpu.config, "percentiles": percentiles}),
                pytorch_version=torch_version,
                dependencies=v0_5.FileDescr(source=tmp / "environment.yaml"),
                comment="CoordGateBioImageIO from napari-coordgate: normalisation + network + inverse "
                        "normalisation; needs the napari-coordgate package.",
            ),
        }
        if "torchscript" in checks:
            weights["torchscript"] = v0_5.TorchscriptWeightsDescr(
                source=tmp / "weights_torchscript.pt", pytorch_version=torch_version,
                parent="pytorch_state_dict", comment="torch.jit.trace of the pytorch_state_dict module")
        fixed = "fixed size: the model's full calibrated field (field-position dependent; do not tile)"
        descr = v0_5.ModelDescr(
            name=name,
            description=description,
            authors=[v0_5.Author(**a) for a in authors],
            cite=[v0_5.CiteEntry(**c) for c in cite],
            license=v0_5.LicenseId(license),
            documentation=v0_5.FileDescr(source=tmp / "README.md"),
            covers=[v0_5.FileDescr(source=tmp / "cover.png")],
            attachments=[v0_5.FileDescr(source=tmp / "model.safetensors")],
            tags=["napari-coordgate", "coordgate", "deblurring", "deconvolution", "restoration", "unet", "2d",
                  "pytorch", "fluorescence-light-microscopy", "field-dependent"],
            version=v0_5.Version(__version__),
            inputs=[v0_5.InputTensorDescr(
                id=v0_5.TensorId(_INPUT_ID),
                description="raw image of the whole calibrated field (top-left pixel at the field origin)",
                axes=[v0_5.BatchAxis(size=1),
                      v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")]),
                      v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=h, description=fixed),
                      v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=w, description=fixed)],
                test_tensor=v0_5.FileDescr(source=tmp / "test_input.npy"),
                sample_tensor=v0_5.FileDescr(source=tmp / "sample_input.tif"),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            )],
            outputs=[v0_5.OutputTensorDescr(
                id=v0_5.TensorId(_OUTPUT_ID),
                description="deblurred image, in the input's intensity units",
                axes=[v0_5.BatchAxis(size=1),
                      v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")]),
                      v0_5.SpaceOutputAxis(id=v0_5.AxisId("y"), size=h),
                      v0_5.SpaceOutputAxis(id=v0_5.AxisId("x"), size=w)],
                test_tensor=v0_5.FileDescr(source=tmp / "test_output.npy"),
                sample_tensor=v0_5.FileDescr(source=tmp / "sample_output.tif"),
                data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            )],
            weights=v0_5.WeightsDescr(**weights),
            config=v0_5.Config(
                bioimageio=v0_5.BioimageioConfig(
                    reproducibility_tolerance=[v0_5.ReproducibilityTolerance(
                        relative_tolerance=1e-3, absolute_tolerance=absolute)],
                    architecture_type=f"{cpu.arch} (2D U-Net)",
                    architecture_description=(
                        f"{cpu.arch} of depth {cpu.depth} and {cpu.base_channels} base channels; CoordGate "
                        "blocks gate each level's channels with an MLP of the field coordinates"
                        if cpu.gated_blocks() else f"{cpu.arch} of depth {cpu.depth} and "
                        f"{cpu.base_channels} base channels"),
                    modality="fluorescence light microscopy",
                    task="deblurring (spatially varying deconvolution)",
                    model_parameter_count=cpu.n_parameters(),
                    out_of_scope_use="tiled or cropped inputs; images from another microscope, objective, "
                                     "wavelength, pixel size or field",
                    training=_training_details(v0_5, metadata.get("training")),
                ),
                napari_coordgate={
                    "format_version": format_version(cpu.config),
                    "exported_with": f"napari-coordgate {__version__}",
                    "config": cpu.config,
                    "normalization": {"percentiles": percentiles},
                    "field_shape": [h, w],
                    "metadata": metadata,
                    "model_file": "model.safetensors",
                    "checks": {k: v for k, v in checks.items() if isinstance(v, float)},
                },
            ),
        )
    except ValidationError as err:
        raise ValueError(f"the BioImage.IO description of this model is invalid: {err}") from None
    return descr


def export_bioimageio(
    model: UNet,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    description: str | None = None,
    authors: str | Mapping | Sequence[str | Mapping] | None = None,
    license: str = "BSD-3-Clause",
    cite: Mapping | Sequence[Mapping] | None = None,
    sample: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model as a BioImage.IO model package (spec 0.5.x, ``.zip``).

    Parameters
    ----------
    model : UNet, CGUNet or CoordConvUNet
        A model with a ``field_shape`` (on any device; it is not modified).
    path : str or Path
        The package to write; must end in ``.zip``.
    name : str, optional
        Model name (5-128 characters: letters, digits, spaces and ``_+-()``).
        Default: ``"napari-coordgate <arch> <H>x<W> field deblurring"``.
    description : str, optional
        A short description (at most 1024 characters). Default: one saying
        what the model does and that its input is the fixed full field.
    authors : str, dict or list of them, optional
        The model's authors: names, or dicts with ``name`` and optionally
        ``affiliation``, ``email``, ``orcid``, ``github_user``. Default: a
        placeholder ("napari-coordgate user"); give the real authors.
    license : str
        An SPDX licence identifier for the weights.
    cite : dict or list of dicts, optional
        Citations ``{"text": ..., "doi": ...}`` or ``{"text": ..., "url": ...}``.
        Default: :data:`DEFAULT_CITATIONS` (the CoordGate paper and napari-coordgate).
    sample : (H, W) array, optional
        The test input, of the field's shape. Default: a procedural specimen.
    overwrite : bool
        Replace an existing file at ``path``.

    Returns
    -------
    Path
        ``path``, holding a package that ``bioimageio.spec`` validates.

    Raises
    ------
    TypeError
        ``model`` is not a napari-coordgate model; an option of the wrong type;
        metadata that is not JSON-serialisable.
    ValueError
        No ``field_shape``; ``sample`` of the wrong shape or not finite; a name
        that is not ``.zip``; an invalid model name, licence or citation; the
        package fails validation. :class:`PackageExistsError` (a
        ``ValueError`` and ``FileExistsError``) when ``path`` exists and
        ``overwrite`` is False.
    ImportError
        ``bioimageio.spec`` is not installed (the ``[bioimageio]`` extra).

    Notes
    -----
    The package is written to a temporary file next to ``path``, validated,
    and only then moved onto ``path``: a failed export leaves no file (and
    any previous file intact).
    """
    field = _check_model(model)
    path = _check_path(path, bool(overwrite))
    name = _check_name(name, model, field)
    description = _check_text(description, "description", 1024)
    authors_ = _check_authors(authors)
    cite_ = _check_cite(cite)
    if not isinstance(license, str) or not license:
        raise TypeError(f"license must be an SPDX identifier string, got {license!r}")
    sample_ = _check_sample(sample, field)
    metadata = _json_metadata(model)
    v0_5, save_package, load_description = _import_spec()
    cpu = _cpu_copy(model)
    percentiles = [float(p) for p in cpu.percentiles]
    if description is None:
        description = (f"Removes the static, spatially varying blur of one microscope's calibrated field "
                       f"({field[0]} x {field[1]} px) with a {cpu.arch} trained by napari-coordgate. The model is "
                       "tied to field positions: its input is always the full field, fixed size, top-left pixel "
                       "at the field origin; do not tile, crop or pad it. Raw intensities in, deblurred "
                       "intensities out (normalisation is inside the model).")

    with tempfile.TemporaryDirectory(prefix="coordgate-bioimageio-") as tmp:
        tmp = Path(tmp)
        test_output, checks, torchscript_note = _package_files(tmp, cpu, field, sample_, name, description, metadata,
                                                               v0_5)
        descr = _description(v0_5, tmp, cpu, field, name, description, authors_, cite_, license, metadata, checks,
                             test_output, percentiles)

        def write(partial: str) -> None:
            try:
                save_package(descr, output_path=Path(partial))
            except ValueError as err:
                raise ValueError(f"the BioImage.IO package failed validation: {err}") from None
            loaded = load_description(partial)
            if loaded.__class__.__name__ == "InvalidDescr" or getattr(loaded, "type", None) != "model":
                summary = getattr(loaded, "validation_summary", None)
                reason = summary.format() if summary is not None else str(loaded)
                raise ValueError(f"the written BioImage.IO package does not validate:\n{reason}")

        atomic_write(path, write, suffix=".partial.zip")
    return path
