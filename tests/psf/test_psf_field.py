"""PSFField (interpolation, fast blur, files) and simulate_lens."""

import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from napari_coordgate.psf import PSFField, simulate_lens
from napari_coordgate.psf.kernels import psf_fwhm


def random_field(field_shape=(64, 80), grid=(3, 4), k=9, seed=0) -> PSFField:
    """A field whose grid PSFs are all different (random blobs), so mix-ups show."""
    rng = np.random.default_rng(seed)
    psfs = ndimage.gaussian_filter(rng.random(grid + (k, k)), (0, 0, 1, 1)) ** 4
    return PSFField(psfs, field_shape, metadata={"note": "random", "values": np.arange(3)})


@pytest.fixture(scope="module")
def default_lens() -> PSFField:
    return simulate_lens((128, 128), grid=(4, 4))


def test_psf_at_is_unit_sum_and_equals_nodes():
    field = random_field()
    for y, x in [(0, 0), (10.3, 47.9), (63, 79), (-5, 100), (31.5, 40.0)]:
        assert field.psf_at(y, x).sum() == pytest.approx(1.0, abs=1e-9)
    nodes = field.node_positions()
    assert nodes.shape == (3, 4, 2)
    for i, j in [(0, 0), (1, 2), (2, 3)]:
        np.testing.assert_allclose(field.psf_at(*nodes[i, j]), field.psfs[i, j], atol=1e-6)
    # Half-way between two nodes: their average.
    middle = (nodes[1, 1] + nodes[1, 2]) / 2
    np.testing.assert_allclose(field.psf_at(*middle), (field.psfs[1, 1] + field.psfs[1, 2]) / 2, atol=1e-6)


def test_default_lens_is_sharp_at_the_centre_and_blurred_at_the_corners(default_lens):
    assert default_lens.kind == "simulated" and default_lens.psf_size % 2 == 1
    centre = psf_fwhm(default_lens.psf_at(63.5, 63.5))
    corner = psf_fwhm(default_lens.psf_at(0, 0))
    assert centre < 3.5  # diffraction limit: ~0.51 lambda / NA = 2.5 px
    assert corner > 3 * centre
    summary = default_lens.summary()
    assert summary["fwhm_centre_px"] == pytest.approx(centre)
    assert summary["fwhm_corners_mean_px"] > 3 * summary["fwhm_centre_px"]
    json.dumps(summary)


def test_default_lens_costs_at_least_3_db_at_the_edges(default_lens):
    rng = np.random.default_rng(1)
    specimen = ndimage.gaussian_filter(rng.random((128, 128)), 1.0)
    specimen = np.clip((specimen - specimen.mean()) / specimen.std(), 0, None)  # blobs on black
    blurred = default_lens.blur(specimen)
    yy, xx = np.mgrid[:128, :128]
    radius = np.hypot(yy - 63.5, xx - 63.5) / np.hypot(63.5, 63.5)
    psnr = {
        name: peak_signal_noise_ratio(specimen[region], blurred[region], data_range=float(np.ptp(specimen)))
        for name, region in (("centre", radius < 0.3), ("edge", radius > 0.7))
    }
    assert psnr["centre"] - psnr["edge"] >= 3.0, psnr


def test_astigmatism_is_oriented_by_the_field_position():
    # Astigmatism shows as elongation once there is some defocus (off the medial focus).
    field = simulate_lens((129, 129), grid=(3, 3), psf_size=21, defocus_edge=1.0, astigmatism_edge=1.0)

    def elongation(psf):  # > 0: wider along y than along x
        rows, cols = np.indices(psf.shape) - psf.shape[0] // 2
        return float((psf * rows**2).sum() - (psf * cols**2).sum())

    right_of_axis = elongation(field.psfs[1, 2])
    below_axis = elongation(field.psfs[2, 1])
    assert abs(right_of_axis) > 0.5 and abs(below_axis) > 0.5
    assert np.sign(right_of_axis) == -np.sign(below_axis)
    assert elongation(field.psfs[1, 1]) == pytest.approx(0.0, abs=1e-6)


def direct_blur(field: PSFField, image: np.ndarray) -> np.ndarray:
    """Pixel-by-pixel reference: every (reflect-padded) source pixel spreads its own psf_at."""
    r = field.psf_size // 2
    h, w = image.shape

    def spread(source):
        padded = np.pad(source, r, mode="reflect")
        out = np.zeros((h + 4 * r, w + 4 * r))
        for y, x in np.ndindex(padded.shape):
            out[y : y + 2 * r + 1, x : x + 2 * r + 1] += padded[y, x] * field.psf_at(y - r, x - r)
        return out[2 * r : 2 * r + h, 2 * r : 2 * r + w]

    return spread(image) / spread(np.ones_like(image))


def test_blur_equals_the_direct_spatially_varying_sum():
    field = random_field((30, 34), grid=(2, 3), k=7, seed=3)
    image = np.random.default_rng(4).random((30, 34))
    np.testing.assert_allclose(field.blur(image), direct_blur(field, image), atol=1e-5)


def test_blur_of_a_point_is_the_local_psf():
    field = simulate_lens((128, 128), grid=(4, 4), psf_size=31, defocus_edge=1.0, astigmatism_edge=0.4)
    r = field.psf_size // 2
    for y, x in [(64, 64), (20, 30), (16, 16), (100, 111), (45, 80)]:
        image = np.zeros(field.field_shape, np.float32)
        image[y, x] = 1.0
        blurred = field.blur(image)
        expected = field.psf_at(y, x)
        error = np.abs(blurred[y - r : y + r + 1, x - r : x + r + 1] - expected).max()
        assert error < 0.05 * expected.max(), (y, x, error / expected.max())
        assert blurred.sum() == pytest.approx(1.0, abs=0.03)


def test_blur_with_one_psf_everywhere_is_a_plain_convolution():
    rng = np.random.default_rng(5)
    psf = rng.random((7, 7))
    field = PSFField(np.broadcast_to(psf, (3, 2, 7, 7)), (40, 36))
    image = np.zeros((40, 36))
    image[10:30, 8:28] = rng.random((20, 20))
    expected = ndimage.convolve(image, psf / psf.sum(), mode="constant")
    np.testing.assert_allclose(field.blur(image), expected, atol=1e-5)


def test_blur_keeps_a_constant_image_constant():
    field = random_field()
    flat = np.full(field.field_shape, 3.0)
    out = field.blur(flat)
    assert out.dtype == np.float32 and out.shape == flat.shape
    np.testing.assert_allclose(out, 3.0, rtol=1e-5)
    lens = simulate_lens((96, 96), grid=(4, 4), psf_size=25)  # strongly varying PSFs
    np.testing.assert_allclose(lens.blur(np.ones((96, 96))), 1.0, rtol=1e-5)


def test_blur_of_a_crop_matches_the_whole_field():
    field = random_field((96, 112), grid=(4, 4), k=11, seed=1)
    rng = np.random.default_rng(2)
    image = rng.random((96, 112)).astype(np.float32)
    whole = field.blur(image)
    r = field.psf_size // 2
    (y0, x0), (h, w) = (17, 30), (40, 50)
    crop = field.blur(image[y0 : y0 + h, x0 : x0 + w], offset=(y0, x0))
    np.testing.assert_allclose(crop[r:-r, r:-r], whole[y0 + r : y0 + h - r, x0 + r : x0 + w - r], atol=1e-5)
    # The whole field blurred at the wrong offset differs: the offset is used.
    shifted = field.blur(image[y0 : y0 + h, x0 : x0 + w], offset=(0, 0))
    assert np.abs(shifted[r:-r, r:-r] - crop[r:-r, r:-r]).max() > 1e-3
    # A batch of crops at one offset equals crop by crop.
    batch = np.stack([image[y0 : y0 + h, x0 : x0 + w], image[:h, :w]])
    out = field.blur(batch, offset=(y0, x0))
    assert out.shape == batch.shape
    np.testing.assert_allclose(out[0], crop, atol=1e-6)
    np.testing.assert_allclose(out[1], field.blur(image[:h, :w], offset=(y0, x0)), atol=1e-6)


def test_save_load_round_trip(tmp_path):
    field = random_field()
    path = tmp_path / "field.npz"
    field.save(path)
    loaded = PSFField.load(path)
    np.testing.assert_array_equal(loaded.psfs, field.psfs)
    assert loaded.field_shape == field.field_shape and loaded.grid_shape == field.grid_shape
    assert loaded.kind == field.kind and loaded.metadata == {"note": "random", "values": [0, 1, 2]}
    assert loaded.summary() == field.summary()


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="not a napari-coordgate PSF-field file") as err:
        PSFField.load(garbage)
    assert "pickle" not in str(err.value)  # never suggest loading a file unsafely
    random_bytes = tmp_path / "random.npz"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="not a napari-coordgate PSF-field file") as err:
        PSFField.load(random_bytes)
    assert "pickle" not in str(err.value)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(ValueError, match="PSF-field file"):
        PSFField.load(foreign)
    truncated = tmp_path / "truncated.npz"
    random_field().save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a napari-coordgate PSF-field file"):
        PSFField.load(truncated)


def test_montage_and_fwhm_map_shapes():
    field = random_field()
    montage = field.montage()
    assert montage.shape == (3 * 9, 4 * 9)
    assert montage.max() == pytest.approx(1.0)
    np.testing.assert_allclose(montage[9:18, 18:27], field.psfs[1, 2] / field.psfs[1, 2].max(), rtol=1e-6)
    assert field.fwhm_map().shape == (3, 4)


def test_the_montage_shows_the_part_of_each_psf_that_holds_its_light():
    """A kernel sized for faint tails would show each PSF as a dot: the montage crops to what holds 90 %."""
    k = 61
    yy, xx = np.indices((k, k)) - k // 2
    spot = np.exp(-(yy**2 + xx**2) / (2 * 1.5**2))
    halo = np.exp(-np.hypot(yy, xx) / 12.0)
    psfs = np.stack([spot / spot.sum() * 0.97 + halo / halo.sum() * 0.03] * 4).reshape(2, 2, k, k)
    field = PSFField(psfs, (64, 64))
    size = field.visible_size()
    assert 9 <= size < 21
    montage = field.montage()
    assert montage.shape == (2 * size, 2 * size) and montage.max() == pytest.approx(1.0)
    assert field.montage(size=k).shape == (2 * k, 2 * k)


@pytest.mark.parametrize(
    "psfs, message",
    [(np.ones((2, 2, 4, 4)), "k odd"), (np.ones((2, 5, 5)), "gy, gx, k, k"), (-np.ones((1, 1, 3, 3)), "positive")],
)
def test_invalid_psfs_are_rejected(psfs, message):
    with pytest.raises(ValueError, match=message):
        PSFField(psfs, (32, 32))


def test_field_smaller_than_the_psf_is_an_error():
    with pytest.raises(ValueError, match="smaller than the PSF size"):
        simulate_lens((16, 16), grid=(2, 2), psf_size=31)
    with pytest.raises(ValueError, match="smaller than the PSF size"):
        simulate_lens((2, 2), grid=(1, 1))


def test_simulate_lens_default_size_fits_small_fields():
    field = simulate_lens((48, 48), grid=(2, 2))
    assert field.psf_size < 48 and field.psf_size % 2 == 1
    seeded = simulate_lens((48, 48), grid=(2, 2), seed=5)
    assert seeded.metadata["optical_axis"] != field.metadata["optical_axis"]
    np.testing.assert_array_equal(simulate_lens((48, 48), grid=(2, 2), seed=5).psfs, seeded.psfs)
