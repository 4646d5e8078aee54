"""Synthetic training data: specimens, noise, training sets (no Qt, no GPU needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_coordgate.data import add_poisson_gaussian, estimate_noise, make_specimen, make_training_set
from napari_coordgate.data.specimens import SPECIMEN_KINDS
from napari_coordgate.psf.psf_field import PSFField


def gaussian_psf_field(field_shape=(64, 96), grid=(4, 4), k=11, sigma_centre=0.7, sigma_edge=2.5) -> PSFField:
    """A PSF field whose Gaussian blur grows with the distance from the centre."""
    yy, xx = np.mgrid[:k, :k] - k // 2
    gy, gx = grid
    psfs = np.empty((gy, gx, k, k))
    for i in range(gy):
        for j in range(gx):
            r = np.hypot((i + 0.5) / gy - 0.5, (j + 0.5) / gx - 0.5) / np.hypot(0.5, 0.5)
            s = sigma_centre + (sigma_edge - sigma_centre) * r**2
            psfs[i, j] = np.exp(-(yy**2 + xx**2) / (2 * s * s))
    return PSFField(psfs, field_shape, kind="custom")


@pytest.fixture(scope="module")
def field() -> PSFField:
    return gaussian_psf_field()


# -- specimens ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SPECIMEN_KINDS)
def test_specimens_are_float32_in_range_and_seeded(kind):
    a = make_specimen((40, 56), np.random.default_rng(3), kind)
    b = make_specimen((40, 56), np.random.default_rng(3), kind)
    c = make_specimen((40, 56), np.random.default_rng(4), kind)
    assert a.shape == (40, 56) and a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 2.0
    if kind in ("cells", "filaments", "puncta"):
        assert np.percentile(a, 5) < 0.1  # sparse structure on a dim background
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mixed_specimens_have_the_fine_detail_of_real_images():
    """Power at 5-20 px over coarser scales: real fluorescence crops average about 0.3
    (benchmarks/specimen_realism.py); the earlier generator's narrow-band texture gave 0.9-2.5."""
    from napari_coordgate.inference.image_change import detail_ratio

    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(16):
        x = make_specimen((128, 128), rng).astype(np.float64)
        low, high = np.percentile(x, (0.1, 99.9))
        ratios.append(detail_ratio(np.clip((x - low) / (high - low), 0, 1)))
    assert 0.1 < np.mean(ratios) < 0.5


def test_membranes_outline_packed_cells():
    thick = []
    for seed in range(8):
        image = make_specimen((128, 128), np.random.default_rng(seed), "membranes", pixel_sigma=0)
        bright = image > np.percentile(image, 95)
        # thin boundaries: few of the brightest pixels survive a one-pixel erosion
        thick.append(ndimage.binary_erosion(bright).sum() / bright.sum())
        assert np.percentile(image, 50) < 0.6 * np.percentile(image, 99)  # dim interiors
    assert np.median(thick) < 0.35


def test_specimen_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="kind"):
        make_specimen((32, 32), rng, "galaxies")
    with pytest.raises(ValueError, match="shape"):
        make_specimen((4, 32), rng)


# -- noise -------------------------------------------------------------------------------
def test_poisson_gaussian_statistics():
    rng = np.random.default_rng(0)
    photons, read_noise = 50.0, 4.0
    for level in (0.1, 1.0):
        noisy = add_poisson_gaussian(np.full((200, 200), level), photons, read_noise, rng)
        assert noisy.dtype == np.float32
        assert noisy.mean() == pytest.approx(level, rel=0.02, abs=0.002)
        expected_var = level / photons + (read_noise / photons) ** 2
        assert noisy.var() == pytest.approx(expected_var, rel=0.05)
    with pytest.raises(ValueError):
        add_poisson_gaussian(np.ones((4, 4)), 0.0)


def _calibration_image(photons, read_noise, seed):
    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(make_specimen((192, 192), rng, "cells"), 2.0)
    clean /= np.percentile(clean, 99.8)  # 1.0 at the bright level
    return add_poisson_gaussian(clean, photons, read_noise, rng)


@pytest.mark.parametrize(("photons", "read_noise"), [(100.0, 3.0), (1000.0, 10.0), (50.0, 2.0)])
def test_estimate_noise_recovers_parameters(photons, read_noise):
    image = _calibration_image(photons, read_noise, seed=int(photons))
    found = estimate_noise(image, offset=0.0)
    assert found["photons"] == pytest.approx(photons, rel=0.3)
    assert found["read_noise"] == pytest.approx(read_noise, rel=0.3)
    # the same image as a camera would record it: gain 0.5 ADU/e-, offset 100 ADU
    adu = image * photons * 0.5 + 100.0
    found = estimate_noise(adu, offset=100.0)
    assert found["gain"] == pytest.approx(0.5, rel=0.3)
    assert found["photons"] == pytest.approx(photons, rel=0.3)
    assert found["read_noise"] == pytest.approx(read_noise, rel=0.3)
    # without the offset, the shot noise (photons) is still found
    assert estimate_noise(adu)["photons"] == pytest.approx(photons, rel=0.3)


def test_estimate_noise_rejects_bad_images():
    with pytest.raises(ValueError):
        estimate_noise(np.zeros((8, 8)))
    with pytest.raises(ValueError):
        estimate_noise(np.full((32, 32), np.nan))


# -- training sets -----------------------------------------------------------------------
def test_patches_are_crops_of_the_bank_at_their_offsets(field):
    data = make_training_set(field, patch_size=32, n_specimens=3, n_val=1, noise=None, alignment=16, seed=1)
    rng = np.random.default_rng(0)
    H, W = field.field_shape
    seen = set()
    for _ in range(20):
        blurred, sharp, offsets, info = data.sample_batch(4, rng, return_info=True)
        assert blurred.shape == sharp.shape == (4, 1, 32, 32) and blurred.dtype == torch.float32
        assert offsets.shape == (4, 2) and offsets.dtype == torch.int64
        span = info["high"] - info["low"]
        for b, (oy, ox) in enumerate(offsets.tolist()):
            assert (oy % 16 == 0 or oy == H - 32) and (ox % 16 == 0 or ox == W - 32)
            assert 0 <= oy <= H - 32 and 0 <= ox <= W - 32
            seen.add((oy, ox))
            i, gain = info["bank_index"][b], info["brightness"][b]
            raw_blurred = blurred[b, 0].numpy() * span[b] + info["low"][b]
            raw_sharp = sharp[b, 0].numpy() * span[b] + info["low"][b]
            # not flipped, rotated or transposed: exactly the crop at the offset
            np.testing.assert_allclose(raw_blurred, gain * data.bank_blurred[i, oy:oy + 32, ox:ox + 32], atol=2e-5)
            np.testing.assert_allclose(raw_sharp, gain * data.bank_sharp[i, oy:oy + 32, ox:ox + 32], atol=2e-5)
    assert (0, 0) in seen and any(oy == H - 32 for oy, _ in seen) and any(ox == W - 32 for _, ox in seen)
    # the bank's blurred images are the PSF field's blur of its sharp ones
    np.testing.assert_allclose(data.bank_blurred[0], field.blur(data.bank_sharp[0]), atol=1e-5)


def test_normalisation_uses_the_whole_field_percentiles():
    small = gaussian_psf_field((64, 64))  # 4096 pixels: the percentiles use every pixel
    data = make_training_set(small, patch_size=32, n_specimens=2, n_val=1, noise=None, seed=2)
    _, _, _, info = data.sample_batch(3, np.random.default_rng(1), return_info=True)
    for b in range(3):
        whole = info["brightness"][b] * data.bank_blurred[info["bank_index"][b]]
        low, high = np.percentile(whole, data.percentiles)
        assert info["low"][b] == pytest.approx(low, rel=1e-4, abs=1e-6)
        assert info["high"][b] == pytest.approx(high, rel=1e-4)


def test_patch_noise_has_the_requested_statistics(field):
    noise = {"photons": 80.0, "read_noise": 3.0}
    data = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, noise=noise, seed=3)
    blurred, _, offsets, info = data.sample_batch(16, np.random.default_rng(5), return_info=True)
    residual, expected = [], []
    for b, (oy, ox) in enumerate(offsets.tolist()):
        span = info["high"][b] - info["low"][b]
        clean = info["brightness"][b] * data.bank_blurred[info["bank_index"][b], oy:oy + 32, ox:ox + 32]
        residual.append(blurred[b, 0].numpy() * span + info["low"][b] - clean)
        expected.append(clean / 80.0 + (3.0 / 80.0) ** 2)
    residual, expected = np.concatenate(residual), np.concatenate(expected)
    assert abs(residual.mean()) < 0.01
    assert (residual**2).mean() == pytest.approx(expected.mean(), rel=0.1)


def test_sampling_is_reproducible_and_the_bank_refreshes(field):
    def draws(seed):
        data = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, seed=seed, refresh_every=8)
        first = data.bank_sharp[0].copy()
        rng = np.random.default_rng(7)
        batches = [data.sample_batch(4, rng) for _ in range(3)]
        return batches, first, data

    a, first_a, data_a = draws(0)
    b, _, _ = draws(0)
    c, _, _ = draws(1)
    for x, y in zip(a, b):
        for tx, ty in zip(x, y):
            assert torch.equal(tx, ty)
    assert not torch.equal(a[0][0], c[0][0])
    assert not np.array_equal(first_a, data_a.bank_sharp[0])  # 12 patches drawn: the oldest was replaced


def test_validation_set_is_held_out_and_normalised(field):
    data = make_training_set(field, patch_size=32, n_specimens=3, n_val=2, seed=0)
    val = data.validation
    assert len(val) == 2 and val.blurred.shape == val.sharp.shape == (2, *field.field_shape)
    for image in val.blurred:
        low, high = np.percentile(image, data.percentiles)
        assert low == pytest.approx(0.0, abs=1e-5) and high == pytest.approx(1.0, abs=1e-5)
    for sharp, scale in zip(val.sharp, val.scales):
        raw = scale.denormalize(sharp)
        assert not any(np.allclose(raw, s, atol=1e-4) for s in data.bank_sharp)
    summary = data.summary()
    json.dumps(summary)
    assert summary["field_shape"] == list(field.field_shape) and summary["psf_field"]["kind"] == "custom"


def test_user_sharp_images_of_any_size(field):
    rng = np.random.default_rng(0)
    small, large = rng.random((40, 50)) * 1000, rng.random((200, 150)) * 1000
    data = make_training_set(field, patch_size=32, n_specimens=4, n_val=1, sharp_images=[small, large],
                             specimen_kind=None, seed=0)
    assert data.bank_sharp.shape == (4, *field.field_shape)
    assert data.bank_sharp.min() >= 0 and np.percentile(data.bank_sharp, 50) < 1.0
    assert data.summary()["n_user_images"] == 2
    stack = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, sharp_images=np.stack([small, small]))
    assert stack.summary()["n_user_images"] == 2


def test_torch_path_matches_numpy_path_without_noise(field):
    data_np = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, noise=None, seed=4)
    data_t = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, noise=None, seed=4)
    a = data_np.sample_batch(3, np.random.default_rng(2))
    b = data_t.sample_batch(3, np.random.default_rng(2), device="cpu")
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)
    noisy = make_training_set(field, patch_size=32, n_specimens=2, n_val=1, seed=4)
    blurred, _, _ = noisy.sample_batch(2, np.random.default_rng(2), device="cpu")
    assert blurred.shape == (2, 1, 32, 32) and torch.isfinite(blurred).all()


def test_noise_settings_and_calibration_image(field):
    assert make_training_set(field, patch_size=32, n_specimens=1, n_val=0, noise=500).noise["photons"] == 500
    given = {"photons": 300.0, "read_noise": 1.5}
    assert make_training_set(field, patch_size=32, n_specimens=1, n_val=0, noise=given).noise == given
    calibration = _calibration_image(120.0, 3.0, seed=9)
    auto = make_training_set(field, patch_size=32, n_specimens=1, n_val=0, calibration_image=calibration).noise
    assert auto["photons"] == pytest.approx(120.0, rel=0.3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_size": 128}, "patch_size"),
        ({"noise": "loud"}, "noise"),
        ({"noise": {"read_noise": 2.0}}, "photons"),
        ({"noise": -5.0}, "photons"),
        ({"sharp_images": [np.zeros((2, 30, 30))]}, "2D"),
        ({"sharp_images": np.zeros((2, 2, 30, 30))}, "2D"),
        ({"specimen_kind": None}, "sharp_images"),
        ({"n_specimens": 0}, "n_specimens"),
    ],
)
def test_bad_training_set_arguments(field, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_training_set(field, **{"patch_size": 32, "n_val": 0, **kwargs})


def test_bad_batch_size(field):
    with pytest.raises(ValueError, match="batch_size"):
        make_training_set(field, patch_size=32, n_specimens=1, n_val=0).sample_batch(0, np.random.default_rng())


def test_a_large_field_is_validated_on_crops_blurred_where_they_lie(monkeypatch):
    """A 2048 x 2048 camera is validated on 512 px crops; here a 160 x 192 field on 64 px crops."""
    from napari_coordgate import CGUNet
    from napari_coordgate.data import training_set
    from napari_coordgate.training import train

    monkeypatch.setattr(training_set, "FULL_FIELD_VALIDATION", 128)
    monkeypatch.setattr(training_set, "VALIDATION_CROP", 64)
    lens = gaussian_psf_field((160, 192))
    data = make_training_set(lens, patch_size=32, n_specimens=2, n_val=5, noise=None, alignment=16)
    val = data.validation
    assert val.blurred.shape == (5, 64, 64) and data.summary()["validation_shape"] == [64, 64]
    # the centre, then the corners, on the alignment grid
    assert val.offsets == [(48, 64), (0, 0), (96, 128), (0, 128), (96, 0)]
    # each crop is blurred as its specimen would be in the whole field: through the PSFs where it lies
    offset, m = val.offsets[2], lens.psf_size // 2  # the bottom-right corner
    truth, blurred = data._blurred_region(offset, (64, 64), np.random.default_rng(7))
    (oy, ox), (H, W) = offset, lens.field_shape
    region = np.s_[oy - m : min(H, oy + 64 + m), ox - m : min(W, ox + 64 + m)]
    specimen = np.zeros(lens.field_shape, np.float32)
    specimen[region] = make_specimen(specimen[region].shape, np.random.default_rng(7), "mixed")
    np.testing.assert_array_equal(truth, specimen[oy : oy + 64, ox : ox + 64])
    np.testing.assert_allclose(blurred, lens.blur(specimen)[oy : oy + 64, ox : ox + 64], rtol=1e-4, atol=1e-5)
    # and training validates on them, region by region
    torch.manual_seed(0)
    model = CGUNet(depth=2, field_shape=lens.field_shape, base_channels=4)
    records = list(train(model, data, steps=2, batch_size=2, val_every=1, device="cpu", preview=False))
    last = records[-1]
    assert np.isfinite(last.val_psnr) and np.isfinite(last.val_psnr_centre) and np.isfinite(last.val_psnr_edge)
    assert np.isfinite(last.input_psnr_edge)
