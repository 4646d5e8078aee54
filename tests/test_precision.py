"""bf16 autocast and channels_last: chosen by the device, same results as float32 within bf16 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, deblur
from napari_coordgate.data import make_training_set
from napari_coordgate.precision import compute_mode, native_bf16
from napari_coordgate.psf import simulate_lens
from napari_coordgate.training import run_training, train
from napari_coordgate.training.metrics import psnr

FIELD = (64, 64)


def test_compute_mode_follows_the_device():
    cpu = torch.device("cpu")
    assert compute_mode(cpu, "auto").bf16 == native_bf16(cpu)
    assert compute_mode(cpu, "bf16").bf16 and not compute_mode(cpu, "fp32").bf16
    assert compute_mode(cpu).channels_last
    assert "bf16" in compute_mode(cpu, "bf16").describe() and compute_mode(cpu, "fp32").describe().startswith("fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        compute_mode(cpu, "fp16")


def test_bf16_deblur_matches_fp32_and_outputs_float32():
    torch.manual_seed(0)
    model = CGUNet(2, field_shape=FIELD, base_channels=4).eval()
    with torch.no_grad():  # a non-trivial residual, so the comparison is not just the identity
        model.head.weight.mul_(20)
    image = (np.random.default_rng(0).random((2, *FIELD)) * 1000).astype(np.uint16)
    exact = deblur(image, model, device="cpu", precision="fp32")
    fast = deblur(image, model, device="cpu", precision="bf16")
    again = deblur(image, model, device="cpu", precision="fp32")  # no bf16 gate map reused from the cache
    assert fast.dtype == np.float32 and np.isfinite(fast).all()
    np.testing.assert_array_equal(exact, again)
    assert np.abs(exact - image).max() > 5  # the network does change the image
    span = float(exact.max() - exact.min())
    assert psnr(fast / span, exact / span) > 45  # bf16 rounding only
    tiled = deblur(image, model, device="cpu", precision="bf16", tile_shape=(48, 48))
    assert psnr(tiled / span, exact / span) > 45
    odd = image[:, 3:, 5:]  # a crop whose size is not a multiple of the model's alignment: padded
    cropped = deblur(odd, model, offset=(3, 5), device="cpu", precision="bf16")
    assert cropped.shape == odd.shape and np.isfinite(cropped).all()


def test_training_in_bf16_learns_like_fp32():
    field = simulate_lens(FIELD, grid=(2, 2), psf_size=9, defocus_edge=1.0)
    data = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, noise=None, seed=0)
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = CGUNet(2, field_shape=FIELD, base_channels=4)
        results[precision] = run_training(train(model, data, steps=40, val_every=20, device="cpu",
                                                precision=precision, preview=False))
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert "bf16 autocast" in results["bf16"].device and "fp32" in results["fp32"].device
    fp32, bf16 = results["fp32"].best_metrics["val_psnr"], results["bf16"].best_metrics["val_psnr"]
    assert bf16 > results["bf16"].history[0]["val_psnr"]  # it learns
    assert abs(bf16 - fp32) < 1.0
