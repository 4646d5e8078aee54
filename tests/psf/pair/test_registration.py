"""Registering a sharp pattern to a shifted, scaled and blurred image of it."""

import numpy as np
import pytest
from scipy import ndimage

from napari_coordgate.psf.pair.registration import MIN_REGISTRATION_SCORE, estimate_scale, register_pattern

SHAPE = (128, 128)


def pattern(seed: int, shape=SHAPE) -> np.ndarray:
    """Random blobs of a few pixels (broadband, like a printed target)."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.2)
    return (noise > np.percentile(noise, 55)).astype(float) * 0.8 + 0.1


def imaged(sharp: np.ndarray, scale: float, shift, shape=SHAPE, blur: float = 1.5, noise: float = 0.0,
           seed: int = 0) -> np.ndarray:
    """The blurred image with the documented geometry: ``image(o) = sharp(scale * (o - shift - c_out) + c_in)``."""
    c_in = (np.array(sharp.shape) - 1) / 2
    c_out = (np.array(shape) - 1) / 2
    offset = c_in - scale * (np.asarray(shift, float) + c_out)
    moved = ndimage.affine_transform(sharp, np.full(2, scale), offset=offset, output_shape=shape, order=3,
                                     mode="reflect")
    image = ndimage.gaussian_filter(moved, blur)
    return image + np.random.default_rng(seed).normal(0, noise, shape) if noise else image


@pytest.mark.parametrize("shift", [(5.0, -3.0), (2.3, -1.7), (-0.45, 0.8)])
def test_a_known_shift_is_recovered(shift):
    sharp = pattern(0)
    registration = register_pattern(sharp, imaged(sharp, 1.0, shift), allow_scale=False)
    np.testing.assert_allclose(registration.shift, shift, atol=0.1)
    assert registration.scale == 1.0
    assert registration.score > 0.9
    assert registration.aligned.shape == registration.valid.shape == SHAPE


def test_the_aligned_pattern_matches_the_image():
    """The aligned pattern, blurred as the instrument blurs, is the image (inside the valid pixels)."""
    sharp = pattern(1)
    blurred = imaged(sharp, 1.0, (3.4, -2.2))
    registration = register_pattern(sharp, blurred, allow_scale=False)
    valid = registration.valid
    # The pattern was moved by (3.4, -2.2): the first three rows and the last two columns have no source.
    assert not valid[:3].any() and not valid[:, -2:].any() and valid[4:-1, 1:-3].all()
    reblurred = ndimage.gaussian_filter(registration.aligned, 1.5)
    inner = ndimage.binary_erosion(valid, iterations=6)
    assert np.abs(reblurred - blurred)[inner].max() < 0.05 * np.ptp(blurred)


def test_a_noisy_image_is_registered():
    sharp = pattern(2)
    registration = register_pattern(sharp, imaged(sharp, 1.0, (-4.6, 3.25), noise=0.1, seed=1), allow_scale=False)
    np.testing.assert_allclose(registration.shift, (-4.6, 3.25), atol=0.15)
    assert registration.score > 0.8


@pytest.mark.parametrize("scale, shift", [(1.08, (1.5, -2.0)), (0.92, (-2.3, 0.7))])
def test_a_known_scale_and_shift_are_recovered(scale, shift):
    sharp = pattern(3, (144, 144))
    blurred = imaged(sharp, scale, shift)
    assert estimate_scale(sharp, blurred) == pytest.approx(scale, rel=0.01)
    registration = register_pattern(sharp, blurred)
    assert registration.scale == pytest.approx(scale, rel=0.01)
    np.testing.assert_allclose(registration.shift, shift, atol=0.25)
    assert registration.score > 0.9
    # Without the scale the alignment is worse.
    assert register_pattern(sharp, blurred, allow_scale=False).score < registration.score


def test_no_scale_difference_keeps_scale_one():
    sharp = pattern(4)
    registration = register_pattern(sharp, imaged(sharp, 1.0, (1.2, 2.6)))
    assert registration.scale == pytest.approx(1.0, abs=3e-3)
    np.testing.assert_allclose(registration.shift, (1.2, 2.6), atol=0.1)


def test_progress_is_reported():
    sharp = pattern(5)
    messages = []
    register_pattern(sharp, imaged(sharp, 1.0, (0.5, 0.5)), allow_scale=False, report=messages.append)
    assert len(messages) == 1 and messages[0].startswith("registration: scale 1.0000")


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_an_unrelated_image_scores_below_the_acceptance_threshold(seed):
    """As calibrate_from_pair refuses them: white noise against other, smoothed, white noise."""
    rng = np.random.default_rng(seed)
    registration = register_pattern(rng.random(SHAPE), ndimage.gaussian_filter(rng.random(SHAPE), 2))
    assert registration.score < MIN_REGISTRATION_SCORE


def test_unrelated_patterns_score_far_below_the_same_pattern():
    """Images of the same pattern score 0.87-0.99, unrelated ones at most about 0.3 (pair/calibrate.py notes a
    few unrelated images just above MIN_REGISTRATION_SCORE; none comes near a trusted registration, 0.6)."""
    shape = (96, 96)
    same = register_pattern(pattern(20, shape), imaged(pattern(20, shape), 1.0, (2.0, 1.0), shape)).score
    other = [register_pattern(pattern(seed, shape), imaged(pattern(seed + 50, shape), 1.0, (2.0, 1.0), shape)).score
             for seed in range(20, 24)]
    assert same > 0.87
    assert max(other) < 0.6
    assert np.median(other) < MIN_REGISTRATION_SCORE
