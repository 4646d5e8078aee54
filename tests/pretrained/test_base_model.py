"""The shipped base model: its file, its registry entry, and fine-tunes starting from it."""

import hashlib
import json

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, load_model
from napari_coordgate.cli.main import build_parser
from napari_coordgate.cli.training import starting_model, train_model
from napari_coordgate.pretrained import (
    DEFAULT_BASE, FINE_TUNE_LR, SCRATCH_LR, base_model, base_model_path, find_base, registry,
)
from napari_coordgate.pretrained import base_models as base_module
from napari_coordgate.pretrained.lens_family import random_lens
from napari_coordgate.psf.optics.simulate import simulate_lens


@pytest.fixture(scope="module")
def small_lens():
    return simulate_lens((64, 64), grid=(2, 2), defocus_edge=1.0)


def test_the_bundled_file_matches_its_registry_entry():
    entry = registry()[DEFAULT_BASE]
    path = base_model_path()
    assert path.stat().st_size == entry["bytes"] < 2_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    model = load_model(path)
    assert (model.arch, model.depth, model.base_channels) == (entry["arch"], entry["depth"], entry["base_channels"])
    assert model.metadata["base_model"]["steps"] == entry["steps"] > 0
    assert (entry["arch"], entry["depth"], entry["base_channels"]) == ("CGUNet", 3, 16)


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    entries = registry()
    copy = tmp_path / entries[DEFAULT_BASE]["file"]
    data = bytearray(base_model_path().read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(base_module, "REGISTRY_FILE", tmp_path / "base_models.json")
    (tmp_path / "base_models.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="checksum"):
        base_model_path()
    with pytest.raises(ValueError, match="no base model named 'nope'"):
        base_model_path("nope")


@pytest.mark.parametrize("gates", ["base", "identity", "reinit"])
def test_the_base_moves_to_any_field_with_the_chosen_gates(gates):
    base = load_model(base_model_path())
    model = base_model((96, 160), gates=gates)
    assert isinstance(model, CGUNet) and model.field_shape == (96, 160)
    backbone = [k for k in base.state_dict() if ".gate." not in k]
    assert all(torch.equal(base.state_dict()[k], model.state_dict()[k]) for k in backbone)
    block = model.gated_blocks()[0][2]
    with torch.no_grad():
        g = block.gate((96, 160), (8, 8), torch.zeros(1, 2), 1)
    if gates == "identity":
        assert torch.equal(g, torch.ones_like(g))
    elif gates == "base":
        assert torch.equal(model.state_dict()["down.0.gate.out.weight"], base.state_dict()["down.0.gate.out.weight"])
    x = torch.rand(1, 1, 96, 160)
    assert torch.isfinite(model.eval()(x, (0, 0))).all()


def test_the_base_already_deblurs_a_lens_it_never_saw():
    lens = random_lens(np.random.default_rng(987), (128, 128))
    from napari_coordgate.data import make_training_set

    val = make_training_set(lens, patch_size=32, n_specimens=1, n_val=2, seed=5, noise={"photons": 1000.0,
                                                                                          "read_noise": 2.0}).validation
    model = base_model((128, 128)).eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(val.blurred[:, None]), (0, 0))[:, 0].numpy()
    mse_in, mse_out = np.mean((val.blurred - val.sharp) ** 2), np.mean((pred - val.sharp) ** 2)
    assert mse_out < 0.8 * mse_in


def test_training_starts_from_the_base_by_default(small_lens):
    assert find_base("CGUNet", 3, 16) == DEFAULT_BASE and find_base("UNet", 3, 16) is None
    args = build_parser().parse_args(["train", "field.npz", "-o", "m.safetensors"])
    assert (args.start_from, args.arch, args.depth, args.channels) == ("auto", "cgunet", 3, 16)
    _, how = starting_model("auto", "cgunet", 3, 16, small_lens.field_shape)
    assert how == f"the shipped base model {DEFAULT_BASE}"
    _, how = starting_model("auto", "unet", 3, 16, small_lens.field_shape)
    assert how == "scratch"
    with pytest.raises(ValueError, match="no shipped base model is a UNet"):
        starting_model("base", "unet", 3, 16, small_lens.field_shape)
    trained = train_model(small_lens, steps=2, batch_size=2, patch_size=32, n_specimens=2, n_val=1, quiet=True)
    assert trained.metadata["training"]["started_from"] == f"the shipped base model {DEFAULT_BASE}"
    assert args.lr is None and trained.metadata["training"]["lr"] == FINE_TUNE_LR  # the fine-tuning rate
    scratch = train_model(small_lens, start_from="scratch", steps=1, batch_size=2, patch_size=32, n_specimens=2,
                          n_val=1, quiet=True, training_set=trained.training_set)
    assert scratch.metadata["training"]["lr"] == SCRATCH_LR
    chosen = train_model(small_lens, steps=1, lr=5e-4, batch_size=2, patch_size=32, n_val=1, quiet=True,
                         training_set=trained.training_set)
    assert chosen.metadata["training"]["lr"] == 5e-4
    assert trained.model.metadata["base_model"] == DEFAULT_BASE
