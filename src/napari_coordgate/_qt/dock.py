"""Dock: what every napari-coordgate dock widget starts with."""

from __future__ import annotations

import napari
from qtpy.QtWidgets import QWidget

from ._threads import warm_up
from .state import state_for

__all__ = ["Dock"]


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
