"""Loading a model file as the current model of every widget."""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info

from ..model_files import load_model
from ._controls import StatusLine
from .state import CoordGateState

__all__ = ["load_current_model"]


def load_current_model(state: CoordGateState, path: str, context: str, status: StatusLine) -> bool:
    """Load ``path`` into ``state.model``; say what happened. False if it could not be read."""
    try:
        model = load_model(path)
    except (OSError, ValueError) as err:
        show_error(f"{context}: cannot load the model: {err}")
        status.show_message(str(err), "error")
        return False
    name = Path(path).name
    state.model_source = name
    state.model = model
    show_info(f"Loaded {model.arch}({model.depth}) from {name}")
    status.show_message(f"Loaded {name}: the current model of every widget.", "ok")
    return True
