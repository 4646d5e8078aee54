"""Opening this package's own files in napari (drag and drop, File > Open).

- A model file (``.safetensors`` written by :func:`~napari_coordgate.save_model`,
  or a BioImage.IO ``.zip`` written by :func:`~napari_coordgate.export.export_bioimageio`)
  becomes the current model of every widget of the viewer. It adds no layer;
  a notification describes the model.
- A PSF-field file (``.npz`` written by :meth:`PSFField.save`) becomes the
  current calibration, shown as its PSF montage layer.

All are recognised by their header (or package description), not their
extension alone: other ``.safetensors``, ``.npz`` and ``.zip`` files are left to
other readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_info

from ..model_files import is_exported_package
from ..model_files import is_model_file, load_model
from ..psf.psf_field import PSFField, is_psf_field_file
from ._layers import show_psf_field
from .state import state_for

__all__ = ["get_reader", "describe_model"]

#: What napari takes as "read, but no layer to add".
_NO_LAYER = [(None,)]


def get_reader(path) -> Callable | None:
    """The reader for ``path`` if it is a model or PSF-field file this package wrote, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = os.fspath(path)
    low = path.lower()
    if low.endswith(".safetensors") and is_model_file(path):
        return read_model_file
    if low.endswith(".npz") and is_psf_field_file(path):
        return read_psf_field_file
    if low.endswith(".zip") and is_exported_package(path):
        return read_model_file
    return None


def _viewer():
    import napari

    return napari.current_viewer()


def _one(path):
    return os.fspath(path[0] if isinstance(path, (list, tuple)) else path)


def describe_model(model) -> str:
    """A few words on a loaded model: architecture, field, how it was trained."""
    text = f"{model.arch}({model.depth}), {model.base_channels} channels, {model.n_parameters():,} parameters"
    if model.field_shape is not None:
        text += f", field {model.field_shape[0]}x{model.field_shape[1]}"
    training = (getattr(model, "metadata", None) or {}).get("training") or {}
    if "val_psnr" in training and "input_psnr" in training:
        text += f"; validation PSNR {training['input_psnr']:.1f} -> {training['val_psnr']:.1f} dB"
    if training.get("steps"):
        text += f" after {training['steps']} steps"
    return text


def read_model_file(path) -> list:
    """Make the model in ``path`` the current model of the viewer's widgets."""
    path = _one(path)
    model = load_model(path)  # a damaged file raises with a message that names it
    viewer = _viewer()
    name = Path(path).name
    if viewer is not None:
        state = state_for(viewer)
        state.model_source = name
        state.model = model
    show_info(f"{name}: {describe_model(model)}. It is now the current model of every napari-coordgate widget.")
    return _NO_LAYER


def read_psf_field_file(path) -> list:
    """Make the PSF field in ``path`` the current calibration and show its montage."""
    path = _one(path)
    field = PSFField.load(path)
    viewer = _viewer()
    name = Path(path).name
    s = field.summary()
    show_info(f"{name}: {field.kind} PSF field, {field.field_shape[0]}x{field.field_shape[1]} px, FWHM "
              f"{s['fwhm_centre_px']:.1f} px at the centre, {s['fwhm_corners_mean_px']:.1f} px in the corners. "
              "It is now the current calibration.")
    if viewer is None:  # read outside a viewer: hand napari the montage as a layer
        return [(field.montage(), {"name": "PSF field", "colormap": "magma", "blending": "additive",
                                   "contrast_limits": (0.0, 1.0)}, "image")]
    state_for(viewer).psf_field = field
    show_psf_field(viewer, field, None)
    return _NO_LAYER
