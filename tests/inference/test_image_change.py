"""describe_change: how deblurring changed an image, without ground truth."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_coordgate.inference.image_change import describe_change, detail_ratio, noise_sigma


@pytest.fixture(scope="module")
def sharp():
    rng = np.random.default_rng(0)
    image = gaussian_filter(rng.random((128, 128)), 1.5)
    return (image - image.min()) / (image.max() - image.min())


def test_noise_sigma_recovers_white_noise():
    rng = np.random.default_rng(1)
    smooth = gaussian_filter(rng.random((200, 200)), 8)
    assert noise_sigma(smooth + rng.normal(0, 0.05, smooth.shape)) == pytest.approx(0.05, rel=0.1)


def test_sharpening_shows_as_more_detail_and_less_blur(sharp):
    blurred = gaussian_filter(sharp, 2.5)
    change = describe_change(blurred, sharp)
    assert change.detail_gain > 2 and change.blur_after < change.blur_before
    assert describe_change(sharp, blurred).detail_gain < 0.5
    assert detail_ratio(sharp) > detail_ratio(blurred)
    text = change.sentence()
    assert "sharpness" in text and "noise" in text and "clipped" in text


def test_pixels_outside_the_source_range_are_counted(sharp):
    after = sharp.copy()
    after[:16] = 2.0  # an eighth of the rows above the source's maximum
    assert describe_change(sharp, after).out_of_range == pytest.approx(1 / 8)


def test_stacks_use_one_plane_and_shapes_must_match(sharp):
    stack = np.stack([sharp, sharp, sharp])
    assert np.isfinite(describe_change(stack, stack).blur_after)
    with pytest.raises(ValueError, match="differ in shape"):
        describe_change(stack, sharp)
