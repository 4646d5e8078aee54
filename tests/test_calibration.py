"""Calibration: bead slides, sharp + blurred pairs, and the errors users will meet."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_coordgate.psf import calibrate_from_beads, calibrate_from_pair, render_bead_target, simulate_lens
from napari_coordgate.psf.registration import _resample


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def central(kernel: np.ndarray, size: int) -> np.ndarray:
    c, h = kernel.shape[0] // 2, size // 2
    return kernel[c - h : c + h + 1, c - h : c + h + 1]


def node_correlations(measured, truth) -> np.ndarray:
    """Pearson correlation of each grid PSF with the truth, on the smaller of the two kernel sizes."""
    size = min(measured.psf_size, truth.psf_size)
    gy, gx = truth.grid_shape
    return np.array(
        [[pearson(central(measured.psfs[i, j], size), central(truth.psfs[i, j], size)) for j in range(gx)] for i in range(gy)]
    )


@pytest.fixture(scope="module")
def lens():
    """A lens with defocus and astigmatism growing towards the edge (FWHM 2.8 px centre, 6 px corners)."""
    return simulate_lens((256, 256), grid=(4, 4), psf_size=21, defocus_edge=0.8, astigmatism_edge=0.5)


@pytest.fixture(scope="module")
def bead_slide(lens):
    return render_bead_target(lens, n_beads=90, brightness=(2000, 20000), seed=1)


# -- beads -----------------------------------------------------------------------------------------
def test_beads_recover_the_psf_field(lens, bead_slide):
    image, true_positions = bead_slide
    messages = []
    field = calibrate_from_beads(image, grid=(4, 4), report=messages.append)
    assert field.kind == "beads" and field.field_shape == (256, 256) and field.grid_shape == (4, 4)
    assert messages
    meta = field.metadata
    used = np.array(meta["beads"])
    assert used.shape == (meta["n_used"], 2) and meta["n_used"] >= 30
    assert meta["n_detected"] == meta["n_used"] + sum(meta["rejected"].values())
    # Nearly every bead used is a real bead, located to a fraction of a pixel (the rest are
    # touching pairs the render placed a few pixels apart, found as one bead).
    distance, _ = cKDTree(true_positions).query(used)
    assert np.mean(distance < 0.5) >= 0.9
    correlation = node_correlations(field, lens)
    well_covered = np.array(meta["coverage"]) >= 3
    assert well_covered.sum() >= 12
    assert correlation[well_covered].min() >= 0.9, correlation


def test_automatic_psf_size_holds_the_aberrated_corners():
    """The kernel is sized for the widest PSFs (the corners), not the typical one."""
    lens = simulate_lens((256, 256), defocus_edge=1.0, astigmatism_edge=0.4, coma_edge=0.2)  # the sample lens
    image, _ = render_bead_target(lens, n_beads=120, brightness=(5e3, 5e4), seed=3)
    field = calibrate_from_beads(image, grid=(4, 4))
    k = field.psf_size
    corner = lens.psf_at(0, 0)
    c = corner.shape[0] // 2
    assert corner[c - k // 2 : c + k // 2 + 1, c - k // 2 : c + k // 2 + 1].sum() >= 0.9
    # Neighbours are kept out of the patch core, not out of the whole patch: most beads stay usable.
    assert k / 2 < field.metadata["min_separation"] < k
    assert field.metadata["n_used"] >= 60


def test_grid_is_chosen_from_the_bead_coverage(lens, bead_slide):
    image, _ = bead_slide
    field = calibrate_from_beads(image)
    assert field.metadata["grid"] == "automatic" and not field.metadata["poorly_covered_cells"]
    gy, gx = field.grid_shape
    assert gy == gx and 2 <= gy <= 8
    # One cell finer would leave some node with fewer than 3 beads nearby (or exceed the 8 cap).
    if gy < 8:
        finer = calibrate_from_beads(image, grid=(gy + 1, gx + 1))
        assert finer.metadata["grid"] == "given" and finer.metadata["poorly_covered_cells"]
    # A strip of beads: cells follow the image's shape.
    strip = calibrate_from_beads(image[:, :128])
    assert strip.grid_shape[0] > strip.grid_shape[1]


def test_saturated_beads_are_rejected(lens):
    image, true_positions = render_bead_target(lens, n_beads=60, brightness=(2000, 60000), seed=2)
    level = float(np.percentile(image, 99.9))
    clipped = np.minimum(image, level)
    field = calibrate_from_beads(clipped, grid=(4, 4), saturation=level)
    assert field.metadata["rejected"]["saturated"] >= 3
    # No bead used has a clipped pixel nearby.
    saturated_pixels = np.argwhere(image >= level)
    distance, _ = cKDTree(saturated_pixels).query(np.array(field.metadata["beads"]))
    assert distance.min() > 2


def test_saturation_of_an_integer_image_is_found_without_being_told(lens):
    image, _ = render_bead_target(lens, n_beads=60, brightness=(2000, 60000), seed=2)
    counts = np.clip(image * 65535 / np.percentile(image, 99.9), 0, 65535).astype(np.uint16)
    field = calibrate_from_beads(counts, grid=(4, 4))
    assert field.metadata["saturation_level"] == 65535
    assert field.metadata["rejected"]["saturated"] >= 3


def test_all_beads_saturated_is_an_error(lens):
    image, _ = render_bead_target(lens, n_beads=40, brightness=(20000, 40000), seed=3)
    with pytest.raises(ValueError, match="all .* beads found are saturated"):
        calibrate_from_beads(np.minimum(image, 150.0), saturation=150.0)


def test_an_image_without_beads_is_an_error():
    rng = np.random.default_rng(4)
    background = rng.poisson(100.0, size=(128, 128)) + rng.normal(0, 2.0, size=(128, 128))
    with pytest.raises(ValueError, match="no beads found"):
        calibrate_from_beads(background)


def test_bead_calibration_needs_a_2d_image():
    with pytest.raises(ValueError, match="2D image is required"):
        calibrate_from_beads(np.zeros((3, 64, 64)))


# -- sharp + blurred pair -----------------------------------------------------------------------
def pattern(shape, seed: int) -> np.ndarray:
    """Random binary blobs of a few pixels: broadband, like a printed calibration target."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.2)
    return (noise > np.percentile(noise, 55)).astype(float) * 0.8 + 0.1


def test_pair_recovers_the_psf_field(lens):
    rng = np.random.default_rng(5)
    sharp = pattern((256, 256), seed=6)
    seen = ndimage.shift(sharp, (1.3, -0.7), order=3, mode="reflect")  # the slide sits slightly off
    blurred = lens.blur(seen) * 1000 + 50 + rng.normal(0, 10, (256, 256))  # 1 % noise
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4))
    assert field.kind == "pair"
    np.testing.assert_allclose(field.metadata["registration"]["shift"], (1.3, -0.7), atol=0.1)
    correlation = node_correlations(field, lens)
    assert correlation.min() >= 0.8, correlation


def test_pair_with_a_magnification_difference(lens):
    rng = np.random.default_rng(7)
    sharp = pattern((300, 300), seed=8)
    seen, _ = _resample(sharp, 1.06, (0.4, -1.1), (256, 256))  # 1.06 pattern pixels per camera pixel
    blurred = lens.blur(seen) + rng.normal(0, 0.01, (256, 256))
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4), psf_size=21)
    assert field.metadata["registration"]["scale"] == pytest.approx(1.06, abs=0.005)
    assert node_correlations(field, lens).min() >= 0.8


def test_unrelated_images_cannot_be_registered():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="could not register the blurred image to the sharp pattern"):
        calibrate_from_pair(rng.random((128, 128)), ndimage.gaussian_filter(rng.random((128, 128)), 2))


@pytest.mark.parametrize(
    "sharp, blurred, message",
    [
        (np.zeros((2, 64, 64)), np.zeros((64, 64)), "sharp image must be 2D"),
        (np.random.default_rng(0).random((64, 64)), np.ones((64, 64)) + 1j, "blurred image must hold real numbers"),
        (np.ones((64, 64)), np.ones((64, 64)), "sharp image is constant"),
    ],
)
def test_unusable_pairs_are_errors(sharp, blurred, message):
    with pytest.raises(ValueError, match=message):
        calibrate_from_pair(sharp, blurred)
