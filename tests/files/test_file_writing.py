"""Files written by the package get the modes the user's umask gives new files (not tempfile's 0600)."""

import os
import stat

import numpy as np
import pytest

from napari_coordgate import CGUNet, simulate_lens
from napari_coordgate.files.images import write_image
from napari_coordgate.files.atomic import current_umask
from napari_coordgate.model_files import save_model


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_umask_is_read_without_changing_it(umask_022):
    assert current_umask() == 0o022
    assert current_umask() == 0o022


def test_models_calibrations_and_images_are_readable_by_group_and_others(tmp_path, umask_022):
    model_path = save_model(CGUNet(2, field_shape=(32, 32), base_channels=4), tmp_path / "model.safetensors")
    field_path = tmp_path / "lens.npz"
    simulate_lens((32, 32), grid=(2, 2), psf_size=7).save(field_path)
    image = np.zeros((2, 16, 16), np.float32)
    tiff, zarr = tmp_path / "out.tif", tmp_path / "out.zarr"
    write_image(tiff, image, axes="ZYX")
    for path in (model_path, field_path, tiff):
        assert mode(path) == 0o644, path
    try:
        write_image(zarr, image, axes="ZYX")
    except (ImportError, ValueError):  # zarr is optional
        return
    assert mode(zarr) == 0o755
    assert all(mode(os.path.join(folder, name)) == 0o644 for folder, _, names in os.walk(zarr) for name in names)
