"""Sample data: File > Open Sample > napari-coordgate."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import ndimage

from napari_coordgate._qt import sample_data

SAMPLES = {
    "beads": "bead calibration target",
    "blurred_specimen": "blurred specimen",
    "ground_truth": "ground truth",
}


@pytest.mark.parametrize("key", list(SAMPLES))
def test_open_sample_adds_one_image(viewer, key):
    layers = viewer.open_sample("napari-coordgate", key)
    assert [layer.name for layer in layers] == [SAMPLES[key]]
    layer = viewer.layers[SAMPLES[key]]
    assert layer.data.shape == sample_data.SAMPLE_LENS["field_shape"] and layer.data.dtype == np.float32
    assert layer.metadata["napari_coordgate"]["lens"]["defocus_edge"] == sample_data.SAMPLE_LENS["defocus_edge"]


@pytest.mark.parametrize("make", [sample_data.bead_calibration_target, sample_data.blurred_specimen])
def test_samples_are_reproducible(make):
    first, second = make()[0][0], make()[0][0]
    assert first is not second
    assert_array_equal(first, second)


def detail(image: np.ndarray) -> float:
    """Fine structure: mean absolute Laplacian relative to the mean level."""
    return float(np.abs(ndimage.laplace(ndimage.gaussian_filter(image, 1.0))).mean() / image.mean())


def test_the_specimen_is_blurred_most_at_the_edge():
    truth = sample_data.ground_truth()[0][0]
    blurred = sample_data.blurred_specimen()[0][0]
    assert abs(blurred.mean() / truth.mean() - 1) < 0.05  # same units: blur keeps the flux
    centre, corner = np.s_[96:160, 96:160], np.s_[:64, :64]
    kept_centre = detail(blurred[centre]) / detail(truth[centre])
    kept_corner = detail(blurred[corner]) / detail(truth[corner])
    assert kept_corner < kept_centre < 1.0


def test_the_bead_slide_has_beads_across_the_field():
    image = sample_data.bead_calibration_target()[0][0]
    peaks = image > np.median(image) + 2.5 * image.std()
    for quadrant in (peaks[:128, :128], peaks[:128, 128:], peaks[128:, :128], peaks[128:, 128:]):
        assert ndimage.label(quadrant)[1] >= 5


def test_the_shipped_images_are_what_the_recipe_makes(monkeypatch):
    """napari asks for a sample on its GUI thread: the images are read from the shipped file, which holds
    exactly what the recipe makes (remade with ``python -m napari_coordgate.data.samples``)."""
    from napari_coordgate.data import samples

    made, lens = samples.make_sample_images()
    samples._images.cache_clear()
    monkeypatch.setattr(samples, "make_sample_images", lambda: pytest.fail("the images were made, not read"))
    shipped, shipped_lens = samples.sample_images()
    assert shipped_lens == lens
    for key in samples.SAMPLE_NAMES:
        np.testing.assert_allclose(shipped[key], made[key], rtol=1e-5, atol=1e-3 * float(made[key].max()))
    samples._images.cache_clear()


def test_another_recipe_is_made_not_read(monkeypatch):
    from napari_coordgate.data import samples

    monkeypatch.setitem(samples.SAMPLE_RECIPE, "bead_seed", 4)
    samples._images.cache_clear()
    try:
        images, _ = samples.sample_images()
        with np.load(samples.SAMPLE_FILE) as stored:
            assert not np.array_equal(images["beads"], stored["beads"])
    finally:
        samples._images.cache_clear()
