"""The live training plot: losses and validation PSNR, embedded in the Fine-tune widget."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter
from qtpy.QtCore import QTimer

from .threaded_canvas import ThreadedCanvas

__all__ = ["TrainingPlot"]

_TEXT = "#d0d3d8"
_BACKGROUND = "#262930"  # napari's dark theme


class TrainingPlot(ThreadedCanvas):
    """Train loss, val loss (log scale) and val PSNR against training step.

    Feed it one record at a time with :meth:`add`. The figure is rendered in
    a worker thread (:class:`~.threaded_canvas.ThreadedCanvas`), at most once
    per ``redraw_ms``: training competes with the GUI thread for the cores.

    The input PSNR (the blurred validation images scored against the truth)
    is drawn as a dashed line: the validation PSNR should rise above it.
    """

    def __init__(self, redraw_ms: int = 1000) -> None:
        figure = Figure(figsize=(4.0, 3.2), dpi=80, facecolor=_BACKGROUND)
        figure.subplots_adjust(left=0.19, right=0.97, top=0.97, bottom=0.16, hspace=0.12)
        super().__init__(figure)
        self.loss_axes = figure.add_subplot(2, 1, 1)
        self.psnr_axes = figure.add_subplot(2, 1, 2, sharex=self.loss_axes)
        for axes in (self.loss_axes, self.psnr_axes):
            axes.set_facecolor(_BACKGROUND)
            axes.tick_params(colors=_TEXT, labelsize=8)
            for spine in axes.spines.values():
                spine.set_color(_TEXT)
        self.loss_axes.set_yscale("log")
        self.loss_axes.yaxis.set_major_locator(LogLocator(numticks=4))
        self.loss_axes.yaxis.set_minor_formatter(NullFormatter())
        self.loss_axes.tick_params(labelbottom=False)
        self.loss_axes.set_ylabel("loss", color=_TEXT, fontsize=9)
        self.psnr_axes.set_ylabel("val PSNR (dB)", color=_TEXT, fontsize=9)
        self.psnr_axes.set_xlabel("step", color=_TEXT, fontsize=9)
        (self._train_line,) = self.loss_axes.plot([], [], color="#8ab4f8", lw=1, label="train")
        (self._val_line,) = self.loss_axes.plot([], [], "o-", color="#f0b429", ms=3, lw=1, label="val")
        (self._psnr_line,) = self.psnr_axes.plot([], [], "o-", color="#7dcea0", ms=3, lw=1, label="network")
        self._input_line = self.psnr_axes.axhline(math.nan, color=_TEXT, ls="--", lw=0.8, label="blurred input")
        for axes in (self.loss_axes, self.psnr_axes):
            axes.legend(loc="upper right", fontsize=7, facecolor=_BACKGROUND, labelcolor=_TEXT, edgecolor=_TEXT)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(redraw_ms)
        self._redraw.timeout.connect(self.draw)
        self.clear()

    # -- data ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget all points (a new training run)."""
        self.steps: list[int] = []
        self.train_loss: list[float] = []
        self.val_steps: list[int] = []
        self.val_loss: list[float] = []
        self.val_psnr: list[float] = []
        self.input_psnr = math.nan
        self.draw()

    def add(self, record) -> None:
        """Add one training record (a ``TrainingProgress``); redraws soon."""
        if record.train_loss is not None:  # None for the validation before training
            self.steps.append(record.step)
            self.train_loss.append(record.train_loss)
        if record.val_loss is not None:
            self.val_steps.append(record.step)
            self.val_loss.append(record.val_loss)
            self.val_psnr.append(record.val_psnr)
            self.input_psnr = record.input_psnr
        if not self._redraw.isActive():
            self._redraw.start()

    def update_figure(self, series: dict) -> None:
        """Show ``series`` (as made by :meth:`payload`); runs with ``figure_lock`` held."""
        self._train_line.set_data(series["steps"], series["train_loss"])
        self._val_line.set_data(series["val_steps"], series["val_loss"])
        self._psnr_line.set_data(series["val_steps"], series["val_psnr"])
        self._input_line.set_ydata([series["input_psnr"]] * 2)
        empty = not series["steps"] and not series["val_steps"]
        for axes in (self.loss_axes, self.psnr_axes):
            if empty:  # no data yet: a plain frame, not autoscaled nonsense around 0
                axes.set_xlim(0, 1)
            else:
                axes.relim()
                axes.autoscale(enable=True)  # set_xlim/set_ylim of the empty plot switched it off
                axes.autoscale_view()
        if empty:
            self.loss_axes.set_ylim(1e-3, 1e-1)
            self.psnr_axes.set_ylim(20, 30)

    def payload(self) -> dict:
        return dict(steps=list(self.steps), train_loss=list(self.train_loss), val_steps=list(self.val_steps),
                    val_loss=list(self.val_loss), val_psnr=list(self.val_psnr), input_psnr=self.input_psnr)
