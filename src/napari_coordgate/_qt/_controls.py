"""Small controls shared by the dock widgets: a scrolling dock layout, collapsible
sections, layer choosers, a status line, file dialogs."""

from __future__ import annotations

import html

import napari.layers
from magicgui.widgets import ComboBox, Label, PushButton
from napari.utils.notifications import notification_manager, show_error
from qtpy.QtCore import QEvent, QSize, Qt
from qtpy.QtWidgets import QFileDialog, QFrame, QLabel, QPlainTextEdit, QScrollArea, QVBoxLayout, QWidget
from superqt import QCollapsible

from ._layers import is_plugin_output

__all__ = ["layer_combo", "info_label", "StatusLine", "ask_open_path", "ask_save_path", "button", "complain",
           "report_error", "scrolling_layout", "collapsible", "MessageLog"]

#: Smallest size of a dock's scroll area: docks can share a laptop screen and scroll.
_DOCK_MIN = (260, 120)

#: What the core raises for bad input or resources (with a message meant for
#: the user); anything else is a bug and is shown with its traceback.
USER_ERRORS = (ValueError, TypeError, MemoryError, OSError, RuntimeError)

_COLOURS = {"info": None, "busy": "#8ab4f8", "ok": "#7dcea0", "warning": "#f0b429", "error": "#ff6b6b"}


class _ContentWideScrollArea(QScrollArea):
    """A scroll area that scrolls up and down only: it asks for the width its content needs.

    Its minimum width follows the content's (which changes as sections open or
    controls show), so the dock is made wide enough and nothing is cut off or
    hidden behind a horizontal scroll bar; long text wraps instead.
    """

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        content = self.widget()
        width = 0 if content is None else content.minimumSizeHint().width()
        width += self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(width, _DOCK_MIN[0]), _DOCK_MIN[1])

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the content's minimum width may have changed
        return super().eventFilter(watched, event)


def scrolling_layout(widget: QWidget, parts) -> QVBoxLayout:
    """Lay ``parts`` (Qt widgets, top to bottom) out in a scroll area filling ``widget``.

    The dock can then be shorter than its content (several docks share one
    laptop screen; each scrolls), and never grows the napari window. It never
    scrolls sideways: the dock is made as wide as the content needs.
    Returns the inner layout (ends with a stretch).
    """
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = _ContentWideScrollArea(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    inner = QWidget()
    layout = QVBoxLayout(inner)
    for part in parts:
        layout.addWidget(part)
    layout.addStretch(1)
    area.setWidget(inner)
    outer.addWidget(area)
    return layout


def collapsible(title: str, parts, *, expanded: bool = False) -> QCollapsible:
    """A section that opens on a click (e.g. "advanced" options), holding ``parts``."""
    section = QCollapsible(title, expandedIcon="▼", collapsedIcon="▶")
    for part in parts:
        section.addWidget(part)
    if expanded:
        section.expand(animate=False)
    else:
        section.collapse(animate=False)
    return section


class MessageLog(QPlainTextEdit):
    """A read-only history of a widget's messages (the status line shows only the latest)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMinimumHeight(90)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

    def add(self, text: str) -> None:
        for line in str(text).splitlines() or [""]:
            self.appendPlainText(line)


def layer_combo(viewer, label: str, layer_type=napari.layers.Image, *, nullable: bool = False,
                results: bool = False) -> ComboBox:
    """A drop-down of the viewer's layers of ``layer_type``, without this plugin's outputs.

    The plugin's diagnostic layers (PSF montage, FWHM map, previews, gate maps,
    kernels) are never offered; its deblurred results only if ``results``.
    Its choices are read from the viewer whenever ``reset_choices()`` is
    called, which napari does when layers are added, removed, moved or renamed
    (for any dock widget that has a ``reset_choices`` method).
    """

    def choices(_widget):
        return [(layer.name, layer) for layer in viewer.layers
                if isinstance(layer, layer_type) and not is_plugin_output(layer, results_allowed=results)]

    return ComboBox(label=label, choices=choices, nullable=nullable)


def info_label(label: str) -> Label:
    """A read-only line of information that wraps instead of widening the dock."""
    widget = Label(label=label)
    widget.native.setWordWrap(True)
    return widget


def button(text: str, tooltip: str = "") -> PushButton:
    """A push button with a tooltip."""
    return PushButton(text=text, tooltip=tooltip or None)


class StatusLine(QLabel):
    """A word-wrapped status message, coloured by its level."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.level = "info"

    def show_message(self, text: str, level: str = "info") -> None:
        """Show ``text``; ``level`` is one of info, busy, ok, warning, error."""
        self.level = level
        colour = _COLOURS[level]
        escaped = html.escape(text).replace("\n", "<br>")
        self.setText(escaped if colour is None else f'<span style="color:{colour}">{escaped}</span>')


def complain(context: str, message: str, status: StatusLine) -> None:
    """A user's mistake (nothing to save, no calibration yet...): a napari error notification, and the same
    words in the dock's status line, which would otherwise keep an older, unrelated message."""
    status.show_message(message[:1].upper() + message[1:], "error")
    show_error(f"{context}: {message}")


def report_error(context: str, err: BaseException, status: StatusLine) -> None:
    """Show a worker's exception as a napari error notification and in ``status``.

    Connected to ``worker.errored`` of workers made with
    ``thread_worker(ignore_errors=True)``, so that errors are shown once, here,
    instead of being re-raised in the GUI thread.
    """
    status.show_message(f"{context} failed: {err}", "error")
    if isinstance(err, USER_ERRORS):
        show_error(f"{context}: {err}")
    else:  # a bug: keep the traceback reachable from the notification
        notification_manager.receive_error(type(err), err, err.__traceback__)


def ask_save_path(parent: QWidget, caption: str, file_filter: str) -> str:
    """Ask where to save a file; "" if the user cancels."""
    path, _ = QFileDialog.getSaveFileName(parent, caption, "", file_filter)
    return path


def ask_open_path(parent: QWidget, caption: str, file_filter: str) -> str:
    """Ask which file to open; "" if the user cancels."""
    path, _ = QFileDialog.getOpenFileName(parent, caption, "", file_filter)
    return path
