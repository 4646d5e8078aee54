"""Field-aware tiled inference: napari_coordgate.deblur."""

import warnings

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, CoordConvUNet, UNet, deblur
from napari_coordgate.inference import iter_deblur
from napari_coordgate.inference.tiling import plan_tiles

FIELD = (200, 176)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CGUNet(3, field_shape=FIELD, base_channels=8).eval()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return (rng.random(FIELD) * 1000 + 100).astype(np.uint16)


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (3, 29, 31), (2, 2, 25, 19)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64, bool])
def test_shape_and_dtype(model, shape, dtype):
    rng = np.random.default_rng(1)
    img = (rng.random(shape) * 200).astype(dtype)
    out = deblur(img, model, device="cpu")
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_input_is_never_modified(model, image):
    before = image.copy()
    deblur(image, model, device="cpu", tile_shape=(96, 96))
    assert np.array_equal(image, before)


def test_output_is_in_input_units(model):
    # an untrained residual model is close to the identity; the round trip
    # through the robust normalisation must give back the input's units
    img = np.full((40, 40), 5000.0) + np.random.default_rng(0).random((40, 40)) * 100
    out = deblur(img, model, device="cpu")
    assert abs(float(np.median(out)) - float(np.median(img))) < 200


@pytest.mark.parametrize("arch", [CGUNet, CoordConvUNet, UNet])
@pytest.mark.parametrize("tile", [(96, 96), (128, 80), (160, 176)])
def test_tiled_equals_untiled(arch, tile, image):
    torch.manual_seed(0)
    model = arch(3, base_channels=8, field_shape=FIELD)
    whole = deblur(image, model, device="cpu", tile_shape=FIELD)
    tiled = deblur(image, model, device="cpu", tile_shape=tile)
    assert np.abs(tiled - whole).max() <= 1e-4 * np.ptp(whole)


def test_tiles_are_aligned_and_cover_the_plane():
    plan = plan_tiles((208, 176), (96, 96), margin=29, alignment=4)
    assert len(plan) > 4
    total = np.zeros((208, 176))
    for sy, sx, w in plan:
        assert sy.start % 4 == 0 and sx.start % 4 == 0
        total[sy, sx] += w
    assert total.min() > 0.99  # every pixel is fully weighted by some tile


@pytest.mark.parametrize("side, tile", [(2048, 1024), (4096, 1024), (1100, 1024), (2048, 512)])
def test_tiles_share_the_plane_evenly(side, tile):
    """No tile larger than asked, and little more work than the plane: 1024 px tiles took 2.25x a 2048 px plane."""
    plan = plan_tiles((side, side), (tile, tile), margin=29, alignment=4, ramp=16)
    assert plan.y.size <= tile
    assert len(plan) * plan.y.size**2 <= 1.35 * side**2
    total = np.zeros((side, side))
    for sy, sx, w in plan:
        assert sy.start % 4 == 0 and sx.start % 4 == 0
        total[sy, sx] += w
    assert total.min() > 0.99


def test_crop_with_offset_equals_crop_of_whole_field(model, image):
    oy, ox, h, w = 40, 28, 120, 112
    whole = deblur(image, model, device="cpu", intensity_range=(100, 1100))
    crop = deblur(image[oy : oy + h, ox : ox + w], model, offset=(oy, ox), device="cpu", intensity_range=(100, 1100))
    r = model.receptive_radius
    inner = (slice(r, h - r), slice(r, w - r))
    ref = whole[oy : oy + h, ox : ox + w]
    assert np.abs(crop[inner] - ref[inner]).max() <= 1e-4 * np.ptp(whole)


def test_stack_planes_match_single_planes(model, image):
    stack = np.stack([image, image[::-1].copy()])
    out = deblur(stack, model, device="cpu")
    assert np.allclose(out[1], deblur(stack[1], model, device="cpu"), atol=1e-3)


def test_progress_reports_every_tile(model, image):
    steps = []
    deblur(np.stack([image, image]), model, device="cpu", tile_shape=(96, 96), progress=steps.append)
    assert steps[-1].done == steps[-1].total == len(steps)
    assert [s.done for s in steps] == list(range(1, len(steps) + 1))


def test_iter_deblur_can_be_stopped(model, image):
    gen = iter_deblur(np.stack([image] * 3), model, device="cpu", tile_shape=(96, 96))
    first = next(gen)
    assert first.done == 1
    gen.close()  # no error, nothing left running


def test_out_of_memory_halves_the_tile(image, monkeypatch):
    torch.manual_seed(0)
    model = CGUNet(3, field_shape=FIELD, base_channels=4).eval()
    forward = model.forward
    sizes = []

    def fragile(x, offset=None):
        sizes.append(x.shape[-1])
        if x.shape[-1] > 100:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(x, offset)

    monkeypatch.setattr(model, "forward", fragile)
    with pytest.warns(RuntimeWarning, match="retrying with 88x88"):
        out = deblur(image, model, device="cpu", tile_shape=(176, 176))
    monkeypatch.undo()
    assert max(sizes) > 100 and sizes[-1] <= 100
    whole = deblur(image, model, device="cpu")
    assert np.abs(out - whole).max() <= 1e-4 * np.ptp(whole)


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error(image, monkeypatch):
    model = CGUNet(3, field_shape=FIELD, base_channels=4).eval()

    def broke(x, offset=None):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model, "forward", broke)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(MemoryError, match="smallest"):
            deblur(image, model, device="cpu", tile_shape=(176, 176))


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.array([1.0, 2.0, np.nan, 4.0] * 100).reshape(20, 20), ValueError, "NaN or infinite"),
        (np.full((20, 20), np.inf), ValueError, "NaN or infinite"),
        (np.zeros((0, 20)), ValueError, "empty"),
        (np.zeros((20, 20, 3)), ValueError, "RGB"),
        (np.zeros((20, 20), complex), TypeError, "complex"),
        (np.zeros(20), ValueError, "at least 2D"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "real numbers"),
    ],
)
def test_bad_images_raise_clear_errors(model, bad, error, match):
    with pytest.raises(error, match=match):
        deblur(bad, model, device="cpu")


def test_image_that_does_not_fit_the_field_names_both_shapes(model):
    with pytest.raises(ValueError, match=r"\(150, 100\).*\(200, 176\)"):
        deblur(np.zeros((150, 100)), model, offset=(60, 0), device="cpu")
    with pytest.raises(ValueError, match=r"\(300, 300\).*\(200, 176\)"):
        deblur(np.zeros((300, 300)), model, device="cpu")


def test_bad_arguments(model, image):
    with pytest.raises(TypeError, match="napari_coordgate model"):
        deblur(image, torch.nn.Conv2d(1, 1, 3), device="cpu")
    with pytest.raises(ValueError, match="too small"):
        deblur(image, model, device="cpu", tile_shape=(32, 32))
    with pytest.raises(ValueError, match="device"):
        deblur(image, model, device="tpu")
    with pytest.raises(ValueError, match="offset"):
        deblur(image, model, offset=(1, 2, 3), device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_is_a_clear_error(model, image):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        deblur(image, model, device="cuda")
