"""The Deblur dock widget: apply the current model to any image layer."""

from __future__ import annotations

import threading

import napari
import numpy as np
from magicgui.widgets import CheckBox, Container, SpinBox
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QProgressBar, QWidget

from ..inference import iter_deblur
from ..inference.image_change import describe_change
from ._controls import (StatusLine, ask_open_path, button, collapsible, info_label, layer_combo, report_error,
                        scrolling_layout)
from ._layers import image_plane_scale, show_image
from ._model_files import load_current_model
from ._threads import MODEL_LOCK, leave_a_core_for_the_gui, until_cancelled, warm_up
from .device_picker import DevicePicker
from .state import state_for

__all__ = ["DeblurWidget"]

_COPIED = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels", "colormap")


@thread_worker(ignore_errors=True)
def deblur_job(image, model, offset, device, cancel: threading.Event, report: bool = False):
    """Deblur ``image`` in a worker: yields ``DeblurProgress``; returns
    ``(array, ImageChange or None)``, or None once ``cancel`` is set.

    With ``report``, how the image changed (:func:`describe_change`) is
    measured here too, so the GUI thread only shows it.
    """
    with MODEL_LOCK, leave_a_core_for_the_gui():
        result = yield from until_cancelled(iter_deblur(image, model, offset=offset, device=device), cancel)
    if result is None:
        return None
    return result, (describe_change(np.asarray(image), result) if report else None)


class DeblurWidget(QWidget):
    """Deblur an image layer (2D or an nD stack, any dtype) with the current model.

    *Deblur* adds ``"<name> deblurred"`` with the source's scale, translate
    and metadata; the source layer is never modified. *Live preview* deblurs
    the plane on screen whenever the dims slider moves. Errors (RGB layers,
    images that do not fit in the model's field, running out of memory) are
    shown as napari notifications and in the status line.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        warm_up()
        self._viewer = viewer
        self._state = state_for(viewer)
        self._worker = None
        self._cancel_run = threading.Event()
        self._preview_worker = None
        self._cancel_preview = threading.Event()
        self._preview_again = False

        self._image = layer_combo(viewer, "image", results=True)
        self._model = info_label("model")
        self._load_button = button("Load model…", "Load a model file (.safetensors) as the current model")
        self._offset_y = SpinBox(label="ROI offset y", max=2**20, tooltip="Field row of the image's top-left pixel")
        self._offset_x = SpinBox(label="ROI offset x", max=2**20, tooltip="Field column of the image's top-left pixel")
        self._device = DevicePicker(self._state)
        self._live = CheckBox(text="Live preview of the visible plane")
        self._run_button = button("Deblur", "Deblur the whole layer (every plane) into a new layer")
        self._cancel_button = button("Cancel")
        self._cancel_button.enabled = False
        self._compare_button = button("Compare side by side",
                                      "Show the image and its deblurred result next to each other (click again "
                                      "to go back)")
        self._form = Container(widgets=[self._image, self._model, self._load_button, self._live])
        self._advanced_form = Container(widgets=[self._offset_y, self._offset_x, *self._device.widgets])
        self._buttons = Container(widgets=[self._run_button, self._cancel_button], layout="horizontal", labels=False)
        self._progress = QProgressBar()
        self._idle_progress()
        self._status = StatusLine()
        self._comparing: dict | None = None  # layer visibility before "compare", while comparing
        scrolling_layout(self, (self._form.native, collapsible("advanced", [self._advanced_form.native]),
                                self._buttons.native, self._progress, self._status, self._compare_button.native))

        self._preview_timer = QTimer(self)  # coalesce fast slider moves into one preview
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self._preview)
        self._run_button.clicked.connect(self._run)
        self._cancel_button.clicked.connect(self._cancel)
        self._load_button.clicked.connect(self._ask_load_model)
        self._compare_button.clicked.connect(self._toggle_compare)
        self._live.changed.connect(self._schedule_preview)
        self._image.changed.connect(self._schedule_preview)
        viewer.dims.events.current_step.connect(self._schedule_preview)
        self._state.events.model.connect(self._on_model)
        self._on_model(self._state.model)

    # -- napari hooks -------------------------------------------------------------------
    def reset_choices(self, *_) -> None:
        """Refresh the layer list (napari calls this when layers change)."""
        self._form.reset_choices()

    def _idle_progress(self) -> None:
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setFormat("idle")

    # -- model ----------------------------------------------------------------------------
    def _on_model(self, model) -> None:
        if model is None:
            self._model.value = "none yet: fine-tune one or load a file"
            return
        field = "x".join(map(str, model.field_shape)) if model.field_shape else "any"
        source = f", {self._state.model_source}" if self._state.model_source else ""
        self._model.value = f"{model.arch}({model.depth}), field {field}{source}"
        if self._status.level == "error" and "no model" in self._status.text():  # its cause is gone
            self._status.show_message("A model is ready: choose an image and click Deblur.", "info")
        self._schedule_preview()

    def _ask_load_model(self) -> None:
        path = ask_open_path(self, "Load a napari-coordgate model", "Models (*.safetensors)")
        if path:
            self.load_model(path)

    def load_model(self, path: str) -> None:
        """Load a model file and make it the current model of every widget."""
        load_current_model(self._state, path, "Deblur", self._status)

    # -- checks shared by run and preview -----------------------------------------------
    def _inputs(self, *, quiet: bool = False):
        """The chosen layer and the model, or None after saying what is missing."""
        layer, model = self._image.value, self._state.model
        problem = None
        if layer is None:
            problem = "choose an image layer"
        elif model is None:
            problem = "there is no model yet: fine-tune one or load a model file"
        elif layer.rgb:
            problem = f"'{layer.name}' is an RGB image; deblurring works on one channel at a time (split it first)"
        elif layer.multiscale:
            problem = f"'{layer.name}' is multiscale; deblur its full-resolution level as an ordinary layer"
        if problem is None:
            return layer, model
        self._status.show_message(problem, "error")
        if not quiet:
            show_error(f"Deblur: {problem}")
        return None

    @property
    def _offset(self) -> tuple[int, int]:
        return int(self._offset_y.value), int(self._offset_x.value)

    # -- full run -------------------------------------------------------------------------
    def _run(self) -> None:
        if self._worker is not None:
            return
        inputs = self._inputs()
        if inputs is None:
            return
        layer, model = inputs
        self._cancel_preview.set()  # the full run has priority over a preview
        self._cancel_run = threading.Event()
        worker = deblur_job(layer.data, model, self._offset, self._state.device, self._cancel_run, report=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result, layer=layer: self._add_result(layer, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._run_button.enabled, self._cancel_button.enabled = False, True
        self._status.show_message(f"Deblurring '{layer.name}' {tuple(layer.data.shape)}…", "busy")
        worker.start()

    def _cancel(self) -> None:
        self._cancel_run.set()

    def _on_progress(self, step) -> None:
        self._progress.setFormat("%v / %m tiles")
        self._progress.setMaximum(step.total)
        self._progress.setValue(step.done)
        if step.message:
            self._status.show_message(step.message, "warning")

    def _add_result(self, source, outcome) -> None:
        if outcome is None:
            self._status.show_message("Cancelled; no layer was added.", "warning")
            return
        result, change = outcome
        props = {key: getattr(source, key) for key in _COPIED if hasattr(source, key)}
        props["metadata"] = dict(source.metadata)
        # the source's contrast, so that toggling between the two compares like with like
        layer = show_image(self._viewer, f"{source.name} deblurred", result, role="result",
                           contrast_limits=tuple(source.contrast_limits), **props)
        self._result_pair = (source, layer)
        text = f"Added '{layer.name}' {result.shape}, shown with the source's contrast."
        self._status.show_message(text + (f"\n{change.sentence()}." if change is not None else ""), "ok")

    # -- comparing --------------------------------------------------------------------------
    def _toggle_compare(self) -> None:
        """Show the last source and result side by side (napari's grid), or go back."""
        viewer = self._viewer
        if self._comparing is not None:
            for layer, visible in self._comparing.items():
                if layer in viewer.layers:
                    layer.visible = visible
            self._comparing = None
            viewer.grid.enabled = False
            self._compare_button.text = "Compare side by side"
            return
        pair = [layer for layer in getattr(self, "_result_pair", ()) if layer in viewer.layers]
        if len(pair) != 2:
            show_error("Deblur: deblur an image first; then compare it with its result")
            return
        self._comparing = {layer: layer.visible for layer in viewer.layers}
        for layer in viewer.layers:
            layer.visible = layer in pair
        viewer.grid.enabled = True
        self._compare_button.text = "End comparison"

    def _on_error(self, err: Exception) -> None:
        report_error("Deblur", err, self._status)

    def _on_finished(self) -> None:
        self._worker = None
        self._run_button.enabled, self._cancel_button.enabled = True, False
        self._idle_progress()

    # -- live preview -----------------------------------------------------------------------
    def _schedule_preview(self, *_) -> None:
        if self._live.value:
            self._preview_timer.start()

    def _visible_plane(self, layer):
        """The (Y, X) plane of ``layer`` that the dims sliders show (not loaded:
        a lazy array is read by the worker, not here)."""
        if layer.ndim == 2:
            return layer.data
        position = layer.world_to_data(self._viewer.dims.point)
        leading = zip(position[:-2], layer.data.shape[:-2], strict=True)
        return layer.data[tuple(int(np.clip(round(p), 0, n - 1)) for p, n in leading)]

    def _preview(self) -> None:
        if not self._live.value or self._worker is not None:
            return
        if self._preview_worker is not None:  # restart on the new plane once this one stops
            self._preview_again = True
            self._cancel_preview.set()
            return
        inputs = self._inputs(quiet=True)
        if inputs is None:
            return
        layer, model = inputs
        plane = self._visible_plane(layer)
        self._cancel_preview = threading.Event()
        worker = deblur_job(plane, model, self._offset, self._state.device, self._cancel_preview)
        worker.returned.connect(lambda result, layer=layer: self._show_preview(layer, result))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_preview_finished)
        self._preview_worker = worker
        worker.start()

    def _show_preview(self, source, outcome) -> None:
        if outcome is None:  # cancelled: the slider moved on, or a full run started
            return
        scale, translate = image_plane_scale(source)
        name = f"{source.name} deblurred (preview)"
        show_image(self._viewer, name, outcome[0], scale=scale, translate=translate, colormap=source.colormap,
                   contrast_limits=tuple(source.contrast_limits))
        self._status.show_message("Preview updated.", "ok")

    def _on_preview_finished(self) -> None:
        self._preview_worker = None
        if self._preview_again:
            self._preview_again = False
            self._preview()
