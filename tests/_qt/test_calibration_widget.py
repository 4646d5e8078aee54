"""The Calibration widget: beads, a sharp + blurred pair, a simulated lens; files."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from napari_coordgate._qt import calibration_widget as calibration_module
from napari_coordgate.psf import render_bead_target, simulate_lens

TIMEOUT = 60_000


@pytest.fixture
def widget(open_widget):
    return open_widget("Calibration")


def shown(controls) -> bool:
    """Whether a group of controls is shown (when the dock is)."""
    return not any(control.native.isHidden() for control in controls)


def pixel_edges(layer) -> np.ndarray:
    """World coordinates of a layer's outer pixel edges (extent.world holds pixel centres)."""
    return layer.extent.world + np.array([-0.5, 0.5])[:, None] * layer.scale


def calibrate(qtbot, widget, click):
    click(widget._run_button)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def bead_slide():
    """A 128 x 128 bead slide through a lens that blurs towards the edges."""
    lens = simulate_lens((128, 128), grid=(4, 4), defocus_edge=0.8, seed=1)
    image, _ = render_bead_target(lens, n_beads=50, seed=2)
    return lens, image


def test_beads(qtbot, viewer, widget, state, click, bead_slide, open_widget):
    finetune = open_widget("Fine-tune")
    lens, image = bead_slide
    layer = viewer.add_image(image, name="beads", scale=(0.5, 0.5), translate=(10, 20))
    widget._kind.value = "beads"
    assert shown(widget._bead_controls) and not shown(widget._lens_controls)
    widget._bead_image.value = layer
    widget._grid_y.value, widget._grid_x.value = 2, 2
    calibrate(qtbot, widget, click)

    field = state.psf_field
    assert field.kind == "beads" and field.field_shape == (128, 128) and field.grid_shape == (2, 2)
    used = np.asarray(field.metadata["beads"])
    points = viewer.layers["detected beads"]
    assert_allclose(points.data, used)
    assert_array_equal(points.scale, layer.scale)  # drawn over the bead image
    montage = viewer.layers["PSF field"]
    assert montage.data.shape == (2 * field.psf_size, 2 * field.psf_size)
    # each grid PSF is drawn over its cell: the montage covers the bead image edge to edge
    assert_allclose(pixel_edges(montage), pixel_edges(layer), atol=1e-6)
    assert widget._status.level in ("ok", "warning") and "beads used" in widget._status.text()
    assert "beads, field 128x128" in finetune._calibration.value  # the shared calibration
    assert "FWHM" in widget._current.value


def test_poor_bead_coverage_is_warned_about(qtbot, viewer, widget, state, click, notifications):
    lens = simulate_lens((128, 128), grid=(2, 2), defocus_edge=0.5)
    image, _ = render_bead_target(lens, n_beads=40, seed=0)
    image[:, 40:] = np.median(image)  # beads only in a strip on the left
    widget._bead_image.value = viewer.add_image(image, name="left beads")
    calibrate(qtbot, widget, click)
    assert state.psf_field.metadata["poorly_covered_cells"]
    assert any("Poor coverage" in m for m in notifications.warnings)
    assert widget._status.level == "warning" and "Poor coverage" in widget._status.text()


def test_sharp_and_blurred_pair(qtbot, viewer, widget, state, click, rng):
    lens = simulate_lens((96, 96), grid=(2, 2), defocus_edge=0.6)
    sharp = rng.random((96, 96)).astype(np.float32)
    widget._kind.value = "pair"
    assert shown(widget._pair_controls) and not shown(widget._bead_controls)
    widget._sharp_image.value = viewer.add_image(sharp, name="pattern")
    widget._blurred_image.value = viewer.add_image(lens.blur(sharp), name="pattern seen")
    widget._grid_y.value, widget._grid_x.value = 2, 2
    calibrate(qtbot, widget, click)
    assert state.psf_field.kind == "pair" and state.psf_field.field_shape == (96, 96)
    assert "detected beads" not in viewer.layers


def test_simulated_lens(qtbot, widget, state, click):
    widget._kind.value = "simulated"
    assert shown(widget._lens_controls) and not shown(widget._bead_controls)
    assert shown([widget._psf_size, widget._grid_y, widget._grid_x])
    widget._field_h.value, widget._field_w.value = 64, 96
    widget._grid_y.value, widget._grid_x.value = 2, 3
    widget._defocus.value, widget._coma.value = 1.0, 0.3
    calibrate(qtbot, widget, click)
    field = state.psf_field
    assert field.kind == "simulated" and field.field_shape == (64, 96) and field.grid_shape == (2, 3)
    assert field.metadata["coma_edge"] == pytest.approx(0.3)


def test_save_and_load(qtbot, viewer, widget, state, click, tmp_path, monkeypatch, small_lens):
    state.psf_field = small_lens
    monkeypatch.setattr(calibration_module, "ask_save_path", lambda *a: str(tmp_path / "lens"))
    click(widget._save_button)
    saved = tmp_path / "lens.npz"
    assert saved.is_file()

    state.psf_field = None
    assert widget._current.value == "none yet"
    monkeypatch.setattr(calibration_module, "ask_open_path", lambda *a: str(saved))
    click(widget._load_button)
    assert state.psf_field is not small_lens
    assert_allclose(state.psf_field.psfs, small_lens.psfs)
    assert "PSF field" in viewer.layers


def test_errors(qtbot, viewer, widget, state, click, notifications, rng, tmp_path, monkeypatch):
    click(widget._run_button)  # no image chosen
    assert any("choose the image layer" in m for m in notifications.errors)

    widget._bead_image.value = viewer.add_image(rng.normal(100, 1, (64, 64)), name="no beads")
    calibrate(qtbot, widget, click)
    assert any("no beads found" in m for m in notifications.errors)
    assert widget._status.level == "error" and state.psf_field is None

    bad = tmp_path / "bad.npz"
    bad.write_text("not a PSF field")
    monkeypatch.setattr(calibration_module, "ask_open_path", lambda *a: str(bad))
    click(widget._load_button)
    assert any("not a readable PSF-field file" in m for m in notifications.errors)
    click(widget._save_button)  # nothing to save
    assert any("nothing to save" in m for m in notifications.errors)
