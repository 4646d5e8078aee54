"""A matplotlib canvas whose figure is updated and rendered in a worker thread.

Updating a figure and rendering it with Agg takes 0.1-0.5 s (more on a busy
CPU, and the first render loads fonts): far too long for napari's GUI thread.
:class:`ThreadedCanvas` does both in a ``thread_worker``; the GUI thread only
copies the finished image to the screen. ``figure_lock`` guards the figure and
its image buffer between the two threads.
"""

from __future__ import annotations

import threading

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.backends.qt_compat import _isdeleted
from matplotlib.figure import Figure
from napari.qt.threading import thread_worker
from qtpy.QtCore import QTimer
from qtpy.QtGui import QResizeEvent

__all__ = ["ThreadedCanvas"]


@thread_worker
def render_job(canvas: ThreadedCanvas, payload) -> None:
    """Put ``payload`` on the canvas's figure and render it with Agg, off the GUI thread."""
    with canvas.figure_lock:
        canvas.update_figure(payload)
        # what FigureCanvasAgg.draw does, without its request to Qt to repaint
        # (only the GUI thread may talk to Qt widgets)
        renderer = canvas.get_renderer()
        renderer.clear()
        canvas.figure.draw(renderer)


class ThreadedCanvas(FigureCanvasQTAgg):
    """A Qt canvas of ``figure`` that redraws in a worker thread.

    Subclasses implement :meth:`payload` (a snapshot of what to show, taken on
    the GUI thread) and :meth:`update_figure` (puts it on the figure, in the
    worker, with ``figure_lock`` held). :meth:`draw` asks for a redraw; draws
    asked for while one is rendering are merged into one more.
    """

    def __init__(self, figure: Figure) -> None:
        self.figure_lock = threading.Lock()
        self._rendering = False
        self._stale = False
        super().__init__(figure)

    def payload(self):
        """What to show, as data the worker may read while the GUI thread goes on."""
        return None

    def update_figure(self, payload) -> None:
        """Put ``payload`` on the figure; runs in the worker with ``figure_lock`` held."""

    def draw(self) -> None:
        """Render in a worker thread; the widget repaints when the image is ready."""
        if self._rendering:
            self._stale = True
            return
        self._rendering = True
        worker = render_job(self, self.payload())
        worker.finished.connect(self._rendered)
        worker.start()

    def _rendered(self) -> None:
        self._rendering = False
        if _isdeleted(self):
            return
        self.update()
        if self._stale:
            self._stale = False
            self.draw()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.figure_lock.acquire(blocking=False):
            return  # a render is writing the image; it repaints when done
        try:
            super().paintEvent(event)
        finally:
            self.figure_lock.release()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        # A render in a worker holds the figure (the first one loads fonts: up to a second); the GUI
        # thread does not wait for it but applies the widget's size once the render has let go.
        if not self.figure_lock.acquire(blocking=False):
            QTimer.singleShot(30, self._apply_size)
            return
        try:
            super().resizeEvent(event)
        finally:
            self.figure_lock.release()

    def _apply_size(self) -> None:
        if not _isdeleted(self):
            self.resizeEvent(QResizeEvent(self.size(), self.size()))
