"""Bead detection on small synthetic images: positions, touching beads, background and noise, pure noise."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from napari_coordgate.psf.beads.detection import detect_beads, estimate_background

SHAPE = (96, 96)
BACKGROUND = 100.0


def gaussian_beads(positions, fluxes, sigma: float, shape=SHAPE) -> np.ndarray:
    """Noise-free image of Gaussian beads (the pixel-centre value of each Gaussian, unit sum per bead)."""
    rows, cols = np.indices(shape, dtype=float)
    image = np.zeros(shape)
    for (y, x), flux in zip(positions, fluxes):
        image += flux * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    return image


def noisy(expected: np.ndarray, read_noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(expected).astype(float) + rng.normal(0, read_noise, expected.shape)


def matched(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance from each true bead to its nearest detection."""
    distance, _ = cKDTree(found).query(truth)
    return distance


ISOLATED = np.array([[15.3, 20.7], [18.6, 70.2], [47.45, 47.9], [75.1, 18.35], [78.8, 77.6], [50.2, 82.5]])


def test_isolated_beads_are_found_at_their_positions():
    fluxes = np.array([3000, 6000, 9000, 4000, 12000, 5000], float)
    image = noisy(BACKGROUND + gaussian_beads(ISOLATED, fluxes, 1.3), 2.0, seed=0)
    found = detect_beads(image)
    assert len(found) == len(ISOLATED)
    assert matched(found.centres, ISOLATED).max() < 0.5
    # Every attribute has one entry per bead.
    assert found.snr.shape == found.diameters.shape == found.peak_values.shape == (len(ISOLATED),)
    assert np.all(found.snr > 5.0)  # the default threshold
    # The peak value is the largest raw pixel of the bead (for saturation checks).
    order = cKDTree(found.centres).query(ISOLATED)[1]
    for (y, x), peak in zip(ISOLATED, found.peak_values[order]):
        patch = image[int(y) - 3 : int(y) + 5, int(x) - 3 : int(x) + 5]
        assert peak == pytest.approx(patch.max())


def test_brighter_beads_are_more_significant():
    fluxes = np.array([800, 1600, 3200, 6400, 12800, 25600], float)
    image = noisy(BACKGROUND + gaussian_beads(ISOLATED, fluxes, 1.3), 2.0, seed=1)
    found = detect_beads(image)
    assert len(found) == len(ISOLATED)
    order = cKDTree(found.centres).query(ISOLATED)[1]
    assert np.all(np.diff(found.snr[order]) > 0)


def test_a_wider_bead_is_found_and_measured_wider():
    """A wider (defocused) bead is found too, and its footprint is the larger one."""
    sharp, wide = np.array([[22.4, 22.6]]), np.array([[66.2, 62.7]])
    image = noisy(BACKGROUND + gaussian_beads(sharp, [6000], 1.2) + gaussian_beads(wide, [20000], 3.0), 2.0, seed=2)
    found = detect_beads(image)
    assert len(found) == 2
    order = cKDTree(found.centres).query(np.concatenate([sharp, wide]))[1]
    assert matched(found.centres, np.concatenate([sharp, wide])).max() < 0.5
    assert found.diameters[order[1]] > found.diameters[order[0]]


@pytest.mark.parametrize("separation", [5.0, 6.5])
def test_touching_beads_are_separated(separation):
    """Two beads whose footprints merge are split into two detections, each near its own bead."""
    centre = np.array([48.3, 47.6])
    direction = np.array([0.6, 0.8])
    pair = np.array([centre - separation / 2 * direction, centre + separation / 2 * direction])
    image = noisy(BACKGROUND + gaussian_beads(pair, [8000, 6000], 1.0), 2.0, seed=3)
    found = detect_beads(image)
    assert len(found) == 2
    assert matched(found.centres, pair).max() < 0.5


def test_background_and_noise_on_a_flat_noisy_background():
    rng = np.random.default_rng(4)
    sigma = 3.0
    image = BACKGROUND + rng.normal(0, sigma, SHAPE) + gaussian_beads(ISOLATED, np.full(len(ISOLATED), 5000.0), 1.3)
    found = detect_beads(image)
    assert found.background.shape == SHAPE
    np.testing.assert_allclose(found.background, BACKGROUND, atol=1.0)
    assert found.noise_sigma == pytest.approx(sigma, rel=0.1)


def test_noise_sigma_follows_the_noise():
    rng = np.random.default_rng(5)
    sigmas = [detect_beads(BACKGROUND + rng.normal(0, s, SHAPE)).noise_sigma for s in (1.0, 4.0)]
    assert sigmas[0] == pytest.approx(1.0, rel=0.1) and sigmas[1] == pytest.approx(4.0, rel=0.1)


def test_estimate_background_follows_a_smooth_gradient_and_ignores_beads():
    rows, cols = np.indices(SHAPE, dtype=float)
    ramp = 100.0 + 0.5 * rows - 0.3 * cols
    image = ramp + gaussian_beads(ISOLATED, np.full(len(ISOLATED), 5000.0), 1.3)
    estimate = estimate_background(image)
    assert estimate.shape == SHAPE
    # Away from the outermost half tiles (held constant beyond the tile centres), the ramp is followed.
    inner = (slice(8, 88), slice(8, 88))
    np.testing.assert_allclose(estimate[inner], ramp[inner], atol=1.5)
    assert np.abs(estimate - ramp).max() < 10.0


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_pure_noise_has_no_beads(seed):
    image = noisy(np.full(SHAPE, BACKGROUND), 2.0, seed=seed)
    found = detect_beads(image)
    assert len(found) == 0
    assert found.centres.shape == (0, 2)
    assert found.noise_sigma == pytest.approx(np.sqrt(BACKGROUND + 4.0), rel=0.1)
