"""Opening this package's files in napari (viewer.open, drag and drop) and saving a calibration."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QMimeData, QPoint, Qt, QUrl
from qtpy.QtGui import QDropEvent

from napari_coordgate import save_model
from napari_coordgate._qt.reader import get_reader
from napari_coordgate.psf.psf_field import PSFField

PLUGIN = "napari-coordgate"


@pytest.fixture
def files(tmp_path, small_model, small_lens):
    model = save_model(small_model, tmp_path / "scope.safetensors", training={"steps": 12, "input_psnr": 20.0,
                                                                            "val_psnr": 23.5})
    field = tmp_path / "scope-psf.npz"
    small_lens.save(field)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))  # someone else's model
    np.savez(tmp_path / "other.npz", a=np.arange(3))  # someone else's arrays
    (tmp_path / "fake.safetensors").write_bytes(b"not a safetensors file at all")
    return tmp_path, model, field


def drop(viewer, *paths):
    """What napari does when files are dropped on the canvas."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPoint(5, 5).toPointF() if hasattr(QPoint, "toPointF") else QPoint(5, 5),
                       Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    viewer.window._qt_viewer.dropEvent(event)


def test_claims_only_files_this_package_wrote(files):
    root, model, field = files
    assert get_reader(str(model)) is not None and get_reader(str(field)) is not None
    for name in ("other.safetensors", "other.npz", "fake.safetensors"):
        assert get_reader(str(root / name)) is None, name
    assert get_reader([str(model), str(field)]) is None


def test_open_model_makes_it_current_without_a_layer(viewer, state, open_widget, files, notifications):
    _, model, _ = files
    deblur = open_widget("Deblur")
    layers = viewer.open(model, plugin=PLUGIN)
    assert layers == [] and len(viewer.layers) == 0
    assert state.model is not None and state.model.arch == "CGUNet" and state.model_source == "scope.safetensors"
    assert "scope.safetensors" in deblur._model.value
    info = " ".join(notifications.messages("info"))
    assert "CGUNet(2)" in info and "20.0 -> 23.5 dB" in info and "current model" in info


def test_drop_psf_field_makes_it_the_calibration(viewer, state, files, small_lens, qtbot, monkeypatch):
    """napari's builtin reader also claims every .npz, so napari asks the user which
    plugin to use; the user picks napari-coordgate (as the user guide says)."""
    from napari._qt.dialogs.qt_reader_dialog import QtReaderDialog

    offered = []

    def choose(dialog):
        offered.extend(button.text() for button in dialog.reader_btn_group.buttons())
        return "napari-coordgate", False

    monkeypatch.setattr(QtReaderDialog, "get_user_choices", choose)
    _, _, field = files
    drop(viewer, field)
    assert "napari-coordgate" in offered
    qtbot.waitUntil(lambda: state.psf_field is not None, timeout=5000)
    assert state.psf_field.field_shape == small_lens.field_shape
    np.testing.assert_allclose(state.psf_field.psfs, small_lens.psfs)
    assert [layer.name for layer in viewer.layers] == ["PSF field"]


def test_drop_model_file(viewer, state, files, qtbot):
    _, model, _ = files
    drop(viewer, model)
    qtbot.waitUntil(lambda: state.model is not None, timeout=5000)
    assert len(viewer.layers) == 0


def test_damaged_model_of_ours_is_an_error_that_names_it(viewer, state, files):
    root, model, _ = files
    data = bytearray(model.read_bytes())
    damaged = root / "damaged.safetensors"
    damaged.write_bytes(bytes(data[: len(data) // 2]))
    assert get_reader(str(damaged)) is not None  # ours: its header says so
    with pytest.raises(Exception, match="damaged.safetensors"):
        viewer.open(damaged, plugin=PLUGIN)
    assert state.model is None


def test_save_calibration_layer_as_npz(viewer, state, files, tmp_path):
    _, _, field = files
    viewer.open(field, plugin=PLUGIN)
    out = tmp_path / "saved" / "copy.npz"
    out.parent.mkdir()
    written = viewer.layers.save(str(out), selected=False, plugin=PLUGIN)
    assert written == [str(out)]
    np.testing.assert_allclose(PSFField.load(out).psfs, state.psf_field.psfs)


def test_writer_refuses_other_layers(viewer, tmp_path):
    from napari_coordgate._qt.writer import write_psf_field

    layer = viewer.add_image(np.zeros((8, 8)), name="mine")
    assert viewer.layers.save(str(tmp_path / "x.npz"), selected=False, plugin=PLUGIN) == []
    with pytest.raises(ValueError, match="saves only its 'PSF field' layer.*'mine'"):
        write_psf_field(str(tmp_path / "x.npz"), *layer.as_layer_data_tuple()[:2])
    assert not (tmp_path / "x.npz").exists()


def test_open_exported_bioimageio_package(viewer, state, tmp_path, small_model):
    import zipfile

    from napari_coordgate.export import export_bioimageio

    package = export_bioimageio(small_model, tmp_path / "scope.zip", authors=["Test"])
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("rdf.yaml", "type: model\nname: someone else's\n")
    assert get_reader(str(tmp_path / "other.zip")) is None
    assert viewer.open(package, plugin=PLUGIN) == [] and len(viewer.layers) == 0
    assert state.model is not None and state.model_source == "scope.zip"
    for key, value in small_model.state_dict().items():
        assert np.array_equal(state.model.state_dict()[key].numpy(), value.numpy())
