"""A dock widget's life in napari's window: where it opens, and its work ending when it is closed."""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow

__all__ = ["when_dock_closes", "tab_with_siblings"]


def _is_ours(widget) -> bool:
    return widget is not None and type(widget).__module__.startswith("napari_coordgate._qt")


def _tab_with_siblings(widget) -> None:
    dock = widget.parent()
    window = dock.parent() if isinstance(dock, QDockWidget) else None
    if not isinstance(window, QMainWindow) or dock.isFloating():
        return
    area = window.dockWidgetArea(dock)
    siblings = [other for other in window.findChildren(QDockWidget)
                if other is not dock and _is_ours(other.widget()) and not other.isFloating()
                and not other.isHidden() and window.dockWidgetArea(other) == area]
    if siblings:
        window.tabifyDockWidget(siblings[0], dock)
        dock.show()
        dock.raise_()


class _DockWatcher(QObject):
    def __init__(self, widget, on_close: Callable[[], None] | None, tab: bool) -> None:
        super().__init__(widget)
        self._on_close, self._tab = on_close, tab

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.ParentChange:
            parent = watched.parent()
            # napari's close button takes the widget out of its dock (setParent(None)) and drops the dock.
            if parent is None and self._on_close is not None:
                self._on_close()
            # Put in a dock: napari adds the dock to its window once this returns.
            elif isinstance(parent, QDockWidget) and self._tab:
                QTimer.singleShot(0, lambda: _tab_with_siblings(watched))
        return False


def when_dock_closes(widget, callback: Callable[[], None]) -> None:
    """Call ``callback`` when ``widget`` is taken out of its napari dock (the dock's close button).

    Hiding the dock (its hide button, or another tab in front of it) does not count: the work of a
    hidden dock goes on and shows when the dock is shown again.
    """
    widget.installEventFilter(_DockWatcher(widget, callback, tab=False))


def tab_with_siblings(widget) -> None:
    """When ``widget`` is docked, make its dock a tab beside this plugin's docks already in that area.

    napari stacks docks opened from the Plugins menu one above the other, each a sliver of a laptop
    screen's height; as tabs each dock gets the full height.
    """
    widget.installEventFilter(_DockWatcher(widget, None, tab=True))
