"""The Calibration widget: beads, a sharp + blurred pair, a simulated lens; files."""

import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from napari_coordgate._qt import _workers, calibration_widget as calibration_module
from napari_coordgate.psf import calibrate_from_beads, render_bead_target, simulate_lens
from napari_coordgate.psf.psf_field import PSFField

TIMEOUT = 300_000  # a calibration with model selection takes a minute or more on 2 busy cores


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
    qtbot.waitUntil(widget.is_idle, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def bead_slide():
    """A 128 x 128 bead slide through a lens that blurs towards the edges."""
    lens = simulate_lens((128, 128), grid=(4, 4), defocus_edge=0.8, seed=1)
    image, _ = render_bead_target(lens, n_beads=50, seed=2)
    return lens, image


@pytest.mark.slow
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
    assert set(points.features["reason"]) == {"used"}
    montage = viewer.layers["PSF field"]
    # the part of each PSF that holds its light, not its whole tail-sized kernel (which shows only dots)
    visible = field.visible_size()
    assert visible < field.psf_size and montage.data.shape == (2 * visible, 2 * visible)
    assert np.all(points.size <= max(6.0, field.psf_size / 4))  # rings around the beads, not boxes over the slide
    # each grid PSF is drawn over its cell: the montage covers the bead image edge to edge
    assert_allclose(pixel_edges(montage), pixel_edges(layer), atol=1e-6)
    fwhm = viewer.layers["beads FWHM map"]
    assert fwhm.data.shape == (2, 2)
    assert_allclose(pixel_edges(fwhm), pixel_edges(layer), atol=1e-6)  # over the bead image
    assert widget._status.level in ("ok", "warning") and "beads used" in widget._status.text()
    assert "Model: " in widget._status.text() and "Held-out beads" in widget._status.text()
    assert "beads, field 128x128" in finetune._calibration.value  # the shared calibration
    assert "FWHM" in widget._current.value


@pytest.mark.slow
def test_bead_model_and_known_optics(qtbot, viewer, widget, state, click, bead_slide, monkeypatch):
    """The model and the optics reach the core; used and rejected beads are shown with their reasons."""
    lens, image = bead_slide
    image = image.copy()
    image[64, 64] = image.max() * 20  # a hot pixel
    calls = []
    core = _workers.calibrate_from_beads

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return core(*args, **kwargs)

    monkeypatch.setattr(_workers, "calibrate_from_beads", spy)
    assert widget._bead_pixel_size.value == 0  # unknown until a layer with a scale is chosen
    layer = viewer.add_image(image, name="slide", scale=(0.13, 0.13))
    widget._bead_image.value = layer
    assert widget._bead_pixel_size.value == pytest.approx(130.0)  # prefilled from the scale (µm -> nm)
    widget._model.value = "pupil"
    widget._bead_na.value, widget._bead_wavelength.value = 0.8, 520.0
    widget._grid_y.value, widget._grid_x.value = 0, 0  # automatic
    calibrate(qtbot, widget, click)

    assert calls[0]["method"] == "pupil" and calls[0]["grid"] is None
    assert calls[0]["na"] == pytest.approx(0.8) and calls[0]["wavelength_nm"] == pytest.approx(520.0)
    assert calls[0]["pixel_size_nm"] == pytest.approx(130.0) and "immersion_index" not in calls[0]
    field = state.psf_field
    assert field.metadata["method"].startswith("pupil")
    fwhm = viewer.layers["slide FWHM map"]
    assert fwhm.data.shape == field.grid_shape
    assert_allclose(pixel_edges(fwhm), pixel_edges(layer), atol=1e-6)
    used = viewer.layers["detected beads"]
    assert len(used.data) == field.metadata["n_used"] and set(used.features["reason"]) == {"used"}
    rejected = viewer.layers["rejected beads"]
    reasons = list(rejected.features["reason"])
    assert len(reasons) == len(field.metadata["rejected_beads"]) > 0 and "used" not in reasons
    assert_allclose(rejected.data, [b[:2] for b in field.metadata["rejected_beads"]])
    assert not np.allclose(rejected.border_color[0], used.border_color[0])  # other colours than the used beads
    assert "Model: pupil" in widget._status.text()


def fake_bead_field(shape=(60, 90), grid=(2, 3), **extra) -> PSFField:
    """A hand-made bead calibration with the metadata of the core's report."""
    k = 9
    yy, xx = np.mgrid[:k, :k] - k // 2
    psfs = np.array([[np.exp(-(yy**2 + xx**2) / (2 * (1 + 0.3 * (i + j)) ** 2)) for j in range(grid[1])]
                     for i in range(grid[0])])
    metadata = {
        "method": "empirical", "method_reason": "no optics were given.",
        "n_detected": 9, "n_used": 5, "rejected": {"saturated": 1, "hot pixel": 2, "faint": 1, "edge": 0},
        "beads": [[10, 10], [20, 30], [30, 50], [40, 70], [50, 20]],
        "rejected_beads": [[5, 5, "saturated"], [15, 80, "hot pixel"], [45, 45, "hot pixel"], [55, 85, "faint"]],
        "held_out": {"n_beads": 3, "unexplained_fraction": 0.12,
                     "by_region": {"centre": 0.05, "middle": 0.1, "edge": None}},
        "warnings": ["beads cover only 45% of the field; the PSF elsewhere is extrapolated"],
        "optics": None,
    }
    metadata.update(extra)
    return PSFField(psfs, shape, kind="beads", metadata=metadata)


def test_bead_report_is_shown(qtbot, viewer, widget, state, click, notifications, monkeypatch):
    """What a bead calibration reports: layers, colours, reasons, the held-out check and warnings."""
    field = fake_bead_field()
    monkeypatch.setattr(_workers, "calibrate_from_beads", lambda image, **kwargs: field)
    layer = viewer.add_image(np.zeros((60, 90), np.float32), name="slide", scale=(2.0, 2.0), translate=(5, -3))
    widget._bead_image.value = layer
    calibrate(qtbot, widget, click)
    assert state.psf_field is field

    fwhm = viewer.layers["slide FWHM map"]
    assert_allclose(fwhm.data, field.fwhm_map(), rtol=1e-5)
    assert fwhm.colormap.name == "viridis"
    # each map pixel is centred on its grid node, and the map covers the image edge to edge
    nodes = field.node_positions().reshape(-1, 2)
    cells = np.indices(field.grid_shape).reshape(2, -1).T
    for cell, node in zip(cells, nodes):
        assert_allclose(fwhm.data_to_world(cell), layer.data_to_world(node), atol=1e-6)
    assert_allclose(pixel_edges(fwhm), pixel_edges(layer), atol=1e-6)

    used, rejected = viewer.layers["detected beads"], viewer.layers["rejected beads"]
    assert_allclose(used.data, field.metadata["beads"])
    assert list(rejected.features["reason"]) == ["saturated", "hot pixel", "hot pixel", "faint"]
    assert_array_equal(rejected.scale, layer.scale)
    assert_array_equal(rejected.translate, layer.translate)
    colours = {tuple(np.round(c, 3)) for c in rejected.border_color}
    assert len(colours) == 3 and tuple(np.round(used.border_color[0], 3)) not in colours
    assert rejected.text.values[1] == "hot pixel"

    text = widget._status.text()
    assert widget._status.level == "warning"
    for words in ("Model: empirical; no optics were given.", "5 beads used of 9 detected",
                  "1 saturated, 2 hot pixel, 1 faint",
                  "Held-out beads (3): 12% of their light unexplained (centre 5%, middle 10%).",
                  "beads cover only 45%"):
        assert words in text, (words, text)
    assert any("beads cover only 45%" in m for m in notifications.warnings)

    # a second run without rejections or warnings: the old rejected markers go, the status is "ok"
    field = fake_bead_field(rejected_beads=[], rejected={}, warnings=[])
    monkeypatch.setattr(_workers, "calibrate_from_beads", lambda image, **kwargs: field)
    calibrate(qtbot, widget, click)
    assert "rejected beads" not in viewer.layers and widget._status.level == "ok"
    assert viewer.layers["slide FWHM map"].data.shape == (2, 3)


def test_optics_need_wavelength_and_pixel_size(viewer, widget, click, notifications, monkeypatch):
    calls = []
    monkeypatch.setattr(_workers, "calibrate_from_beads", lambda image, **kw: calls.append(kw))
    widget._bead_image.value = viewer.add_image(np.zeros((64, 64), np.float32), name="slide")  # scale 1: no prefill
    assert widget._bead_pixel_size.value == 0
    widget._bead_na.value = 1.4
    click(widget._run_button)
    assert any("pixel size" in m for m in notifications.errors)
    assert widget._worker is None and not calls


def test_poor_bead_coverage_is_warned_about(qtbot, viewer, widget, state, click, notifications):
    lens = simulate_lens((128, 128), grid=(2, 2), defocus_edge=0.5)
    image, _ = render_bead_target(lens, n_beads=40, seed=0)
    image[:, 40:] = np.median(image)  # beads only in a strip on the left
    widget._bead_image.value = viewer.add_image(image, name="left beads")
    calibrate(qtbot, widget, click)
    if state.psf_field is None:  # the core may refuse so one-sided a slide outright
        assert any("Calibration: " in m for m in notifications.errors)
        assert widget._status.level == "error"
        return
    assert notifications.warnings and widget._status.level == "warning"
    assert any(w.split(": ", 1)[1][:40] in widget._status.text() for w in notifications.warnings)


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
    widget._kind.value = "simulated"
    widget._field_h.value, widget._field_w.value = 64, 64
    calibrate(qtbot, widget, click)
    assert "FWHM" in widget._status.text()
    monkeypatch.setattr(calibration_module, "ask_save_path", lambda *a: str(tmp_path / "lens"))
    click(widget._save_button)
    saved = tmp_path / "lens.npz"
    assert saved.is_file()
    # The calibration's report stays in the status line, the save below it.
    assert "FWHM" in widget._status.text() and "Saved to lens.npz" in widget._status.text()
    state.psf_field = small_lens
    click(widget._save_button)

    state.psf_field = None
    assert widget._current.value == "none yet"
    monkeypatch.setattr(calibration_module, "ask_open_path", lambda *a: str(saved))
    click(widget._load_button)
    assert state.psf_field is not small_lens
    assert_allclose(state.psf_field.psfs, small_lens.psfs)
    assert "PSF field" in viewer.layers


def test_errors(qtbot, viewer, widget, state, click, notifications, tmp_path, monkeypatch):
    click(widget._run_button)  # no image chosen
    assert any("choose the image layer" in m for m in notifications.errors)

    bad = tmp_path / "bad.npz"
    bad.write_text("not a PSF field")
    monkeypatch.setattr(calibration_module, "ask_open_path", lambda *a: str(bad))
    click(widget._load_button)
    assert any("not a napari-coordgate PSF-field file" in m for m in notifications.errors)
    click(widget._save_button)  # nothing to save
    assert any("nothing to save" in m for m in notifications.errors)


def test_refusal_is_an_error_and_adds_no_layer(qtbot, viewer, widget, state, click, notifications, rng):
    """The core's refusal (here: pure noise, no beads) is a napari error with its message."""
    widget._bead_image.value = viewer.add_image(rng.normal(100, 1, (64, 64)), name="no beads")
    calibrate(qtbot, widget, click)
    refusals = [m for m in notifications.errors if m.startswith("Calibration: ")]
    assert refusals and len(refusals[0]) > len("Calibration: ") + 10
    assert widget._status.level == "error" and refusals[0].split(": ", 1)[1] in widget._status.text()
    assert state.psf_field is None and [layer.name for layer in viewer.layers] == ["no beads"]


def start_and_wait_for_a_round(qtbot, viewer, widget, click, image):
    widget._bead_image.value = viewer.add_image(image, name="beads")
    click(widget._run_button)
    # the fit's messages come while it runs, not at its end
    qtbot.waitUntil(lambda: "round 1 of" in widget.log_text(), timeout=TIMEOUT)
    assert not widget.is_idle() and widget._cancel_button.enabled
    assert "Calibrating: round" in widget._status.text()


def test_cancel_stops_within_a_second_and_keeps_the_previous_calibration(qtbot, viewer, widget, state, click,
                                                                        bead_slide, small_lens, notifications):
    state.psf_field = small_lens
    start_and_wait_for_a_round(qtbot, viewer, widget, click, bead_slide[1])
    pressed = time.perf_counter()
    click(widget._cancel_button)
    qtbot.waitUntil(widget.is_idle, timeout=TIMEOUT)
    assert time.perf_counter() - pressed < 1.0
    qtbot.wait(100)
    assert state.psf_field is small_lens and "PSF field" not in viewer.layers
    assert widget._status.level == "warning" and "cancelled" in widget._status.text()
    assert "previous calibration is kept" in widget._status.text() and not notifications.errors
    assert widget._run_button.enabled and not widget._cancel_button.enabled
    assert widget._progress.format() == "idle"


def test_closing_the_dock_cancels_its_calibration(qtbot, viewer, widget, state, click, bead_slide, small_lens):
    state.psf_field = small_lens
    start_and_wait_for_a_round(qtbot, viewer, widget, click, bead_slide[1])
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    qtbot.waitUntil(lambda: widget._worker is None, timeout=5_000)
    qtbot.wait(100)
    assert state.psf_field is small_lens and "PSF field" not in viewer.layers


@pytest.mark.slow
def test_the_dock_gives_the_api_s_calibration(qtbot, viewer, widget, state, click, bead_slide):
    """The same slide with the dock's defaults and the API's: the same PSFs, to the bit."""
    widget._bead_image.value = viewer.add_image(bead_slide[1], name="beads")
    calibrate(qtbot, widget, click)
    np.testing.assert_array_equal(state.psf_field.psfs, calibrate_from_beads(bead_slide[1]).psfs)
