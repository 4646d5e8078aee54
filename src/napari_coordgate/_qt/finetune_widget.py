"""The Fine-tune dock widget: train a model for the current calibration, live."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FloatSpinBox, LineEdit, SpinBox
from napari.utils.notifications import show_info

from ..data.training_set import TrainingSet
from ..model_files import save_model
from ..models.unet import UNet
from ..pretrained import FINE_TUNE_LR, SCRATCH_LR
from ..pretrained.starting_model import starting_model
from ..training import TrainingProgress
from ._controls import (StatusLine, ask_open_path, ask_save_path, button, collapsible, complain, info_label,
                        layer_combo, report_error, scrolling_layout)
from ._model_files import load_current_model
from ._workers import export_job, training_job
from .device_picker import DevicePicker
from .dock import Dock
from .training_monitor import TrainingMonitor

__all__ = ["FineTuneWidget"]

STEPS_PER_EPOCH = 100
ARCHITECTURES = [("CG U-Net", "CGUNet"), ("U-Net (baseline)", "UNet"), ("CoordConv U-Net (baseline)", "CoordConvUNet")]


class FineTuneWidget(Dock):
    """Train a CG U-Net (or a baseline) on the current calibration.

    Training runs in a worker thread; every step updates the progress bars,
    the speed and time-left read-outs and the live plot, and each validation
    updates the deblurred validation image drawn under the plot. *Stop* ends training
    at the next step, keeping the best weights seen. The trained model
    becomes the current model of every widget.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._cancel = threading.Event()
        self._model_in_training = None
        self._last_record: TrainingProgress | None = None

        self._calibration = info_label("calibration")
        self._arch = ComboBox(label="model", choices=ARCHITECTURES, value="CGUNet")
        self._depth = SpinBox(label="depth", value=3, min=1, max=6, tooltip="U-Net levels (poolings + 1)")
        self._width = SpinBox(label="width", value=16, min=2, max=128, tooltip="Channels at full resolution")
        self._start_from = ComboBox(
            label="start from", value="base",
            choices=[("base model (CG U-Net(3), 16)", "base"), ("scratch", "scratch"), ("current model", "current")],
            tooltip="base model: the shipped CG U-Net trained on many simulated lenses, which already deblurs "
                    "(fastest); scratch: a new model of the chosen architecture; current model: train it further")
        self._length = SpinBox(label="train for", value=3, min=1, max=10**6)
        self._unit = ComboBox(label="in", choices=["minutes", "steps", "epochs"], value="minutes",
                              tooltip="Minutes of wall-clock time (the learning rate follows the clock), or steps; "
                                      f"an epoch is {STEPS_PER_EPOCH} steps (patches are drawn endlessly)")
        self._batch = SpinBox(label="batch size", value=8, min=1, max=512)
        self._patch = SpinBox(label="patch size", value=64, min=16, max=1024, step=16)
        self._lr = FloatSpinBox(label="learning rate", value=FINE_TUNE_LR, min=1e-6, max=1.0, step=1e-4,
                                tooltip="Adam's learning rate; the default follows 'start from': "
                                        f"{FINE_TUNE_LR:g} from the base model, {SCRATCH_LR:g} otherwise")
        self._noise = layer_combo(viewer, "noise from", nullable=True)
        self._noise.tooltip = ("Choose an image like those you will deblur: its camera noise is estimated and the "
                               "model learns to remove that much (measured: 0.3-0.6 dB better than the bead slide's "
                               "noise, docs/benchmarks.md). None: a typical camera (200 photons)")
        self._device = DevicePicker(self._state)
        self._start_button = button("Start", "Train in the background")
        self._stop_button = button("Stop", "Stop at the next step, keeping the best model")
        self._stop_button.enabled = False
        self._save_button = button("Save model…")
        self._load_button = button("Load model…")
        self._form = Container(widgets=[
            self._calibration, self._start_from, self._arch, self._depth, self._width, self._length, self._unit,
            self._noise,
        ])
        self._advanced_form = Container(widgets=[self._batch, self._patch, self._lr, *self._device.widgets])
        self._run_row = Container(widgets=[self._start_button, self._stop_button], layout="horizontal", labels=False)
        self._file_row = Container(widgets=[self._save_button, self._load_button], layout="horizontal", labels=False)
        self._export_author = LineEdit(label="authors", tooltip="Your name(s), separated by ';' (in the package)")
        self._export_license = LineEdit(label="licence", value="BSD-3-Clause", tooltip="SPDX licence identifier")
        self._export_button = button("Export for BioImage.IO…",
                                     "Write the current model as a BioImage.IO model package (.zip), for the "
                                     "Model Zoo, deepImageJ or bioimageio.core")
        self._export_form = Container(widgets=[self._export_author, self._export_license, self._export_button])
        self._export_worker = None
        self._export_section = collapsible("BioImage.IO export", [self._export_form.native])
        self.monitor = TrainingMonitor()
        self._status = StatusLine()
        scrolling_layout(self, (self._form.native, collapsible("advanced", [self._advanced_form.native]),
                                self._run_row.native, self._status, self.monitor, self._file_row.native,
                                self._export_section))

        self._on_clicks({self._start_button: self._start, self._stop_button: self._stop,
                         self._save_button: self._ask_save, self._load_button: self._ask_load,
                         self._export_button: self._ask_export})
        self._start_from.changed.connect(self._on_start_from)
        self._state.events.psf_field.connect(self._on_psf_field)
        self._on_psf_field(self._state.psf_field)
        self._on_start_from(self._start_from.value)
        self._settle_in(self._on_dock_closed)

    def reset_choices(self, *_) -> None:
        """Refresh the layer list (napari calls this when layers change)."""
        self._form.reset_choices()
        self._advanced_form.reset_choices()

    def _on_psf_field(self, field) -> None:
        if field is None:
            self._calibration.value = "none yet: use the Calibration widget"
        else:
            self._calibration.value = f"{field.kind}, field {field.field_shape[0]}x{field.field_shape[1]}"

    def _on_start_from(self, start: str) -> None:
        if start == "base":
            self._arch.value, self._depth.value, self._width.value = "CGUNet", 3, 16
        # the learning rate follows the start, unless the user has set one of their own
        if self._lr.value in (FINE_TUNE_LR, SCRATCH_LR):
            self._lr.value = FINE_TUNE_LR if start == "base" else SCRATCH_LR
        for control in (self._arch, self._depth, self._width):
            control.enabled = start == "scratch"

    # -- starting -------------------------------------------------------------------------
    def _new_model(self, field_shape):
        """The model to start from: the current model (which the worker copies, so that
        other widgets can keep using it meanwhile), or a function that makes the new one
        in the worker (loading the base model takes a few hundred milliseconds)."""
        if self._start_from.value == "current":
            if self._state.model is None:
                raise ValueError("there is no current model to start from: train from scratch or load one")
            return self._state.model
        return functools.partial(self._starting_model, self._start_from.value, self._arch.value, self._depth.value,
                                 self._width.value, tuple(field_shape))

    @staticmethod
    def _starting_model(*args):
        model, _ = starting_model(*args)
        return model

    def _reusable_training_set(self, field, patch_size: int, noise_layer) -> TrainingSet | None:
        """The training set of the last run, if it was made for this calibration and these settings (the
        worker checks that it also suits the model's normalisation and alignment)."""
        data = self._state.training_set
        if data is None or data.psf_field is not field or data.patch_size != patch_size or noise_layer is not None:
            return None
        return data

    def _start(self) -> None:
        self._start_job(self._inputs, self._launch)

    def _inputs(self):
        """The calibration and the model to train, or None after saying what is missing."""
        field = self._state.psf_field
        if field is None:
            complain("Fine-tune", "there is no calibration yet; make one in the Calibration widget (or load one)",
                     self._status)
            return None
        try:
            return field, self._new_model(field.field_shape)
        except ValueError as err:
            complain("Fine-tune", str(err), self._status)
            return None

    def _launch(self, inputs) -> None:
        field, model = inputs
        patch, noise_layer = self._patch.value, self._noise.value
        data_options = dict(patch_size=patch, noise="auto",
                            calibration_image=None if noise_layer is None else noise_layer.data)
        unit, length = self._unit.value, self._length.value
        how = {"time_budget_s": 60.0 * length} if unit == "minutes" else {unit: length}
        train_options = dict(lr=self._lr.value, batch_size=self._batch.value, device=self._state.device,
                             steps_per_epoch=STEPS_PER_EPOCH, **how)
        total = length * {"minutes": 60, "epochs": STEPS_PER_EPOCH, "steps": 1}[unit]  # minutes: a first guess
        self._cancel = threading.Event()
        worker = training_job(model, model is self._state.model, field,
                              self._reusable_training_set(field, patch, noise_layer),
                              data_options, train_options, self._cancel)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(lambda err: report_error("Fine-tune", err, self._status))
        worker.finished.connect(self._on_finished)
        self._worker, self._model_in_training, self._last_record, self._best_record = worker, None, None, None
        self._started_from = self._start_from.value
        self.monitor.reset(total, STEPS_PER_EPOCH)
        self._start_button.enabled, self._stop_button.enabled = False, True
        self._span = f"{length} min" if unit == "minutes" else f"{total} steps"
        self._status.show_message(f"Training for {self._span}…", "busy")
        worker.start()

    def _stop(self) -> None:
        self._cancel.set()
        self._status.show_message("Stopping after this step; the best model is kept…", "busy")

    def _on_dock_closed(self) -> None:
        """The dock was closed: a training stops as with Stop (its best model becomes the current one)."""
        if self._worker is None or self._cancel.is_set():
            return
        self._stop()
        show_info("Fine-tune: its dock was closed, so the training stops now; the best model so far becomes "
                  "the current model (save it from the Fine-tune dock, or run it from Deblur)")

    # -- while training -------------------------------------------------------------------
    def _on_yielded(self, item) -> None:
        """Handle one item from the training job, by type."""
        if isinstance(item, UNet):
            self._model_in_training = item
            self._status.show_message(f"Training {item.arch}({item.depth}) for {self._span}…", "busy")
        elif isinstance(item, str):
            self._status.show_message(item, "busy")
        elif isinstance(item, TrainingSet):
            self._state.training_set = item
        elif isinstance(item, TrainingProgress):
            self._last_record = item
            if item.is_best or (item.val_psnr is not None and self._best_record is None):
                self._best_record = item
            self.monitor.show_record(item)
            if item.val_psnr is not None:  # the status says where training is now
                text = (f"Training: step {item.step} of about {item.total_steps}; validation PSNR "
                        f"{item.val_psnr:.2f} dB (blurred input {item.input_psnr:.2f} dB).")
                self._status.show_message(f"{text} {item.message[:1].upper()}{item.message[1:]}".strip(), "busy")

    def _on_returned(self, result) -> None:
        model, record = self._model_in_training, self._last_record
        if record is None:  # stopped before the first validation: nothing learned
            self._status.show_message("Stopped before training began; the current model is unchanged.", "warning")
            return
        best = self.monitor.best.text()
        how = "stopped" if result is None else ("stopped early" if result.stopped_early else "finished")
        self._state.model_source = f"fine-tuned ({how} at step {record.step})"
        model.metadata = {**dict(getattr(model, "metadata", None) or {}), "training": self._summary(how, record)}
        field = self._state.psf_field
        if field is not None:
            model.metadata["psf_field"] = field.summary()
        self._state.model = model
        self._status.show_message(f"Training {how} at step {record.step}. Best val PSNR {best}.", "ok")

    def _summary(self, how: str, record) -> dict:
        """What a saved or exported model records about this training (JSON-able)."""
        best = self._best_record or record
        summary = {"how": how, "steps": int(record.step), "elapsed_s": float(record.elapsed_s),
                   "device": str(record.device), "started_from": str(self._started_from),
                   "input_psnr": float(record.input_psnr), "input_ssim": float(record.input_ssim)}
        if best.val_psnr is not None:
            summary.update(best_step=int(best.step), val_psnr=float(best.val_psnr), val_ssim=float(best.val_ssim),
                           val_psnr_edge=float(best.val_psnr_edge), input_psnr_edge=float(best.input_psnr_edge))
        return summary

    def _on_finished(self) -> None:
        self._worker = None
        self._start_button.enabled, self._stop_button.enabled = True, False
        self.monitor.finish()

    # -- files ----------------------------------------------------------------------------
    def _ask_model_path(self, what: str, caption: str, file_filter: str) -> str:
        """Where to write the current model ("" when there is none, or the user cancelled)."""
        if self._state.model is None:
            complain("Fine-tune", f"there is no model to {what} yet", self._status)
            return ""
        return ask_save_path(self, caption, file_filter)

    def _ask_save(self) -> None:
        path = self._ask_model_path("save", "Save the model", "Models (*.safetensors)")
        if path:
            self.save_model(path)

    def save_model(self, path: str) -> Path:
        """Save the current model (adds ``.safetensors`` if missing), with its
        calibration summary as metadata."""
        path = Path(path)
        path = path if path.suffix == ".safetensors" else path.with_suffix(".safetensors")
        field = self._state.psf_field
        metadata = {**dict(getattr(self._state.model, "metadata", None) or {}), "source": self._state.model_source}
        if field is not None and tuple(field.field_shape) == tuple(self._state.model.field_shape or ()):
            metadata["psf_field"] = field.summary()
        try:
            save_model(self._state.model, path, **metadata)
        except (OSError, TypeError) as err:
            complain("Fine-tune", f"cannot save the model: {err}", self._status)
            return path
        self._status.show_message(f"Saved the model to {path.name}.", "ok")
        return path

    def _ask_export(self) -> None:
        path = self._ask_model_path("export", "Export for BioImage.IO", "BioImage.IO packages (*.zip)")
        if path:
            self.export_bioimageio(path)

    def export_bioimageio(self, path: str) -> None:
        """Export the current model as a BioImage.IO package (adds ``.zip`` if missing), in the background."""
        model = self._state.model
        if model is None:
            complain("Fine-tune", "there is no model to export yet", self._status)
            return
        if self._export_worker is not None:
            return
        path = str(path if str(path).lower().endswith(".zip") else Path(path).with_suffix(".zip"))
        authors = [a.strip() for a in self._export_author.value.split(";") if a.strip()] or None
        options = {"authors": authors, "license": self._export_license.value.strip() or "BSD-3-Clause"}
        worker = export_job(model, path, options)
        worker.returned.connect(self._on_exported)
        worker.errored.connect(lambda err: report_error("Fine-tune: BioImage.IO export", err, self._status))
        worker.finished.connect(self._on_export_finished)
        self._export_worker = worker
        self._export_button.enabled = False
        self._status.show_message(f"Exporting to {Path(path).name}…", "busy")
        worker.start()

    def _on_exported(self, path) -> None:
        text = f"Exported {Path(path).name}: a BioImage.IO package, input fixed at the model's full field."
        self._status.show_message(text, "ok")
        show_info(f"Fine-tune: {text}")

    def _on_export_finished(self) -> None:
        self._export_worker = None
        self._export_button.enabled = True

    def _ask_load(self) -> None:
        path = ask_open_path(self, "Load a model", "Models (*.safetensors)")
        if path:
            self.load_model(path)

    def load_model(self, path: str) -> None:
        """Load a model file and make it the current model of every widget
        (choose "start from: current model" to fine-tune it)."""
        load_current_model(self._state, path, "Fine-tune", self._status)
