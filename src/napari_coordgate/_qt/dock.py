"""Dock: what every napari-coordgate dock widget starts with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import napari
from qtpy.QtWidgets import QWidget

from ._threads import warm_up
from .dock_lifetime import tab_with_siblings, when_dock_closes
from .state import state_for

__all__ = ["Dock"]

_Request = TypeVar("_Request")


class Dock(QWidget):
    """A dock widget of this plugin: the viewer, the state its docks share, and room for one background job.

    Creating one warms up the slow imports its workers would otherwise make
    on first use (:func:`._threads.warm_up`).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        warm_up()
        self._viewer = viewer
        self._state = state_for(viewer)
        self._worker = None

    def _on_clicks(self, actions: Mapping) -> None:
        """Connect each button (a magicgui ``PushButton``) to the method its click runs."""
        for control, action in actions.items():
            control.clicked.connect(action)

    def _settle_in(self, on_close: Callable[[], None]) -> None:
        """The last step of set-up: ``on_close`` runs when the dock is closed, and the dock opens as a tab
        beside the plugin's other docks (see :mod:`.dock_lifetime`)."""
        when_dock_closes(self, on_close)
        tab_with_siblings(self)

    def _start_job(self, request: Callable[[], _Request | None], launch: Callable[[_Request], None]) -> None:
        """Start this dock's background job, unless one is running.

        ``request()`` reads and checks the inputs; it returns ``None`` after telling
        the user what is missing, and then nothing starts. Otherwise
        ``launch(inputs)`` creates and starts the worker.
        """
        if self._worker is not None:
            return
        inputs = request()
        if inputs is not None:
            launch(inputs)
