"""What the Fine-tune widget shows while training: progress bars, rates and the live plot."""

from __future__ import annotations

import math

from qtpy.QtWidgets import QFormLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from .training_plot import TrainingPlot

__all__ = ["TrainingMonitor", "format_duration"]


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
