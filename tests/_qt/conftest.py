"""Fixtures for the widget tests: a viewer, widgets loaded through the manifest,
a small calibrated instrument and a small model.

Everything is small (64 x 64 fields, 4-channel networks) so that the whole Qt
suite runs in a few minutes on two CPU cores.
"""

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet
from napari_coordgate._qt.state import state_for
from napari_coordgate.psf.optics.simulate import simulate_lens

PLUGIN = "napari-coordgate"
FIELD = (64, 64)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def state(viewer):
    """The state shared by this viewer's napari-coordgate widgets."""
    return state_for(viewer)


@pytest.fixture
def open_widget(viewer):
    """Open a dock widget the way a user does: through the plugin manifest."""

    def open_(name: str):
        _, widget = viewer.window.add_plugin_dock_widget(plugin_name=PLUGIN, widget_name=name)
        return widget

    return open_


@pytest.fixture(scope="session")
def small_lens():
    """A 64 x 64 simulated instrument, blurred towards the edges."""
    return simulate_lens(FIELD, grid=(2, 2), defocus_edge=1.0, astigmatism_edge=0.3)


@pytest.fixture
def small_model():
    """An untrained 2-level CG U-Net for the 64 x 64 field."""
    torch.manual_seed(0)
    return CGUNet(depth=2, field_shape=FIELD, base_channels=4).eval()


@pytest.fixture
def calibrated(state, small_lens, small_model):
    """The shared state with a calibration and a current model, as after fine-tuning."""
    state.psf_field = small_lens
    state.model_source = "test model"
    state.model = small_model
    return state


class Notifications(list):
    """The napari notifications shown during a test, in order."""

    def messages(self, severity: str) -> list[str]:
        """Messages of one severity: "error", "warning" or "info"."""
        return [str(n.message) for n in self if str(n.severity).lower() == severity]

    @property
    def errors(self) -> list[str]:
        return self.messages("error")

    @property
    def warnings(self) -> list[str]:
        return self.messages("warning")


@pytest.fixture
def notifications():
    from napari.utils.notifications import notification_manager

    seen = Notifications()

    def collect(notification):
        seen.append(notification)

    notification_manager.notification_ready.connect(collect)
    yield seen
    notification_manager.notification_ready.disconnect(collect)


@pytest.fixture
def click(qtbot):
    """Click a magicgui button as a user would."""
    from qtpy.QtCore import Qt

    def click_(magicgui_button):
        assert magicgui_button.enabled, f"{magicgui_button.text!r} is disabled"
        qtbot.mouseClick(magicgui_button.native, Qt.MouseButton.LeftButton)

    return click_


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class GapMeter:
    """Measures how long the Qt event loop goes without running a 20 ms timer.

    A gap far above 20 ms means the GUI thread was busy (or a worker held the
    GIL) for that long: the user saw a frozen window. ``phase(name)`` labels
    the gaps that follow; ``worst(name)`` is the longest gap of a phase in
    seconds.
    """

    def __init__(self) -> None:
        import time

        from qtpy.QtCore import QTimer

        self._clock = time.perf_counter
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._tick)
        self.gaps: dict[str, list[float]] = {}
        self.when: dict[str, list[float]] = {}  # the clock at the end of each gap
        self._phase = None
        self._last = None

    def _tick(self) -> None:
        now = self._clock()
        if self._phase is not None and self._last is not None:
            self.gaps[self._phase].append(now - self._last)
            self.when[self._phase].append(now)
        self._last = now

    def phase(self, name: str) -> None:
        self._phase = name
        self.gaps.setdefault(name, [])
        self.when.setdefault(name, [])
        self._last = self._clock()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._phase = None

    def longest(self, name: str, n: int = 5) -> list[tuple[float, float]]:
        """The ``n`` longest gaps of a phase as ``(seconds, clock at the end)``."""
        return sorted(zip(self.gaps.get(name, []), self.when.get(name, [])), reverse=True)[:n]

    def worst(self, name: str) -> float:
        return max(self.gaps.get(name) or [0.0])

    def report(self) -> str:
        return ", ".join(f"{name} {1000 * self.worst(name):.0f} ms (n={len(g)})" for name, g in self.gaps.items())


@pytest.fixture
def gap_meter():
    meter = GapMeter()
    yield meter
    meter.stop()
