"""The Gate map widget: gate layers aligned to the image, and the local-kernel probe."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from napari_coordgate import UNet
from napari_coordgate.gate_map import gate_maps, local_response

TIMEOUT = 30_000
FIELD = (64, 48)


@pytest.fixture
def model(state, cg_model_with_varied_gates):
    state.model = m = cg_model_with_varied_gates(FIELD)
    return m


@pytest.fixture
def widget(open_widget, model):
    return open_widget("Gate map")


def test_block_choices_follow_the_current_model(widget, state, model):
    assert list(widget._block.choices) == ["down0", "down1", "down2", "up1", "up0"]
    assert widget._block.native.itemText(1) == "level 1 encoder (down1), 8 gates"
    state.model = UNet(2, base_channels=4, field_shape=FIELD)
    assert list(widget._block.choices) == []
    assert "no CoordGate blocks" in widget._model_label.value


def test_gate_map_overlays_the_image(qtbot, viewer, widget, model, click):
    image = viewer.add_image(np.zeros(FIELD), name="img", scale=(0.5, 0.5), translate=(3.0, 4.0))
    widget._image.value = image
    widget._block.value = "down1"
    click(widget._show_button)
    qtbot.waitUntil(lambda: "gate map down1 (level 1)" in viewer.layers, timeout=TIMEOUT)
    layer = viewer.layers["gate map down1 (level 1)"]
    assert layer.data.shape == (8, 32, 24)  # n_gates x H/2 x W/2: the gate is a slider axis
    assert_allclose(layer.data, gate_maps(model, "down1"), rtol=1e-5)
    assert_allclose(layer.scale, (1.0, 1.0, 1.0))  # 2**level image pixels of 0.5
    # a coarse pixel's centre sits between the 2 x 2 image pixels it covers
    assert_allclose(layer.translate, (0.0, 3.25, 4.25))
    assert viewer.dims.nsteps[0] == 8  # one slider step per gate
    # one colour scale for all gates, centred on 1, on a diverging colormap, over the image
    low, high = layer.contrast_limits
    assert (low + high) / 2 == pytest.approx(1.0) and not layer.auto_contrast
    viewer.dims.set_current_step(0, 5)
    qtbot.wait(50)
    assert tuple(layer.contrast_limits) == (low, high)
    assert layer.colormap.name == "PiYG" and layer.opacity < 1
    qtbot.waitUntil(lambda: layer.colorbar.visible, timeout=2000)  # drawn in the turn after the layer's
    assert viewer.dims.axis_labels[0] == "gate"
    # the coarse pixel (5, 7) covers image pixels (10..11, 14..15): its centre is theirs
    covered = [image.data_to_world((y, x)) for y in (10, 11) for x in (14, 15)]
    assert_allclose(layer.data_to_world((0, 5, 7))[1:], np.mean(covered, axis=0))


def test_gate_map_of_a_camera_roi(qtbot, viewer, widget, model, click):
    widget._image.value = viewer.add_image(np.zeros((32, 24)), name="roi")
    widget._offset_y.value, widget._offset_x.value = 16, 8
    widget._block.value = "up0"
    click(widget._show_button)
    qtbot.waitUntil(lambda: "gate map up0 (level 0)" in viewer.layers, timeout=TIMEOUT)
    whole = gate_maps(model, "up0")
    assert_allclose(viewer.layers["gate map up0 (level 0)"].data, whole[:, 16:48, 8:32], rtol=1e-5)


def test_models_without_gates_are_an_error(qtbot, viewer, widget, state, click, notifications):
    state.model = UNet(2, base_channels=4, field_shape=FIELD)
    click(widget._show_button)
    assert any("CG U-Nets only" in m for m in notifications.errors)
    assert widget._status.level == "error" and "CG U-Nets only" in widget._status.text()
    assert not any(layer.name.startswith("gate map") for layer in viewer.layers)


def test_probe_shows_the_network_kernel_and_the_psf(qtbot, viewer, widget, state, model, click):
    from napari_coordgate.psf.optics.simulate import simulate_lens

    state.psf_field = simulate_lens(FIELD, grid=(2, 2), defocus_edge=1.0)
    widget._image.value = viewer.add_image(np.zeros(FIELD), name="img")
    widget._size.value = 15
    click(widget._probe_button)
    probe = viewer.layers["kernel probe"]
    assert probe.mode == "add" and viewer.layers.selection.active is probe
    probe.add([30, 20])
    qtbot.waitUntil(lambda: widget.last_kernels is not None, timeout=TIMEOUT)
    psf, kernel = widget.last_kernels
    assert_allclose(kernel, local_response(model, 30, 20, size=15), atol=1e-6)
    assert_allclose(psf, state.psf_field.psf_at(30, 20))
    shown = viewer.layers["local kernel (network)"]
    assert shown.data.shape == (15, 15)
    assert_array_equal(shown.translate, (30 - 7, 20 - 7))  # centred on the probe
    low, high = shown.contrast_limits
    assert low == -high and shown.colormap.map([0.5])[0, 3] == 0  # 0 is transparent
    # the side panels show both kernels, built and rendered in a worker thread
    view = widget._kernels

    def panels_show(y, x):
        with view.figure_lock:
            images = [axes.images[0].get_array() for axes in (view.psf_axes, view.kernel_axes) if axes.images]
            title = view.kernel_axes.get_title()
        return len(images) == 2 and f"({y}, {x})" in title and np.allclose(images[1], widget.last_kernels[1])

    qtbot.waitUntil(lambda: panels_show(30, 20), timeout=TIMEOUT)
    # moving the probe measures again, at the new place
    widget.last_kernels = None
    probe.data = np.array([[10.0, 40.0]])
    qtbot.waitUntil(lambda: widget.last_kernels is not None, timeout=TIMEOUT)
    assert_allclose(widget.last_kernels[1], local_response(model, 10, 40, size=15), atol=1e-6)
    qtbot.waitUntil(lambda: panels_show(10, 40), timeout=TIMEOUT)


def test_probe_without_a_calibration_shows_only_the_network(qtbot, viewer, widget, click):
    click(widget._probe_button)
    viewer.layers["kernel probe"].add([5, 5])
    qtbot.waitUntil(lambda: widget.last_kernels is not None, timeout=TIMEOUT)
    assert widget.last_kernels[0] is None
    assert "no PSF" in widget._status.text()


def test_a_large_image_gets_a_sampled_map_in_place(qtbot, viewer, widget, model, click, monkeypatch):
    from napari_coordgate._qt import gate_map_widget

    monkeypatch.setattr(gate_map_widget, "MAX_MAP_SIDE", 16)  # as a 2048 x 2048 frame gets 512
    image = viewer.add_image(np.zeros(FIELD), name="img", scale=(0.5, 0.5), translate=(3.0, 4.0))
    widget._image.value = image
    widget._block.value = "down0"
    click(widget._show_button)
    qtbot.waitUntil(lambda: "gate map down0 (level 0)" in viewer.layers, timeout=TIMEOUT)
    layer = viewer.layers["gate map down0 (level 0)"]
    assert layer.data.shape == (4, 16, 12)  # every 4th pixel: at most 16 per side
    assert_allclose(layer.data, gate_maps(model, "down0", stride=4), rtol=1e-5)
    # map pixel (2, 3) covers image pixels (8..11, 12..15): its centre is theirs
    covered = [image.data_to_world((y, x)) for y in range(8, 12) for x in range(12, 16)]
    assert_allclose(layer.data_to_world((0, 2, 3))[1:], np.mean(covered, axis=0))
    assert "sampled every 4" in widget._status.text()
