"""The state the dock widgets share: one evented object per viewer.

A calibration made in the Calibration widget is the one the Fine-tune widget
trains for; the model it trains (or one loaded anywhere) is the one the
Deblur and Gate map widgets use. Widgets never reach into each other: they
write to this object and subscribe to its events
(``state.events.psf_field.connect(...)``).
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass
from typing import Any

from psygnal import evented

__all__ = ["CoordGateState", "state_for"]


@evented(
    equality_operators={
        # compare by identity: these hold arrays and tensors, and a new object
        # is always news, even when it happens to hold equal numbers
        "psf_field": operator.is_,
        "model": operator.is_,
        "training_set": operator.is_,
    }
)
@dataclass
class CoordGateState:
    """What the napari-coordgate widgets of one viewer share.

    Attributes
    ----------
    psf_field : PSFField or None
        The current calibration of the instrument.
    model : UNet, CGUNet or CoordConvUNet, or None
        The current model: the last one trained or loaded.
    model_source : str
        Where the current model came from, for display ("fine-tuned, 200 steps",
        a file name).
    device : str
        The compute device chosen by the user: ``"auto"``, ``"cpu"``,
        ``"cuda:N"`` or ``"mps"``.
    training_set : TrainingSet or None
        The last training set made, reused while the calibration and patch
        size stay the same.
    """

    psf_field: Any = None
    model: Any = None
    model_source: str = ""
    device: str = "auto"
    training_set: Any = None


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def state_for(viewer) -> CoordGateState:
    """The state shared by the widgets of ``viewer`` (created on first use).

    ``viewer`` may be the proxy napari hands to plugin widgets: the state
    belongs to the viewer behind it, and lives as long as that viewer.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = CoordGateState()
    return state
