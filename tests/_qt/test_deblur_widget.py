"""The Deblur widget, driven through its controls."""

import html

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from napari_coordgate import deblur

TIMEOUT = 30_000


@pytest.fixture
def widget(open_widget, calibrated):
    return open_widget("Deblur")


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=TIMEOUT)


def test_deblurs_a_stack_into_a_new_layer(qtbot, viewer, widget, calibrated, click, rng):
    data = rng.integers(0, 4000, size=(3, 40, 48), dtype=np.uint16)
    original = data.copy()
    source = viewer.add_image(data, name="stack", scale=(2.0, 0.5, 0.5), translate=(0, 10, 20), metadata={"k": 1})
    widget._image.value = source
    widget._offset_y.value, widget._offset_x.value = 8, 12
    click(widget._run_button)
    wait_idle(qtbot, widget)

    result = viewer.layers["stack deblurred"]
    assert result.data.shape == (3, 40, 48) and result.data.dtype == np.float32
    assert_array_equal(result.scale, source.scale)
    assert_array_equal(result.translate, source.translate)
    assert result.metadata == {"k": 1, "napari_coordgate_role": "result"}
    # the offset reached the core: same numbers as deblurring the ROI directly
    assert_allclose(result.data, deblur(original, calibrated.model, offset=(8, 12), device="cpu"), rtol=1e-5, atol=1e-3)
    # the source layer is untouched
    assert source.data is data
    assert_array_equal(source.data, original)
    assert widget._progress.format() == "idle"  # reset once done, not a stale "3 / 3"
    assert widget._run_button.enabled and not widget._cancel_button.enabled


def test_running_again_replaces_the_result(qtbot, viewer, widget, click, rng):
    widget._image.value = viewer.add_image(rng.random((32, 32)), name="img")
    for _ in range(2):
        click(widget._run_button)
        wait_idle(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == ["img", "img deblurred"]
    assert "Replaced the earlier 'img deblurred'" in html.unescape(widget._status.text())  # said, not silent


def test_an_image_smaller_than_the_field_says_where_it_is_taken_from(qtbot, viewer, widget, calibrated, click, rng):
    field = calibrated.model.field_shape
    widget._image.value = viewer.add_image(rng.random((field[0] // 2, field[1] // 2)), name="crop")
    click(widget._run_button)
    wait_idle(qtbot, widget)
    text = html.unescape(widget._status.text())
    assert "smaller than the model's field" in text and "ROI offset (0, 0)" in text
    assert widget._status.level == "warning"


def test_cancel_adds_nothing(qtbot, viewer, widget, click, rng):
    widget._image.value = viewer.add_image(rng.random((400, 64, 64)).astype(np.float32), name="long")
    click(widget._run_button)
    click(widget._cancel_button)
    wait_idle(qtbot, widget)
    assert "long deblurred" not in viewer.layers
    assert widget._status.level == "warning" and "Cancelled" in widget._status.text()
    assert widget._progress.value() < 400


@pytest.mark.parametrize(
    ("make_layer", "expected"),
    [
        (lambda v, rng: v.add_image(rng.random((32, 32, 3)), rgb=True, name="rgb"), "RGB"),
        (lambda v, rng: v.add_image(rng.random((80, 80)), name="big"), "does not fit"),
        (lambda v, rng: v.add_image(rng.random((16, 16)), name="roi", translate=(0, 0)), "does not fit"),
    ],
    ids=["rgb", "larger-than-field", "roi-off-the-field"],
)
def test_errors_are_notified_and_nothing_is_added(
    qtbot, viewer, widget, click, notifications, rng, make_layer, expected
):
    widget._image.value = make_layer(viewer, rng)
    widget._offset_y.value = 60  # only matters for the ROI case: 60 + 16 > 64
    n_layers = len(viewer.layers)
    click(widget._run_button)
    wait_idle(qtbot, widget)
    qtbot.waitUntil(lambda: any(expected in m for m in notifications.errors), timeout=TIMEOUT)
    assert len(viewer.layers) == n_layers
    assert widget._status.level == "error" and expected in widget._status.text()


def test_no_model_is_an_error(qtbot, viewer, widget, calibrated, click, notifications, rng):
    calibrated.model = None
    widget._image.value = viewer.add_image(rng.random((32, 32)))
    click(widget._run_button)
    assert any("no model" in m for m in notifications.errors)
    assert "none yet" in widget._model.value


def test_live_preview_follows_the_dims_slider(qtbot, viewer, widget, calibrated, rng):
    stack = rng.random((4, 64, 64)).astype(np.float32)
    widget._image.value = viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 1)
    widget._live.value = True
    name = "stack deblurred (preview)"
    expected = {i: deblur(stack[i], calibrated.model, device="cpu") for i in (1, 3)}

    def shows(i):
        return name in viewer.layers and np.allclose(viewer.layers[name].data, expected[i], atol=1e-4)

    qtbot.waitUntil(lambda: shows(1), timeout=TIMEOUT)
    viewer.dims.set_current_step(0, 3)
    qtbot.waitUntil(lambda: shows(3), timeout=TIMEOUT)
    assert viewer.layers[name].ndim == 2
    qtbot.waitUntil(lambda: widget._preview_worker is None, timeout=TIMEOUT)


# -- output dtype and batches ---------------------------------------------------------------------
def test_output_dtype_input_saturates_and_reports(qtbot, viewer, widget, calibrated, click, rng):
    data = rng.integers(0, 65535, size=(40, 48), dtype=np.uint16)
    widget._image.value = viewer.add_image(data, name="u16")
    widget._dtype.value = "input"
    click(widget._run_button)
    wait_idle(qtbot, widget)
    result = viewer.layers["u16 deblurred"].data
    expected = np.clip(np.rint(deblur(data, calibrated.model, device="cpu")), 0, 65535)
    assert result.dtype == np.uint16
    assert np.abs(result.astype(float) - expected).max() <= 1  # bf16 vs fp32 rounding at most
    assert "uint16:" in widget._status.text() and "clipped" in widget._status.text()


def test_deblur_all_image_layers_goes_past_a_bad_one(qtbot, viewer, widget, click, rng, notifications):
    viewer.add_image(rng.random((32, 32)), name="a")
    viewer.add_image(rng.random((2, 24, 24)), name="b")
    viewer.add_image(rng.random((80, 80)), name="too big")
    click(widget._all_button)
    wait_idle(qtbot, widget)
    assert {"a deblurred", "b deblurred"} <= {layer.name for layer in viewer.layers}
    assert "too big deblurred" not in viewer.layers
    assert any("'too big' failed" in m and "does not fit" in m for m in notifications.errors)
    assert "Deblurred 2 of 3 layers" in widget._status.text()


def test_deblur_a_folder_in_the_background(qtbot, tmp_path, widget, calibrated, rng, notifications):
    import tifffile

    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    images = {f"img{k}.tif": rng.integers(0, 4000, size=(40, 40), dtype=np.uint16) for k in range(3)}
    for name, image in images.items():
        tifffile.imwrite(source / name, image)
    (source / "bad.tif").write_bytes(b"II*\x00 broken")
    widget._dtype.value = "input"
    widget.deblur_folder(str(source), str(target))
    wait_idle(qtbot, widget)
    assert sorted(p.name for p in target.iterdir()) == sorted(images)
    for name, image in images.items():
        assert tifffile.imread(target / name).dtype == np.uint16
    assert any("bad.tif failed" in m for m in notifications.errors)
    assert "Deblurred 3 of 4 files" in widget._status.text()
    # a second run would overwrite: refused before anything runs
    widget.deblur_folder(str(source), str(target))
    assert widget._worker is None and "already exist" in widget._status.text()


def test_cancel_a_folder_leaves_no_partial_file(qtbot, tmp_path, widget, click, rng):
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for k in range(3):
        np.save(source / f"s{k}.npy", rng.random((200, 64, 64)).astype(np.float32))
    widget.deblur_folder(str(source), str(target))
    click(widget._cancel_button)
    wait_idle(qtbot, widget)
    assert list(target.iterdir()) == [] and "Cancelled" in widget._status.text()


def test_compare_side_by_side_shows_both_whole_and_gives_the_view_back(qtbot, viewer, widget, click, rng):
    widget._image.value = viewer.add_image(rng.random((32, 32)), name="img")
    click(widget._run_button)
    wait_idle(qtbot, widget)
    other = viewer.add_image(rng.random((32, 32)), name="other")
    source, result = viewer.layers["img"], viewer.layers["img deblurred"]
    viewer.camera.zoom = 40.0  # the user zoomed into a detail
    click(widget._compare_button)
    assert viewer.camera.zoom < 40.0  # fitted to the two images, not cut in half
    assert source.visible and result.visible and not other.visible
    assert result.extent.world[0, -1] > source.extent.world[1, -1]  # beside its source, not over it
    assert tuple(source.translate) == (0, 0) and not viewer.grid.enabled
    click(widget._compare_button)
    assert viewer.camera.zoom == pytest.approx(40.0) and other.visible
    assert tuple(result.translate) == (0, 0)  # back over its source


def test_closing_the_dock_cancels_its_run(qtbot, viewer, widget, click, rng):
    widget._image.value = viewer.add_image(rng.random((400, 64, 64)).astype(np.float32), name="long")
    click(widget._run_button)
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    wait_idle(qtbot, widget)
    qtbot.wait(100)
    assert "long deblurred" not in viewer.layers
    assert widget._progress.value() < 400
