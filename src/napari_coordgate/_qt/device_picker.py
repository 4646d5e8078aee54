"""The compute-device chooser, bound to the shared state's ``device``."""

from __future__ import annotations

from magicgui.widgets import ComboBox

from ..device import available_devices, describe_device
from ._controls import info_label
from .state import CoordGateState

__all__ = ["DevicePicker"]


class DevicePicker:
    """A device combo (auto, cpu, cuda:N, mps) and a label saying what the
    choice resolves to (e.g. "cuda:0 (NVIDIA H200, 139.8 GiB)").

    Every picker writes ``state.device`` and follows it, so the device chosen
    in one widget is the device of all of them. Put :attr:`widgets` in a form.
    """

    def __init__(self, state: CoordGateState) -> None:
        self._state = state
        self.combo = ComboBox(label="device", choices=available_devices(), value=self._valid(state.device))
        self.found = info_label("found")
        self.widgets = (self.combo, self.found)
        self.combo.changed.connect(self._on_combo)
        state.events.device.connect(self._on_state)
        self._describe(self.combo.value)

    def _valid(self, device: str) -> str:
        return device if device in available_devices() else "auto"

    def _describe(self, device: str) -> None:
        try:
            found = describe_device(device)
        except ValueError as err:
            found = str(err)
        self.found.value = found if device != "auto" else f"auto: {found}"

    def _on_combo(self, device: str) -> None:
        self._state.device = device
        self._describe(device)

    def _on_state(self, device: str) -> None:
        self.combo.value = self._valid(device)
