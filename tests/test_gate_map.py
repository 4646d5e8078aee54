"""Gate maps and local kernels: what the widgets show, computed without Qt."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from napari_coordgate import CoordConvUNet, UNet
from napari_coordgate.gate_map import gate_maps, local_response

FIELD = (64, 48)


@pytest.fixture
def model(cg_model_with_varied_gates):
    return cg_model_with_varied_gates(FIELD)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("down0", (4, 64, 48)), ("down1", (8, 32, 24)), ("down2", (16, 16, 12)),
        ("up1", (8, 32, 24)), ("up0", (4, 64, 48)),
    ],
)
def test_one_map_per_gate_on_the_level_grid(model, block, expected):
    maps = gate_maps(model, block)
    assert maps.shape == expected and maps.dtype == np.float32
    assert maps.std(axis=(1, 2)).min() > 0  # position-dependent


def test_odd_regions_round_up_to_whole_coarse_pixels(model):
    assert gate_maps(model, "down2", offset=(4, 4), shape=(21, 13)).shape == (16, 6, 4)


def test_maps_are_the_gates_the_forward_pass_applies(model):
    _, _, block = next(b for b in model.gated_blocks() if b[0] == "up1")
    seen = []
    hook = block.gate.register_forward_hook(lambda mod, args, out: seen.append(out.detach()))
    with torch.no_grad():
        model(torch.rand(1, 1, *FIELD), offset=(0, 0))
    hook.remove()
    assert_allclose(gate_maps(model, "up1"), seen[0][0].numpy(), rtol=1e-6, atol=1e-6)


def test_a_crop_shows_the_same_gates_as_the_whole_field(model):
    whole = gate_maps(model, "down1")
    crop = gate_maps(model, "down1", offset=(16, 8), shape=(20, 30))
    assert_allclose(crop, whole[:, 8:18, 4:19], rtol=1e-5, atol=1e-6)


def test_clear_errors(model):
    with pytest.raises(ValueError, match="CG U-Nets only"):
        gate_maps(UNet(3, base_channels=4, field_shape=FIELD), "down0")
    with pytest.raises(ValueError, match="CG U-Nets only"):
        gate_maps(CoordConvUNet(3, field_shape=FIELD, base_channels=4), "down0")
    with pytest.raises(ValueError, match="down0, down1, down2, up1, up0"):
        gate_maps(model, "middle")
    with pytest.raises(ValueError, match="not inside the field"):
        gate_maps(model, "down0", offset=(40, 0), shape=(32, 48))
    with pytest.raises(ValueError, match="calibrated for a field of shape"):
        gate_maps(model, "down0", field_shape=(128, 128))


def _identity(model):
    """The residual network with its head zeroed passes its input through unchanged."""
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    return model


@pytest.mark.parametrize("point", [(30, 20), (0, 0), (63, 47), (2, 45)])
def test_identity_network_has_a_delta_kernel(model, point):
    kernel = local_response(_identity(model), *point, size=9)
    expected = np.zeros((9, 9), np.float32)
    expected[4, 4] = 1.0
    assert_allclose(kernel, expected, atol=1e-6)


def test_kernel_equals_the_whole_image_response(model):
    y, x, size = 37, 21, 11
    kernel = local_response(model, y, x, size=size, background=0.2, amplitude=0.5)
    bg = torch.full((1, 1, *FIELD), 0.2)
    point = bg.clone()
    point[0, 0, y, x] += 0.5
    with torch.no_grad():
        whole = ((model(point) - model(bg)) / 0.5)[0, 0].numpy()
    r = size // 2
    assert_allclose(kernel, whole[y - r : y + r + 1, x - r : x + r + 1], atol=2e-5)
    assert np.abs(kernel).max() > 1e-3  # the network does respond


def test_kernel_follows_the_offset(model):
    """An image at offset (16, 8) sees the field pixel (y + 16, x + 8)."""
    assert_allclose(
        local_response(model, 10, 10, size=7, offset=(16, 8)), local_response(model, 26, 18, size=7), atol=1e-6
    )


def test_kernel_near_the_edge_is_zero_outside_the_field(model):
    kernel = local_response(model, 1, 46, size=7)
    assert kernel.shape == (7, 7)
    assert not kernel[:2].any() and not kernel[:, -2:].any()


def test_kernel_argument_errors(model):
    with pytest.raises(ValueError, match="odd"):
        local_response(model, 5, 5, size=8)
    with pytest.raises(ValueError, match="outside the field"):
        local_response(model, 70, 5)
    assert model.training is False


def test_a_stride_samples_the_same_smooth_gates(model):
    """Every stride-th pixel (a 2048 x 2048 field's map is drawn from a few hundred samples per side)."""
    full = gate_maps(model, "down0")
    strided = gate_maps(model, "down0", stride=4)
    assert strided.shape == (4, 16, 12)
    # a map pixel stands for the 4 x 4 block it covers: the gates there are nearly its value
    blocks = full.reshape(4, 16, 4, 12, 4).mean(axis=(2, 4))
    assert np.abs(strided - blocks).max() < 0.02 * np.ptp(full)
    with pytest.raises(ValueError, match="stride"):
        gate_maps(model, "down0", stride=0)
