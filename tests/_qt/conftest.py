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
from napari_coordgate.psf.simulate import simulate_lens

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
