"""The Deblur dock widget: apply the current model to any image layer."""

from __future__ import annotations

import threading
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, SpinBox
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QProgressBar

from ..files.batch import FileEvent, FileOptions, plan_batch
from ..inference import OUTPUT_DTYPES
from ._controls import (StatusLine, ask_open_path, button, collapsible, info_label, layer_combo, report_error,
                        scrolling_layout)
from ._layers import image_plane_scale, is_plugin_output, show_image
from ._model_files import load_current_model
from ._workers import LayerDone, deblur_folder_job, deblur_job, deblur_layers_job
from .device_picker import DevicePicker
from .dock import Dock

__all__ = ["DeblurWidget"]

_COPIED = ("scale", "translate", "rotate", "shear", "affine", "units", "axis_labels", "colormap")



class DeblurWidget(Dock):
    """Deblur an image layer (2D or an nD stack, any dtype) with the current model.

    *Deblur* adds ``"<name> deblurred"`` with the source's scale, translate
    and metadata; the source layer is never modified. *Live preview* deblurs
    the plane on screen whenever the dims slider moves. Errors (RGB layers,
    images that do not fit in the model's field, running out of memory) are
    shown as napari notifications and in the status line.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
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
        self._dtype = ComboBox(label="output dtype", choices=OUTPUT_DTYPES, value="float32",
                               tooltip="float32 keeps every value; 'input' (or an integer type) rounds and saturates "
                                       "at the type's limits, never wraps, and says how many pixels were clipped")
        self._all_button = button("Deblur all image layers",
                                  "Deblur every image layer (not the plugin's own layers) into its own new layer")
        self._folder_button = button("Deblur a folder…",
                                     "Deblur every image file of a folder into another folder, in the background")
        self._run_button = button("Deblur", "Deblur the whole layer (every plane) into a new layer")
        self._cancel_button = button("Cancel")
        self._cancel_button.enabled = False
        self._compare_button = button("Compare side by side",
                                      "Show the image and its deblurred result next to each other (click again "
                                      "to go back)")
        self._form = Container(widgets=[self._image, self._model, self._load_button, self._dtype, self._live])
        self._batch_buttons = Container(widgets=[self._all_button, self._folder_button], labels=False)
        self._advanced_form = Container(widgets=[self._offset_y, self._offset_x, *self._device.widgets])
        self._buttons = Container(widgets=[self._run_button, self._cancel_button], layout="horizontal", labels=False)
        self._progress = QProgressBar()
        self._idle_progress()
        self._status = StatusLine()
        self._comparing: dict | None = None  # layer visibility before "compare", while comparing
        self._compared = None  # while comparing: the result layer moved beside its source, and its translate
        self._batch_section = collapsible("batch", [self._batch_buttons.native])
        scrolling_layout(self, (self._form.native, collapsible("advanced", [self._advanced_form.native]),
                                self._buttons.native, self._batch_section,
                                self._progress, self._status, self._compare_button.native))

        self._preview_timer = QTimer(self)  # coalesce fast slider moves into one preview
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self._preview)
        self._on_clicks({self._run_button: self._run, self._cancel_button: self._cancel,
                         self._all_button: self.deblur_all_layers, self._folder_button: self._ask_folder,
                         self._load_button: self._ask_load_model, self._compare_button: self._toggle_compare})
        self._live.changed.connect(self._schedule_preview)
        self._image.changed.connect(self._schedule_preview)
        viewer.dims.events.current_step.connect(self._schedule_preview)
        self._state.events.model.connect(self._on_model)
        self._on_model(self._state.model)
        self._closed = False
        self._settle_in(self._on_dock_closed)

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
        self._start_job(self._inputs, self._launch)

    def _launch(self, inputs) -> None:
        layer, model = inputs
        self._cancel_preview.set()  # the full run has priority over a preview
        self._cancel_run = threading.Event()
        worker = deblur_job(layer.data, model, self._offset, self._state.device, self._cancel_run, report=True,
                            output_dtype=self._output_dtype)
        note = self._placement_note(layer, model)
        worker.returned.connect(lambda result, layer=layer, note=note: self._add_result(layer, result, note))
        self._start(worker, f"Deblurring '{layer.name}' {tuple(layer.data.shape)}…" + (f"\n{note}" if note else ""))

    def _placement_note(self, layer, model) -> str:
        """What to know when the image is smaller than the model's field: which part of the field it is taken for."""
        if not model.field_shape:
            return ""
        (h, w), (H, W) = layer.data.shape[-2:], model.field_shape
        if h >= H and w >= W:
            return ""
        oy, ox = self._offset
        return (f"'{layer.name}' ({h}x{w}) is smaller than the model's field ({H}x{W}): it is deblurred as the "
                f"part of the field at ROI offset ({oy}, {ox}) (under advanced); set the offset to where the image "
                "lies on the camera, or the PSFs of another part of the field are used.")

    @property
    def _output_dtype(self):
        return None if self._dtype.value == "float32" else self._dtype.value

    def _start(self, worker, message: str) -> None:
        worker.yielded.connect(self._on_progress)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        for b in (self._run_button, self._all_button, self._folder_button):
            b.enabled = False
        self._cancel_button.enabled = True
        self._status.show_message(message, "busy")
        worker.start()

    # -- batches ----------------------------------------------------------------------------
    def deblur_all_layers(self) -> None:
        """Deblur every image layer (except this plugin's outputs) into its own new layer."""
        if self._worker is not None:
            return
        model = self._state.model
        layers = [layer for layer in self._viewer.layers if isinstance(layer, napari.layers.Image)
                  and not is_plugin_output(layer) and not layer.rgb and not layer.multiscale]
        if model is None or not layers:
            problem = "there is no model yet: fine-tune one or load a model file" if model is None else \
                "there is no image layer to deblur (RGB and multiscale layers are skipped)"
            self._status.show_message(problem, "error")
            show_error(f"Deblur: {problem}")
            return
        self._cancel_preview.set()
        self._cancel_run = threading.Event()
        self._batch_sources = {layer.name: layer for layer in layers}
        self._batch_failed: list[str] = []
        self._batch_done = 0
        worker = deblur_layers_job([(layer.name, layer.data) for layer in layers], model, self._offset,
                                   self._state.device, self._output_dtype, self._cancel_run)
        worker.returned.connect(self._on_layers_done)
        self._start(worker, f"Deblurring {len(layers)} layers…")

    def _on_layer_done(self, item: LayerDone) -> None:
        source = self._batch_sources.get(item.name)
        if item.result is None or source is None or source not in self._viewer.layers:
            self._batch_failed.append(item.name)
            show_error(f"Deblur: '{item.name}' failed: {item.message}")
            return
        self._batch_done += 1
        self._add_result(source, (item.result, None, item.message))

    def _on_layers_done(self, outcome) -> None:
        n = len(self._batch_sources)
        if outcome is None:
            self._status.show_message(f"Cancelled after {self._batch_done} of {n} layers.", "warning")
            return
        failed = f"; failed: {', '.join(self._batch_failed)}" if self._batch_failed else ""
        self._status.show_message(f"Deblurred {self._batch_done} of {n} layers{failed}.",
                                  "warning" if self._batch_failed else "ok")

    def _ask_folder(self) -> None:
        source = QFileDialog.getExistingDirectory(self, "Folder of images to deblur")
        if not source:
            return
        target = QFileDialog.getExistingDirectory(self, "Folder to write the deblurred images to")
        if target:
            self.deblur_folder(source, target)

    def deblur_folder(self, source: str, target: str) -> None:
        """Deblur every image file of ``source`` into ``target`` (same names), in the background.

        Existing outputs are never replaced: the run is refused before it starts.
        """
        if self._worker is not None:
            return
        model = self._state.model
        try:
            if model is None:
                raise ValueError("there is no model yet: fine-tune one or load a model file")
            jobs, skipped = plan_batch(str(source), str(target), overwrite=False)
        except (OSError, ValueError) as err:
            self._status.show_message(str(err), "error")
            show_error(f"Deblur: {err}")
            return
        if skipped:
            show_warning(f"Deblur: skipping {len(skipped)} files that are not images "
                         f"({', '.join(p.name for p in skipped[:3])}{' …' if len(skipped) > 3 else ''})")
        self._cancel_preview.set()
        self._cancel_run = threading.Event()
        self._folder = (Path(target), len(jobs))
        self._batch_failed = []
        self._batch_done = 0
        options = FileOptions(offset=self._offset, device=self._state.device, output_dtype=self._output_dtype)
        worker = deblur_folder_job(jobs, model, options, self._cancel_run)
        worker.returned.connect(self._on_folder_done)
        self._start(worker, f"Deblurring {len(jobs)} files into {target}…")

    def _on_file_event(self, event: FileEvent) -> None:
        n = self._folder[1]
        if event.kind == "tiles":
            self._progress.setFormat(f"file {event.index + 1} / {n}: %v / %m tiles")
            self._progress.setMaximum(max(1, event.total))
            self._progress.setValue(event.done)
        elif event.kind == "failed":
            self._batch_failed.append(event.source.name)
            show_error(f"Deblur: {event.source.name} failed: {event.message}")
        else:
            self._batch_done += 1
            self._status.show_message(f"{self._batch_done} of {n} files: {event.message}", "busy")

    def _on_folder_done(self, failed) -> None:
        target, n = self._folder
        if failed is None:
            self._status.show_message(f"Cancelled after {self._batch_done} of {n} files (in {target}); the file "
                                      "being deblurred was not written.", "warning")
            return
        names = f"; failed: {', '.join(p.name for p, _ in failed)}" if failed else ""
        self._status.show_message(f"Deblurred {n - len(failed)} of {n} files into {target}{names}.",
                                  "warning" if failed else "ok")

    def _cancel(self) -> None:
        self._cancel_run.set()

    def _on_dock_closed(self) -> None:
        """The dock was closed: its runs and previews stop, and no result layer is added after that."""
        self._closed = True
        self._cancel_run.set()
        self._cancel_preview.set()

    def _on_progress(self, step) -> None:
        if isinstance(step, LayerDone):
            self._on_layer_done(step)
            return
        if isinstance(step, FileEvent):
            self._on_file_event(step)
            return
        self._progress.setFormat("%v / %m tiles")
        self._progress.setMaximum(step.total)
        self._progress.setValue(step.done)
        if step.message:
            self._status.show_message(step.message, "warning")

    def _add_result(self, source, outcome, note: str = "") -> None:
        if self._closed:
            return
        if outcome is None:
            self._status.show_message("Cancelled; no layer was added.", "warning")
            return
        result, change, clipped = outcome
        props = {key: getattr(source, key) for key in _COPIED if hasattr(source, key)}
        props["metadata"] = dict(source.metadata)
        name = f"{source.name} deblurred"
        replaced = name in self._viewer.layers
        # the source's contrast, so that toggling between the two compares like with like
        layer = show_image(self._viewer, name, result, role="result",
                           contrast_limits=tuple(source.contrast_limits), **props)
        self._result_pair = (source, layer)
        verb = "Replaced the earlier" if replaced else "Added"
        text = f"{verb} '{layer.name}' {result.shape} {result.dtype}, shown with the source's contrast."
        if clipped:
            text += f"\n{clipped}."
        if change is not None:
            text += f"\n{change.sentence()}."
        if note:
            text += f"\n{note}"
        self._status.show_message(text, "warning" if note and self._offset == (0, 0) else "ok")

    # -- comparing --------------------------------------------------------------------------
    def _toggle_compare(self) -> None:
        """Show the last source and its result side by side, or go back.

        The result is moved beside its source (its ``translate``, put back after) rather
        than napari's grid mode switched on: the grid gives every layer its own view and
        froze the window for over a second under software OpenGL.
        """
        viewer = self._viewer
        if self._comparing is not None:
            self._end_comparison()
            return
        pair = [layer for layer in getattr(self, "_result_pair", ()) if layer in viewer.layers]
        if len(pair) != 2:
            show_error("Deblur: deblur an image first; then compare it with its result")
            return
        source, result = pair
        self._comparing = {layer: layer.visible for layer in viewer.layers}
        self._camera_before_compare = (tuple(viewer.camera.center), viewer.camera.zoom)
        self._compared = (result, np.array(result.translate, dtype=float))
        for layer in viewer.layers:
            layer.visible = layer in pair
        (_, source_right), (result_left, _) = (layer.extent.world[:, -1] for layer in pair)
        width = source_right - source.extent.world[0, -1]
        shifted = np.array(result.translate, dtype=float)
        shifted[-1] += source_right - result_left + 0.03 * width  # a narrow gap between the two
        result.translate = shifted
        viewer.reset_view()  # the zoom of one image would cut each of the two in half
        self._compare_button.text = "End comparison"

    def _end_comparison(self) -> None:
        viewer = self._viewer
        result, translate = self._compared
        if result in viewer.layers:
            result.translate = translate
        for layer, visible in self._comparing.items():
            if layer in viewer.layers:
                layer.visible = visible
        self._comparing = self._compared = None
        center, zoom = self._camera_before_compare
        viewer.camera.center, viewer.camera.zoom = center, zoom  # back to where the user was looking
        self._compare_button.text = "Compare side by side"

    def _on_error(self, err: Exception) -> None:
        report_error("Deblur", err, self._status)

    def _on_finished(self) -> None:
        self._worker = None
        for b in (self._run_button, self._all_button, self._folder_button):
            b.enabled = True
        self._cancel_button.enabled = False
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
        if outcome is None or self._closed:  # cancelled: the slider moved on, a full run started, the dock closed
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
