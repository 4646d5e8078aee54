"""What the Fine-tune widget shows while training: progress bars, rates and the live plot."""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QFormLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from .training_plot import TrainingPlot

__all__ = ["TrainingMonitor", "PreviewImage", "format_duration"]


def format_duration(seconds: float) -> str:
    """``75.2 -> "1 min 15 s"``; ``"–"`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class PreviewImage(QLabel):
    """A small grey-scale picture of the latest validation result, drawn in the dock.

    Showing it here, rather than as a napari layer, costs a few milliseconds
    per update: a new layer takes 100-300 ms of the GUI thread to build.
    """

    def __init__(self, side: int = 160, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._side = side
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(side)
        self.setText("validation preview: after the first validation")
        self.image: np.ndarray | None = None

    def show_array(self, image: np.ndarray) -> None:
        """Show ``image`` (2D), stretched between its 1st and 99th percentiles."""
        image = np.asarray(image, np.float32)
        low, high = np.percentile(image, (1, 99))
        scaled = np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)
        self.image = np.ascontiguousarray((255 * scaled).astype(np.uint8))
        h, w = self.image.shape
        qimage = QImage(self.image.data, w, h, w, QImage.Format.Format_Grayscale8)
        self.setPixmap(QPixmap.fromImage(qimage).scaled(self._side, self._side, Qt.AspectRatioMode.KeepAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation))

    def clear_image(self) -> None:
        self.image = None
        self.clear()
        self.setText("validation preview: after the first validation")


class TrainingMonitor(QWidget):
    """Epoch and step progress bars, speed, time left, best score and the live plot.

    `show_record` takes one ``TrainingProgress`` record at a time.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("epoch %v / %m")
        self.step_bar = QProgressBar()
        self.step_bar.setFormat("step %v / %m")
        self.speed = QLabel("–")
        self.elapsed = QLabel("–")
        self.remaining = QLabel("–")
        self.best = QLabel("–")
        self.device = QLabel("–")
        self.plot = TrainingPlot()
        self.plot.setMinimumHeight(220)
        self.preview = PreviewImage()
        for label in (self.speed, self.elapsed, self.remaining, self.best, self.device):
            label.setWordWrap(True)  # long read-outs wrap instead of widening the dock
        form = QFormLayout()
        for label, value in (("speed", self.speed), ("elapsed", self.elapsed), ("time left", self.remaining),
                             ("best val PSNR", self.best), ("running on", self.device)):
            form.addRow(label, value)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.epoch_bar)
        layout.addWidget(self.step_bar)
        layout.addLayout(form)
        layout.addWidget(self.plot)
        layout.addWidget(QLabel("deblurred validation image (latest):"))
        layout.addWidget(self.preview)

    def reset(self, total_steps: int, steps_per_epoch: int) -> None:
        """Prepare for a new run of ``total_steps`` (a first guess under a time budget)."""
        self._steps_per_epoch = steps_per_epoch
        self.step_bar.setRange(0, total_steps)
        self.step_bar.setValue(0)
        self.epoch_bar.setRange(0, max(1, math.ceil(total_steps / steps_per_epoch)))
        self.epoch_bar.setValue(0)
        for label in (self.speed, self.elapsed, self.remaining, self.best):
            label.setText("–")
        self.plot.clear()
        self.preview.clear_image()

    def finish(self) -> None:
        """The run has ended: nothing is left to wait for."""
        self.remaining.setText("–")
        if self.step_bar.value() > 0:
            self.step_bar.setMaximum(self.step_bar.value())
            self.epoch_bar.setMaximum(max(1, self.epoch_bar.value()))

    def show_record(self, record) -> None:
        """Show one training record."""
        self.step_bar.setMaximum(record.total_steps)  # re-estimated from the speed under a time budget
        self.step_bar.setValue(record.step)
        self.epoch_bar.setMaximum(max(1, math.ceil(record.total_steps / getattr(self, "_steps_per_epoch", 100))))
        self.epoch_bar.setValue(record.epoch)
        self.speed.setText(f"{record.samples_per_s:.1f} samples/s" if record.samples_per_s else "–")
        self.elapsed.setText(format_duration(record.elapsed_s))
        self.remaining.setText(format_duration(record.eta_s) if record.step else "–")
        self.device.setText(record.device)
        if record.is_best and record.val_psnr is not None:
            gain = record.val_psnr - record.input_psnr
            self.best.setText(f"{record.val_psnr:.2f} dB at step {record.step} ({gain:+.2f} dB over the input)")
        self.plot.add(record)
        if record.preview is not None:
            self.preview.show_array(record.preview)
