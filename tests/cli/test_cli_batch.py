"""``coordgate deblur`` on folders and globs, and with ``--dtype``."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile
import torch

from napari_coordgate import CGUNet, deblur, load_model, save_model
from napari_coordgate.cli import main

FIELD = (64, 64)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-model")
    torch.manual_seed(0)
    save_model(CGUNet(depth=2, field_shape=FIELD, base_channels=4), root / "model.safetensors")
    return root / "model.safetensors"


def _acquisitions(folder, n=4, corrupt="c_broken.tif", planes=()):
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = {}
    for k in range(n):
        name = f"{'abde'[k % 4]}{k}.tif"
        images[name] = (rng.random((*planes, 48, 56)) * 3000 + 100).astype(np.uint16)
        tifffile.imwrite(folder / name, images[name])
    if corrupt:
        (folder / corrupt).write_bytes(b"II*\x00 this is not really a TIFF")
    (folder / "notes.txt").write_text("not an image")
    return images


def run(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_keeps_going_past_a_corrupt_file(capsys, tmp_path, model_file):
    images = _acquisitions(tmp_path / "in")
    code, out, err = run(capsys, "deblur", tmp_path / "in", model_file, "-o", tmp_path / "out", "--device", "cpu", "-q")
    assert code == 1
    assert "c_broken.tif" in err and "not a readable TIFF" in err
    assert "1 of 5 files failed" in err
    assert "skipped" in err and "notes.txt" in err
    assert "deblurred 4 of 5 files" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(images)  # same names, nothing for the broken file, no temporary files left
    model = load_model(model_file)
    for name, image in images.items():
        result = tifffile.imread(tmp_path / "out" / name)
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, deblur(image, model, device="cpu"), rtol=1e-5, atol=1e-3)


def test_glob_and_input_dtype(capsys, tmp_path, model_file):
    images = _acquisitions(tmp_path / "in", n=2, corrupt=None)
    code, out, err = run(capsys, "deblur", str(tmp_path / "in" / "*.tif"), model_file, "-o", tmp_path / "out",
                         "--dtype", "input", "--device", "cpu", "-q")
    assert code == 0, err
    assert "deblurred 2 of 2 files" in out and "uint16:" in out and "clipped" in out
    for name in images:
        assert tifffile.imread(tmp_path / "out" / name).dtype == np.uint16


def test_batch_refuses_existing_outputs_before_any_work(capsys, tmp_path, model_file):
    _acquisitions(tmp_path / "in", n=2, corrupt=None)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b1.tif").write_bytes(b"precious")
    code, _, err = run(capsys, "deblur", tmp_path / "in", model_file, "-o", tmp_path / "out")
    assert code != 0 and "already exist" in err and "--overwrite" in err
    assert (tmp_path / "out" / "b1.tif").read_bytes() == b"precious"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b1.tif"]


@pytest.mark.parametrize("problem", ["no-match", "output-is-input", "output-is-file"])
def test_batch_errors_are_one_line(capsys, tmp_path, model_file, problem):
    _acquisitions(tmp_path / "in", n=1, corrupt=None)
    image, out = str(tmp_path / "in"), tmp_path / "out"
    if problem == "no-match":
        image = str(tmp_path / "in" / "*.zarr")
    elif problem == "output-is-input":
        out = tmp_path / "in"
    else:
        out.write_text("x")
    code, _, err = run(capsys, "deblur", image, model_file, "-o", out)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("coordgate: error: "), err
    assert {"no-match": "no image files", "output-is-input": "holds inputs", "output-is-file": "must be a folder"}[problem] in err


def test_batch_memory_is_flat_in_the_number_of_files(capsys, tmp_path, model_file):
    """Peak traced memory (NumPy buffers) for 6 files is that of 2 files, not 3x
    (after a first run of 1 file, which pays for imports and first allocations)."""
    peaks = []
    for n in (1, 2, 6):
        folder = tmp_path / f"in{n}"
        _acquisitions(folder, n=n, corrupt=None, planes=(30,))  # 160 KiB in, 315 KiB out per file
        tracemalloc.start()
        code, _, err = run(capsys, "deblur", folder, model_file, "-o", tmp_path / f"out{n}", "--device", "cpu", "-q")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert code == 0, err
    print(f"\ntraced peak for 2 and 6 files: {peaks[1] / 2**20:.2f} and {peaks[2] / 2**20:.2f} MiB")
    assert peaks[2] < 1.5 * peaks[1], peaks


def test_single_file_dtype_saturates(capsys, tmp_path, model_file):
    """An output dtype too narrow for the result saturates at both ends and says how many pixels."""
    image = np.zeros((48, 56), np.float32)
    image[:, :28] = -5000.0
    image[:, 28:] = 50000.0
    np.save(tmp_path / "in.npy", image)
    code, out, err = run(capsys, "deblur", tmp_path / "in.npy", model_file, "-o", tmp_path / "out.npy",
                         "--dtype", "uint8", "--device", "cpu", "-q")
    assert code == 0, err
    result = np.load(tmp_path / "out.npy")
    assert result.dtype == np.uint8 and result.min() == 0 and result.max() == 255
    assert "below 0" in out and "above 255" in out


def test_bad_dtype_is_one_line(capsys, tmp_path, model_file):
    np.save(tmp_path / "in.npy", np.ones((48, 56), np.float32))
    code, _, err = run(capsys, "deblur", tmp_path / "in.npy", model_file, "-o", tmp_path / "o.npy", "--dtype", "complex64")
    assert code != 0 and "output dtype complex64 is not supported" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.npy").exists()
