"""The CoordGate model family: shapes, coordinates, gates, the paper's appendix."""

import numpy as np
import pytest
import torch
from torch import nn

from napari_coordgate import CGUNet, CoordConvUNet, CoordGate, UNet
from napari_coordgate.models import DirectGate, GateMLP, build_model
from napari_coordgate.models.coord_grid import as_offsets, coordinate_grid

FIELD = (96, 80)


def make(arch, depth=3, base=4):
    return arch(depth, base_channels=base, field_shape=FIELD)


@pytest.mark.parametrize("arch", [UNet, CGUNet, CoordConvUNet])
@pytest.mark.parametrize("shape", [(17, 23), (32, 32), (5, 9), (41, 1)])
def test_any_input_shape_is_preserved(arch, shape):
    model = make(arch).eval()
    x = torch.rand(2, 1, *shape)
    with torch.no_grad():
        y = model(x, offset=(8, 4))
    assert y.shape == x.shape and y.dtype == x.dtype


def test_forward_rejects_wrong_layout():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        make(CGUNet)(torch.rand(1, 3, 16, 16))


def test_coordinates_span_the_field_at_pixel_centres():
    grid = coordinate_grid((4, 8), (4, 8), as_offsets(None, 1))
    y, x = grid[0, 0, :, 0], grid[0, 1, 0, :]
    assert torch.allclose(y, torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert x[0] == pytest.approx(-1 + 1 / 8) and x[-1] == pytest.approx(1 - 1 / 8)
    # a coarse pixel of scale 2 sits at the centre of the 2x2 fine pixels it pools
    coarse = coordinate_grid((4, 8), (2, 4), as_offsets(None, 1), scale=2)
    assert torch.allclose(coarse[0, 0, :, 0], torch.tensor([-0.5, 0.5]))


def test_crop_coordinates_match_the_whole_field():
    whole = coordinate_grid(FIELD, (FIELD[0] // 4, FIELD[1] // 4), as_offsets(None, 1), scale=4)
    crop = coordinate_grid(FIELD, (5, 6), as_offsets((16, 32), 1), scale=4)
    assert torch.allclose(crop, whole[:, :, 4:9, 8:14])


def test_gate_mlp_is_nonlinear():
    mlp = GateMLP(3)
    with pytest.raises(ValueError, match="nonlinear"):
        GateMLP(3, n_hidden=0)
    g = mlp(FIELD, FIELD, as_offsets(None, 1), 1)[0].detach()
    # a gate affine in position has a vanishing second difference; this one does not
    assert g.diff(n=2, dim=-1).abs().max() > 1e-6 or g.diff(n=2, dim=-2).abs().max() > 1e-6


@pytest.mark.parametrize("arch", [CGUNet, CoordConvUNet])
def test_crop_at_its_offset_equals_crop_of_whole_field(arch):
    torch.manual_seed(0)
    field_shape = (192, 160)
    model = arch(3, base_channels=4, field_shape=field_shape).eval()
    field = torch.rand(1, 1, *field_shape)
    oy, ox, h, w = 36, 20, 96, 104  # offsets aligned to 2**(depth-1)
    with torch.no_grad():
        whole = model(field)
        crop = model(field[..., oy : oy + h, ox : ox + w], offset=(oy, ox))
    r = model.receptive_radius
    inner = (slice(None), slice(None), slice(r, h - r), slice(r, w - r))
    assert inner[2].stop > inner[2].start
    assert torch.allclose(crop[inner], whole[..., oy : oy + h, ox : ox + w][inner], atol=1e-5)


def test_position_matters_for_gated_models_only():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 16, 16)
    for model, moves in [(make(UNet, base=8), False), (make(CGUNet, base=8), True), (make(CoordConvUNet, base=8), True)]:
        model.eval()
        with torch.no_grad():
            a, b = model(x, offset=(0, 0)), model(x, offset=(64, 64))
        difference = (a - b).abs().max().item()
        assert (difference > 1e-7) == moves, (type(model).__name__, difference)


def test_cached_gate_equals_uncached_and_follows_weight_updates():
    torch.manual_seed(0)
    model = make(CGUNet).eval()
    x = torch.rand(3, 1, 40, 24)
    offsets = torch.tensor([[0, 0], [8, 8], [0, 0]])
    with torch.enable_grad():
        uncached = model(x, offsets).detach()
    with torch.no_grad():
        first = model(x, offsets)
        second = model(x, offsets)
    assert torch.equal(first, uncached) and torch.equal(second, uncached)
    assert all(block._cache for _, _, block in model.gated_blocks())
    # an optimiser step changes the gates: the cache must not serve stale maps
    with torch.no_grad():
        for _, _, block in model.gated_blocks():
            block.gate.out.bias.add_(0.5)
        updated = model(x, offsets)
    with torch.enable_grad():
        expected = model(x, offsets).detach()
    assert torch.allclose(updated, expected) and not torch.allclose(updated, uncached)


def test_gradients_reach_every_gate_mlp():
    model = make(CGUNet).train()
    x = torch.rand(2, 1, 32, 32)
    loss = (model(x, torch.tensor([[0, 0], [32, 48]])) - x).square().mean()
    loss.backward()
    for name, _, block in model.gated_blocks():
        for p in block.gate.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gated_blocks_cover_every_down_and_up_sampling_point():
    names = [n for n, _, _ in make(CGUNet, depth=4).gated_blocks()]
    assert names == ["down0", "down1", "down2", "down3", "up2", "up1", "up0"]
    assert make(UNet).gated_blocks() == []


def test_cg_unet3_is_at_least_30x_smaller_than_unet6():
    ratio = UNet(6, base_channels=32).n_parameters() / CGUNet(3, field_shape=(256, 256), base_channels=32).n_parameters()
    assert ratio >= 30


def test_residual_option():
    plain = UNet(2, base_channels=4, residual=False)
    residual = UNet(2, base_channels=4, residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(residual(x), plain(x) + x)


def test_build_model_round_trips_config():
    for model in (make(UNet), make(CGUNet, 2), make(CoordConvUNet, 4)):
        assert build_model(model.config).config == model.config
    with pytest.raises(ValueError, match="unknown model architecture"):
        build_model({"arch": "Transformer"})
    with pytest.raises(ValueError, match="field_shape"):
        CGUNet(3)


def locally_connected(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Reference locally connected 3x3 layer: kernels (H, W, 3, 3), zero padding."""
    patches = nn.functional.unfold(x, 3, padding=1)  # (B, 9, H*W)
    h, w = x.shape[-2:]
    k = kernels.reshape(h * w, 9).T  # (9, H*W)
    return (patches * k).sum(1).reshape(x.shape[0], 1, h, w)


def one_hot_coordgate(field):
    basis = nn.Conv2d(1, 9, 3, padding=1, bias=False)
    with torch.no_grad():
        basis.weight.copy_(torch.eye(9).reshape(9, 1, 3, 3))
    basis.requires_grad_(False)
    gate = CoordGate(basis, 9, field, gate=DirectGate(9, field), out_channels=1)
    with torch.no_grad():
        gate.project.weight.fill_(1.0)
        gate.project.bias.zero_()
    gate.project.requires_grad_(False)
    return gate


def test_coordgate_with_one_hot_basis_is_a_locally_connected_layer():
    """Paper appendix: with a complete 3x3 basis and a directly trainable gate,
    CoordGate reproduces any locally connected layer (exactly, by construction)."""
    torch.manual_seed(0)
    field = (12, 10)
    kernels = torch.randn(*field, 3, 3)
    gate = one_hot_coordgate(field)
    with torch.no_grad():
        gate.gate.values.copy_(kernels.reshape(*field, 9).permute(2, 0, 1))
    x = torch.randn(4, 1, *field)
    assert torch.allclose(gate(x, as_offsets(None, 4)), locally_connected(x, kernels), atol=1e-5)


def test_trained_direct_gate_learns_a_locally_connected_layer():
    torch.manual_seed(1)
    field = (10, 10)
    kernels = torch.randn(*field, 3, 3)
    gate = one_hot_coordgate(field)
    opt = torch.optim.Adam(gate.parameters(), lr=0.05)
    for _ in range(400):
        x = torch.randn(16, 1, *field)
        loss = (gate(x, as_offsets(None, 16)) - locally_connected(x, kernels)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    learned = gate.gate.values.detach().permute(1, 2, 0).reshape(*field, 3, 3)
    assert loss.item() < 1e-3
    # taps that fall on the zero padding never see data; all others are learned
    inner = (slice(1, -1), slice(1, -1))
    assert torch.allclose(learned[inner], kernels[inner], atol=0.05)


def test_direct_gate_rejects_inputs_outside_the_field():
    gate = DirectGate(2, (8, 8))
    with pytest.raises(ValueError, match="leaves the field"):
        gate((8, 8), (6, 6), torch.tensor([[4.0, 0.0]]), 1)


@pytest.mark.parametrize("bad", [(1, 2, 3), [[1, 2]] * 3])
def test_offsets_must_be_pairs(bad):
    with pytest.raises(ValueError, match="offset"):
        as_offsets(bad, 2)


def test_models_are_deterministic_numpy_free():
    # the model layer itself needs no numpy arrays: float64 inputs work too
    model = make(CGUNet).double().eval()
    with torch.no_grad():
        y = model(torch.rand(1, 1, 20, 20, dtype=torch.float64))
    assert y.dtype == torch.float64 and np.isfinite(y.numpy()).all()


def test_gate_cache_stays_warm_across_eval_calls_and_is_freed_for_training():
    model = make(CGUNet).eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        model(x)
    blocks = [b for _, _, b in model.gated_blocks()]
    assert all(b._cache for b in blocks)
    model.eval()
    assert all(b._cache for b in blocks)
    model.train()
    assert not any(b._cache for b in blocks)


# -- gates on a lattice (issue #21) ----------------------------------------------------


def lattice_gate(stride, n_gates=3, seed=0):
    torch.manual_seed(seed)
    mlp = GateMLP(n_gates, hidden=16, stride=stride)
    with torch.no_grad():  # a gate that varies clearly across the field
        mlp.out.weight.normal_(0, 1.0)
    return mlp


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_lattice_gates_depend_on_the_field_position_only(scale):
    mlp = lattice_gate(16)
    field = (192, 160)
    with torch.no_grad():
        whole = mlp(field, (field[0] // scale, field[1] // scale), as_offsets(None, 1), scale)
        offsets = torch.tensor([[36.0, 20.0], [0.0, 92.0], [96.0, 4.0]])  # any phase against the lattice
        crops = mlp(field, (24, 16), offsets * scale / 4, scale)
    for crop, (oy, ox) in zip(crops, (offsets * scale / 4 / scale).long().tolist()):
        assert torch.allclose(crop, whole[0, :, oy : oy + 24, ox : ox + 16], atol=1e-5)


def test_lattice_gates_are_the_mlp_at_the_lattice_points_and_linear_between():
    field = (96, 80)
    lattice, exact = lattice_gate(16), lattice_gate(1)
    exact.load_state_dict(lattice.state_dict())
    with torch.no_grad():
        # pixels of size 2 from offset 15 have their centres at 16, 18, 20, ...: every 8th is a lattice point
        g = lattice(field, (40, 32), as_offsets((15, 15), 1), 2)[0]
        e = exact(field, (40, 32), as_offsets((15, 15), 1), 2)[0]
    assert torch.allclose(g[:, ::8, ::8], e[:, ::8, ::8], atol=1e-5)
    assert not torch.allclose(g, e, atol=1e-3)  # in between it interpolates
    # linear between lattice points: a zero second difference inside each cell, along both axes
    assert g[:, 1:7, :].diff(n=2, dim=-2).abs().max() < 1e-4
    assert g[:, :, 1:7].diff(n=2, dim=-1).abs().max() < 1e-4


def test_a_stride_no_larger_than_a_level_pixel_evaluates_every_pixel():
    exact, coarse = lattice_gate(1), lattice_gate(4)
    coarse.load_state_dict(exact.state_dict())
    offsets = as_offsets((8, 12), 1)
    with torch.no_grad():
        assert torch.equal(coarse(FIELD, (6, 5), offsets, 4), exact(FIELD, (6, 5), offsets, 4))
        assert not torch.allclose(coarse(FIELD, (6, 5), offsets, 2), exact(FIELD, (6, 5), offsets, 2))
    with pytest.raises(ValueError, match="at least 1 pixel"):
        GateMLP(3, stride=0)


def test_the_gate_stride_is_in_the_config_only_when_it_is_a_lattice():
    # per-pixel models keep the configuration (and file format) of versions from before the lattice
    per_pixel, lattice = make(CGUNet), CGUNet(3, base_channels=4, field_shape=FIELD, gate_stride=8)
    assert "gate_stride" not in per_pixel.config and lattice.config["gate_stride"] == 8
    assert all(block.gate.stride == 1 for _, _, block in per_pixel.gated_blocks())
    assert all(block.gate.stride == 8 for _, _, block in build_model(lattice.config).gated_blocks())
    with pytest.raises(ValueError, match="gate_stride"):
        CGUNet(3, field_shape=FIELD, gate_stride=0)
