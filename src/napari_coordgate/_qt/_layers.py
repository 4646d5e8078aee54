"""Adding result layers to the viewer, or updating them in place."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from napari.layers import Image, Points
from qtpy.QtCore import QTimer

__all__ = ["show_image", "show_points", "show_psf_field", "show_fwhm_map", "show_beads", "image_plane_scale",
           "REASON_COLOURS", "is_plugin_output", "ROLE_KEY", "PSF_FIELD_KEY", "one_per_turn", "show_bead_layer"]

#: Layer metadata key marking the layers this plugin made: "diagnostic" (PSF
#: montage, maps, previews, markers) or "result" (a deblurred image).
ROLE_KEY = "napari_coordgate_role"
#: Layer metadata key of the PSF montage layer holding the PSFField it shows (saved by the writer).
PSF_FIELD_KEY = "napari_coordgate_psf_field"
#: Pause between the steps of :func:`one_per_turn`: long enough for the canvas to draw the last one.
TURN_PAUSE_MS = 30


def one_per_turn(steps: Sequence[Callable[[], object]], done: Callable[[], object] | None = None) -> None:
    """Run ``steps`` in order, one per turn of the Qt event loop.

    Adding a napari layer costs 50-150 ms on the GUI thread (its visual and
    its controls are built), and its first draw as much again; several in one
    handler would freeze the window for their sum, so each gets its own turn,
    :data:`TURN_PAUSE_MS` after the last, and the window draws between.
    ``done`` runs after the last step (even if a step raised).
    """
    pending = list(steps)

    def run_next() -> None:
        try:
            if pending:
                pending.pop(0)()
        except Exception:
            pending.clear()
            raise
        finally:
            if pending:
                QTimer.singleShot(TURN_PAUSE_MS, run_next)
            elif done is not None:
                done()

    QTimer.singleShot(TURN_PAUSE_MS, run_next)


def is_plugin_output(layer, *, results_allowed: bool = False) -> bool:
    """Whether ``layer`` is one of this plugin's outputs (a result counts only unless ``results_allowed``)."""
    role = (layer.metadata or {}).get(ROLE_KEY)
    return role == "diagnostic" or (role == "result" and not results_allowed)


def show_image(viewer, name: str, data, *, role: str = "diagnostic", **props) -> Image:
    """Show ``data`` in the image layer called ``name``.

    An existing image layer of that name and dimensionality is updated in
    place (so a re-run replaces its result instead of piling up copies);
    otherwise a new layer is added. ``role`` ("diagnostic" or "result") is
    recorded in the layer's metadata (:data:`ROLE_KEY`); ``props`` are layer
    properties (scale, translate, colormap, contrast_limits, metadata, ...).
    """
    props["metadata"] = {**dict(props.get("metadata") or {}), ROLE_KEY: role}
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


def show_points(viewer, name: str, positions, reference, *, size: float, border_color="cyan", features=None,
                text=None) -> Points:
    """Show ``(y, x)`` pixel positions of the ``reference`` image as a Points layer
    called ``name`` (replacing an earlier one).

    ``border_color`` is one colour or one per point; ``features`` (a dict of
    per-point columns) and ``text`` are passed on to napari.
    """
    if name in viewer.layers:
        viewer.layers.remove(name)
    scale, translate = image_plane_scale(reference)
    extra = {} if features is None else {"features": features}
    if text is not None:
        extra["text"] = text
    return viewer.add_points(
        np.asarray(positions, float).reshape(-1, 2), name=name, size=size, scale=scale, translate=translate,
        face_color="transparent", border_color=border_color, border_width=0.15, opacity=0.8,
        metadata={ROLE_KEY: "diagnostic"}, **extra,
    )


#: Colours of the bead markers: used beads, then rejected beads by reason (others: white).
REASON_COLOURS = {
    "used": "lime", "saturated": "red", "hot pixel": "magenta", "faint": "gray", "inconsistent": "orange",
    "edge": "yellow", "overlapping": "deepskyblue",
}


def show_beads(viewer, used, rejected, reference, *, size: float,
               names: tuple[str, str] = ("detected beads", "rejected beads")) -> tuple[Points | None, Points | None]:
    """Show the beads a calibration used (green) and rejected (coloured by reason).

    ``used`` holds ``(y, x)`` positions, ``rejected`` ``(y, x, reason)``
    rows. Both layers carry a ``reason`` feature ("used" for used beads);
    the rejected beads are labelled with it. A layer with no beads is
    removed (so that an earlier run's markers do not linger).
    """
    return show_bead_layer(viewer, used, [], reference, size=size, name=names[0]), \
        show_bead_layer(viewer, [], rejected, reference, size=size, name=names[1])


def show_bead_layer(viewer, used, rejected, reference, *, size: float, name: str) -> Points | None:
    """One layer of :func:`show_beads`: the used beads (give ``rejected=[]``) or the rejected ones."""
    rows = [(float(y), float(x), "used") for y, x in (used or [])]
    rows += [(float(b[0]), float(b[1]), str(b[2])) for b in (rejected or [])]
    if not rows:
        if name in viewer.layers:
            viewer.layers.remove(name)
        return None
    reasons = [reason for _, _, reason in rows]
    colours = [REASON_COLOURS.get(reason, "white") for reason in reasons]
    text = None if not rejected else {"string": "{reason}", "size": 7, "color": "white", "anchor": "upper_left"}
    return show_points(viewer, name, [b[:2] for b in rows], reference, size=size, border_color=colours,
                       features={"reason": reasons}, text=text)


def show_fwhm_map(viewer, psf_field, reference, name: str) -> Image:
    """Show the FWHM (pixels) of each grid PSF as an image laid over the field.

    Each map pixel covers its grid cell of the ``reference`` image, its centre
    on the cell's node (where that PSF was measured).
    """
    fwhm = np.asarray(psf_field.metadata.get("fwhm_map_px") or psf_field.fwhm_map(), float)
    if fwhm.shape != tuple(psf_field.grid_shape):
        fwhm = psf_field.fwhm_map()
    cell = np.asarray(psf_field.field_shape, float) / np.asarray(psf_field.grid_shape, float)
    scale, translate = image_plane_scale(reference)
    finite = fwhm[np.isfinite(fwhm)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    # map pixel i is centred on node i, at field coordinate (i + 0.5) * cell - 0.5
    return show_image(
        viewer, name, fwhm.astype(np.float32), scale=scale * cell, translate=translate + scale * (cell - 1) / 2,
        colormap="viridis", contrast_limits=(low, high), opacity=0.5, metadata={"unit": "FWHM, pixels"},
    )


def show_psf_field(viewer, psf_field, reference, name: str = "PSF field", *, montage=None) -> Image:
    """Show the grid PSFs of ``psf_field`` as a montage laid over the field.

    Each PSF is drawn over the grid cell of the ``reference`` image it was
    measured for (each PSF scaled to its own peak), so the layer shows how the
    blur changes across the field. ``montage`` is ``psf_field.montage()`` when
    already computed (in a worker).
    """
    montage = psf_field.montage() if montage is None else montage
    cell = np.asarray(psf_field.field_shape, float) / np.asarray(psf_field.grid_shape, float)
    shown = montage.shape[0] // psf_field.grid_shape[0]  # the central part of each PSF in the montage
    pixel = cell / shown  # one montage pixel, in image pixels
    scale, translate = image_plane_scale(reference)
    # montage pixel i covers image pixels [i * pixel, (i + 1) * pixel) (pixel centres at integers)
    return show_image(
        viewer, name, montage, scale=scale * pixel, translate=translate + scale * (pixel - 1) / 2,
        colormap="magma", contrast_limits=(0.0, 1.0), blending="additive", metadata={PSF_FIELD_KEY: psf_field},
    )
