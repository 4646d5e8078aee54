"""Adding result layers to the viewer, or updating them in place."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Points

__all__ = ["show_image", "show_points", "show_psf_field", "image_plane_scale"]


def show_image(viewer, name: str, data, **props) -> Image:
    """Show ``data`` in the image layer called ``name``.

    An existing image layer of that name and dimensionality is updated in
    place (so a re-run replaces its result instead of piling up copies);
    otherwise a new layer is added. ``props`` are layer properties (scale,
    translate, colormap, contrast_limits, metadata, ...).
    """
    if name in viewer.layers:
        layer = viewer.layers[name]
        if isinstance(layer, Image) and not layer.rgb and not layer.multiscale and layer.ndim == np.ndim(data):
            layer.data = data
            for key, value in props.items():
                setattr(layer, key, value)
            return layer
        viewer.layers.remove(layer)
    return viewer.add_image(data, name=name, **props)


def image_plane_scale(layer) -> tuple[np.ndarray, np.ndarray]:
    """The ``(scale, translate)`` of an image layer's last two (Y, X) axes
    (unit scale at the origin when ``layer`` is None)."""
    if layer is None:
        return np.ones(2), np.zeros(2)
    return np.asarray(layer.scale[-2:], float), np.asarray(layer.translate[-2:], float)


def show_points(viewer, name: str, positions, reference, *, size: float) -> Points:
    """Show ``(y, x)`` pixel positions of the ``reference`` image as a Points layer
    called ``name`` (replacing an earlier one)."""
    if name in viewer.layers:
        viewer.layers.remove(name)
    scale, translate = image_plane_scale(reference)
    return viewer.add_points(
        np.asarray(positions, float).reshape(-1, 2), name=name, size=size, scale=scale, translate=translate,
        face_color="transparent", border_color="cyan", border_width=0.15, opacity=0.8,
    )


def show_psf_field(viewer, psf_field, reference, name: str = "PSF field") -> Image:
    """Show the grid PSFs of ``psf_field`` as a montage laid over the field.

    Each PSF is drawn over the grid cell of the ``reference`` image it was
    measured for (each PSF scaled to its own peak), so the layer shows how the
    blur changes across the field.
    """
    cell = np.asarray(psf_field.field_shape, float) / np.asarray(psf_field.grid_shape, float)
    pixel = cell / psf_field.psf_size  # one montage pixel, in image pixels
    scale, translate = image_plane_scale(reference)
    # montage pixel i covers image pixels [i * pixel, (i + 1) * pixel) (pixel centres at integers)
    return show_image(
        viewer, name, psf_field.montage(), scale=scale * pixel, translate=translate + scale * (pixel - 1) / 2,
        colormap="magma", contrast_limits=(0.0, 1.0), blending="additive",
    )
