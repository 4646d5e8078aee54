"""The Gate map dock widget: what the model learned about the field."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, SpinBox
from napari.layers import Points

from ._controls import StatusLine, button, complain, info_label, layer_combo, report_error, scrolling_layout
from ._layers import image_plane_scale, one_per_turn, show_image
from ._workers import gate_map_job, kernel_job
from .kernel_view import SIGNED_KERNEL, KernelView, kernel_limit
from .dock import Dock

__all__ = ["GateMapWidget"]

PROBE = "kernel probe"
KERNEL_LAYER = "local kernel (network)"
#: Diverging colours for gates: one hue below 1 (the channel is damped there), another above.
GATE_COLORMAP = "PiYG"
#: Opacity of a gate map over its image.
GATE_OPACITY = 0.6
#: Most pixels per side of a gate map layer: gates vary smoothly over the field, and a 2048 x 2048
#: frame's full-resolution maps (16 gates) would be 256 MB and take napari seconds to draw.
MAX_MAP_SIDE = 512


def gate_limits(maps: np.ndarray) -> tuple[float, float]:
    """One contrast range for all the gates of a block, centred on 1 (no change).

    The half width is the 99.5th percentile of ``|gate - 1|``, so that a 6 %
    variation looks like one, and a few extreme pixels do not wash it out.
    """
    deviation = np.abs(np.asarray(maps, np.float64) - 1.0)
    half = float(np.percentile(deviation, 99.5)) if deviation.size else 0.0
    half = half if half > 1e-6 else 0.05
    return 1.0 - half, 1.0 + half


def map_stride(shape, level: int, largest: int | None = None) -> int:
    """Sampling step of a gate map so that it has at most ``largest`` (default :data:`MAX_MAP_SIDE`)
    pixels per side (1 where it fits)."""
    coarse = max(-(-int(n) // 2**level) for n in shape)
    return max(1, -(-coarse // (largest or MAX_MAP_SIDE)))


def _block_choices(model) -> list[tuple[str, str]]:
    if model is None:
        return []
    return [
        (f"level {level} {'encoder' if name.startswith('down') else 'decoder'} ({name}), {block.n_gates} gates", name)
        for name, level, block in model.gated_blocks()
    ]


class GateMapWidget(Dock):
    """Show a CG U-Net's gate maps over the image, and probe its local kernels.

    *Show gate map* adds the chosen block's gates as an image layer of shape
    ``(n_gates, h, w)`` (the gate index is a slider axis), scaled by
    ``2**level`` and shifted half a coarse pixel so that it overlays the
    reference image's pixels; the contrast follows the gate on screen.
    *Pick a point* adds a "kernel probe" Points layer: each point placed (or
    moved) shows, side by side in the widget, the PSF field's kernel there and
    the network's local response (its deconvolution kernel), which is also
    drawn over the data around the probe as "local kernel (network)".
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._model_label = info_label("model")
        self._block = ComboBox(label="block", choices=lambda _: _block_choices(self._state.model),
                               tooltip="The U-Net level, and its encoder (down) or decoder (up) block")
        self._image = layer_combo(viewer, "over image", nullable=True, results=True)
        self._offset_y = SpinBox(label="ROI offset y", max=2**20)
        self._offset_x = SpinBox(label="ROI offset x", max=2**20)
        self._show_button = button("Show gate map", "Add the block's gates as a layer over the image")
        self._size = SpinBox(label="kernel size", value=33, min=3, max=255, step=2)
        self._probe_button = button("Pick a point…", "Click on the image to see the local kernels there")
        self._form = Container(widgets=[
            self._model_label, self._block, self._image, self._offset_y, self._offset_x, self._show_button,
            self._size, self._probe_button,
        ])
        self._kernels = KernelView()
        self._status = StatusLine()
        scrolling_layout(self, (self._form.native, self._kernels, self._status))
        self.last_kernels: tuple[np.ndarray | None, np.ndarray] | None = None
        self._probe_layer = None

        self._on_clicks({self._show_button: self._show_gate_map, self._probe_button: self._start_probe})
        self._state.events.model.connect(self._on_model)
        self._on_model(self._state.model)
        # A gate map or probe still computing when the dock closes adds nothing (each takes a second or two).
        self._closed = False
        self._settle_in(lambda: setattr(self, "_closed", True))

    def reset_choices(self, *_) -> None:
        """Refresh the layer and block lists (napari calls this when layers change)."""
        self._form.reset_choices()

    def _on_model(self, model) -> None:
        self._block.reset_choices()
        if model is None:
            self._model_label.value = "none yet: fine-tune one or load a file"
        elif not model.gated_blocks():
            self._model_label.value = f"{model.arch}: no CoordGate blocks, no gate maps"
        else:
            self._model_label.value = f"{model.arch}({model.depth}), {self._state.model_source or 'unsaved'}"

    def _model_or_complain(self):
        model = self._state.model
        if model is None:
            complain("Gate map", "there is no model yet: fine-tune one or load a model file", self._status)
        return model

    @property
    def _offset(self) -> tuple[int, int]:
        return int(self._offset_y.value), int(self._offset_x.value)

    # -- gate maps ----------------------------------------------------------------------
    def _show_gate_map(self) -> None:
        model = self._model_or_complain()
        if model is None or self._worker is not None:
            return
        if self._block.value is None:
            complain("Gate map", f"a {model.arch} has no CoordGate blocks; gate maps exist for CG U-Nets only",
                     self._status)
            return
        reference, block = self._image.value, self._block.value
        shape = tuple(reference.data.shape[-2:]) if reference is not None else None
        level = {name: lv for name, lv, _ in model.gated_blocks()}[block]
        oy, ox = self._offset
        stride = map_stride(shape or (model.field_shape[0] - oy, model.field_shape[1] - ox), level)
        worker = gate_map_job(model, block, self._offset, shape, stride)
        worker.returned.connect(lambda maps: self._add_gate_layer(maps, block, level, reference, stride))
        worker.errored.connect(lambda err: report_error("Gate map", err, self._status))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._status.show_message(f"Computing the gates of {block}…", "busy")
        worker.start()

    def _on_finished(self) -> None:
        self._worker = None

    def _add_gate_layer(self, maps: np.ndarray, block: str, level: int, reference, stride: int = 1) -> None:
        if self._closed:
            return
        step = 2**level * stride  # one map pixel covers step x step image pixels
        scale, translate = image_plane_scale(reference)
        low, high = gate_limits(maps)
        layer = show_image(
            self._viewer, f"gate map {block} (level {level})", maps,
            scale=(1.0, *(scale * step)), translate=(0.0, *(translate + scale * (step - 1) / 2)),
            colormap=GATE_COLORMAP, contrast_limits=(low, high), opacity=GATE_OPACITY, axis_labels=("gate", "y", "x"),
            metadata={"napari_coordgate": {"block": block, "level": level, "offset": list(self._offset),
                                           "stride": stride}},
        )
        # the colour bar's first draw costs as much as the layer's: it gets its own event-loop turn
        one_per_turn([lambda: setattr(layer.colorbar, "visible", True)])
        if reference is not None:
            self._viewer.layers.selection.active = layer
        self._status.show_message(
            f"'{layer.name}': {maps.shape[0]} gates of {maps.shape[1]}x{maps.shape[2]} map pixels "
            f"({step}x{step} image pixels each"
            + (f", sampled every {stride} of the block's pixels: the gates vary smoothly" if stride > 1 else "")
            + f"); the 'gate' slider picks one. All gates share one colour scale "
            f"centred on 1 (no change): green above (the channel is boosted), pink below, "
            f"{low:.3f} to {high:.3f}.", "ok",
        )

    # -- local kernels --------------------------------------------------------------------
    def _start_probe(self) -> None:
        if self._model_or_complain() is None:
            return
        if PROBE in self._viewer.layers and isinstance(self._viewer.layers[PROBE], Points):
            probe = self._viewer.layers[PROBE]
        else:
            scale, translate = image_plane_scale(self._image.value)
            probe = self._viewer.add_points(
                ndim=2, name=PROBE, scale=scale, translate=translate, size=3 * scale[0],
                face_color="yellow", border_color="black",
            )
        if probe is not self._probe_layer:
            probe.events.data.connect(self._on_probe)
            self._probe_layer = probe
        self._viewer.layers.selection.active = probe
        probe.mode = "add"
        self._status.show_message("Click on the image to place the probe (drag it to move).", "info")

    def _on_probe(self, event) -> None:
        if event.action not in ("added", "changed") or not len(event.value):
            return
        index = event.data_indices[-1] if event.data_indices else -1
        y, x = (int(round(v)) for v in event.value[index][-2:])
        self.probe(y, x)

    def probe(self, y: int, x: int) -> None:
        """Show the kernels at image pixel ``(y, x)`` (what placing a probe point does)."""
        model = self._model_or_complain()
        if model is None:
            return
        worker = kernel_job(model, self._state.psf_field, y, x, self._size.value, self._offset)
        worker.returned.connect(lambda kernels: self._show_kernels(y, x, *kernels))
        worker.errored.connect(lambda err: report_error("Gate map", err, self._status))
        self._status.show_message(f"Measuring the kernels at ({y}, {x})…", "busy")
        worker.start()

    def _show_kernels(self, y: int, x: int, psf, kernel: np.ndarray) -> None:
        if self._closed:
            return
        self.last_kernels = (psf, kernel)
        self._kernels.show(psf, kernel, f"at ({y}, {x})")
        # the network's response drawn over the data, centred on the probe (transparent where 0)
        scale, translate = image_plane_scale(self._image.value)
        limit = kernel_limit(kernel)
        show_image(self._viewer, KERNEL_LAYER, kernel, scale=scale,
                   translate=translate + scale * (np.array([y, x]) - kernel.shape[0] // 2),
                   colormap=SIGNED_KERNEL, contrast_limits=(-limit, limit))
        if self._probe_layer is not None and self._probe_layer in self._viewer.layers:
            self._viewer.layers.selection.active = self._probe_layer  # keep clicking probes
        note = "" if psf is not None else " (no PSF: the calibration is missing or for another field)"
        self._status.show_message(f"Kernels at ({y}, {x}){note}.", "ok")
