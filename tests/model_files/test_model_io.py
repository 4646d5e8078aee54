"""Model files: safetensors + JSON header, atomic, no pickle."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from napari_coordgate import CGUNet, CoordConvUNet, UNet, deblur, load_model, save_model
from napari_coordgate.model_files import read_model_info


@pytest.mark.parametrize(
    "model",
    [UNet(3, base_channels=4, field_shape=(64, 48), residual=False), CGUNet(2, field_shape=(64, 48), base_channels=4, gate_hidden=8), CoordConvUNet(3, field_shape=(64, 48), base_channels=4)],
    ids=["unet", "cgunet", "coordconv"],
)
def test_save_then_load_gives_identical_outputs(tmp_path, model):
    path = save_model(model, tmp_path / "m.safetensors", steps=12, psf={"kind": "simulated"})
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert loaded.metadata == {"steps": 12, "psf": {"kind": "simulated"}}
    img = np.random.default_rng(0).random((2, 50, 40)).astype(np.float32)
    assert np.array_equal(deblur(img, model, device="cpu"), deblur(img, loaded, device="cpu"))


def test_file_is_safetensors_with_json_header(tmp_path):
    path = save_model(CGUNet(2, field_shape=(32, 32), base_channels=4), tmp_path / "m.safetensors")
    info = read_model_info(path)
    assert info["config"]["arch"] == "CGUNet" and info["normalization"]["percentiles"] == [1.0, 99.8]
    with open(path, "rb") as fh:
        assert b"pickle" not in fh.read()


def test_corrupt_truncated_and_foreign_files_raise_clear_errors(tmp_path):
    good = save_model(CGUNet(2, field_shape=(32, 32), base_channels=4), tmp_path / "good.safetensors")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(4096))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    for path in (truncated, garbage, text):
        with pytest.raises(ValueError, match="not a|corrupt|truncated"):
            load_model(path)
    with pytest.raises(ValueError, match="not a napari-coordgate model"):
        load_model(foreign)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_mismatched_weights_are_reported(tmp_path):
    path = save_model(CGUNet(2, field_shape=(32, 32), base_channels=4), tmp_path / "m.safetensors")
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    inner = json.loads(header["__metadata__"]["napari_coordgate"])
    inner["config"]["base_channels"] = 8
    header["__metadata__"]["napari_coordgate"] = json.dumps(inner)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(len(new).to_bytes(8, "little") + new + raw[8 + n :])
    with pytest.raises(ValueError, match="do not match"):
        load_model(path)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    first = CGUNet(2, field_shape=(32, 32), base_channels=4)
    save_model(first, path, version=1)
    before = path.read_bytes()

    from napari_coordgate.model_files import safetensors_file

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(safetensors_file, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(CGUNet(2, field_shape=(32, 32), base_channels=8), path, version=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert load_model(path).metadata == {"version": 1}


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_model(UNet(2, base_channels=4), tmp_path / "m.safetensors", bad=object())
    assert not (tmp_path / "m.safetensors").exists()


def test_loading_never_unpickles():
    import inspect

    from napari_coordgate.model_files import header, load, safetensors_file, state

    for module in (header, state, safetensors_file, load):  # the package reader uses torch.load(weights_only=True)
        assert "torch.load" not in inspect.getsource(module)


def test_the_old_import_paths_still_work_for_one_release():
    """model_io, model_header, inference.normalization and export.bioimageio_reader re-export what they held."""
    from napari_coordgate import model_files, normalization
    from napari_coordgate.export import bioimageio_reader
    from napari_coordgate.inference import normalization as old_normalization
    from napari_coordgate import model_header, model_io

    assert model_io.save_model is model_files.save_model and model_io.load_model is model_files.load_model
    assert model_io.FORMAT_VERSION == model_files.FORMAT_VERSION
    assert model_header.check_header is model_files.check_header
    assert old_normalization.IntensityScale is normalization.IntensityScale
    assert bioimageio_reader.load_bioimageio_package is model_files.load_bioimageio_package


def test_per_pixel_models_are_written_as_format_1_and_lattice_models_as_format_2(tmp_path):
    # a per-pixel model's file stays readable by versions from before the gate lattice
    per_pixel = save_model(CGUNet(2, field_shape=(48, 40), base_channels=2), tmp_path / "p.safetensors")
    lattice = save_model(CGUNet(2, field_shape=(48, 40), base_channels=2, gate_stride=8), tmp_path / "l.safetensors")
    assert read_model_info(per_pixel)["format_version"] == 1
    info = read_model_info(lattice)
    assert info["format_version"] == 2 and info["config"]["gate_stride"] == 8
    assert load_model(lattice).config["gate_stride"] == 8
