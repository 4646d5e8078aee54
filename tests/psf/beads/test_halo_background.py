"""The background under a bead slide: the beads' own tails are not background."""

import numpy as np
import torch

from napari_coordgate.psf.beads.detection import estimate_background
from napari_coordgate.psf.beads.halo_background import background_under_beads, modelled_light
from napari_coordgate.psf.field_models.pupil_field import PupilFieldModel


def _haloed_model(window: int) -> PupilFieldModel:
    """A lens with strong spherical aberration: a bright core inside a wide, faint halo."""
    model = PupilFieldModel(window, cutoff=0.2)
    with torch.no_grad():
        model.coefficients[5][0] = 0.6  # spherical, constant over the field
    return model


def test_the_beads_tails_are_removed_before_the_background_is_taken():
    shape, window = (128, 128), 61
    model = _haloed_model(window)
    positions = np.array([(y, x) for y in range(12, 128, 20) for x in range(12, 128, 20)], float) + 0.3
    fluxes = np.full(len(positions), 2e4)
    light = modelled_light(model, shape, positions, fluxes, window)
    # Each bead's light lands where it is, and (the box holding most of it) about its whole flux per bead.
    inside = light.sum() / fluxes.sum()
    assert 0.85 < inside <= 1.0
    assert light[12, 12] > 10 * light[22, 22]
    data = 100.0 + light
    assert np.median(estimate_background(data)) > 101  # the tails' veil taken for background
    under = background_under_beads(data, model, positions, fluxes, window)
    np.testing.assert_allclose(under, 100.0, atol=0.05)


def test_beads_outside_the_image_add_only_what_falls_inside():
    shape, window = (64, 64), 31
    model = _haloed_model(window)
    light = modelled_light(model, shape, np.array([[-10.0, 30.0], [30.0, 80.0], [-200.0, 5.0]]),
                           np.array([1e4, 1e4, 1e4]), window)
    assert light.shape == shape and np.all(light >= 0)
    assert 0 < light.sum() < 1e4  # part of the first two beads' light, none of the far one's
