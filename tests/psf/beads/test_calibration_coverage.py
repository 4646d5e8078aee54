"""Bead slides whose beads leave most of the field unsampled are refused (pairs: test_pair_calibration.py)."""

import numpy as np
import pytest

from napari_coordgate.psf import calibrate_from_beads, simulate_lens
from napari_coordgate.psf.beads.report import (MAX_MEAN_OFFSET, MIN_HULL_FRACTION, centre_reach, check_spread,
                                              field_coverage, mean_offset)

FIELD = (192, 192)
FIX = r"image a slide with beads spread over the whole field of view, or crop the image to the region the beads cover"


def uniform(n: int, top_left, bottom_right, seed: int = 0) -> np.ndarray:
    """``n`` random ``(y, x)`` positions in a box given as fractions of the field."""
    low = np.multiply(top_left, np.subtract(FIELD, 1))
    high = np.multiply(bottom_right, np.subtract(FIELD, 1))
    return np.random.default_rng(seed).uniform(low, high, size=(n, 2))


def grid(values) -> np.ndarray:
    return np.array([(y, x) for y in values for x in values], dtype=float)


def clipped_at_the_edges() -> np.ndarray:
    rng = np.random.default_rng(3)
    along = rng.uniform(4, 187, 16)
    edge = np.concatenate([np.stack([np.zeros(4), along[:4]], 1), np.stack([np.full(4, 191.0), along[4:8]], 1),
                           np.stack([along[8:12], np.zeros(4)], 1), np.stack([along[12:], np.full(4, 191.0)], 1)])
    return np.vstack([edge, uniform(30, (0.1, 0.1), (0.9, 0.9), seed=4)])


# -- slides that pass ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "positions, warned",
    [
        pytest.param(uniform(70, (0, 0), (1, 1)), False, id="dense"),
        pytest.param(uniform(8, (0, 0), (1, 1), seed=2), True, id="8-random-beads"),
        pytest.param(grid((24, 96, 168)), True, id="sparse-3x3-grid"),
        pytest.param(clipped_at_the_edges(), False, id="clipped-at-the-edges"),
        pytest.param(uniform(60, (0, 0), (0.84, 0.84)), False, id="70%-of-the-field"),
        pytest.param(uniform(60, (0, 0), (1, 0.55)), True, id="left-55%"),
        pytest.param(uniform(60, (0, 0), (1, 0.5)), True, id="left-half"),
        pytest.param(uniform(60, (0.25, 0.25), (0.75, 0.75)), True, id="central-half"),
    ],
)
def test_slides_spread_over_the_field_pass(positions, warned):
    coverage, warnings = check_spread(positions, FIELD)
    assert bool(warnings) == warned, warnings
    if warned:
        assert f"beads cover only {100 * coverage:.0f}% of the field" in warnings[0]


def test_the_measures_of_spread():
    assert mean_offset(grid((0, 95.5, 191)), FIELD) == pytest.approx(0.0)
    assert mean_offset(np.array([[0.0, 0.0]]), FIELD) == pytest.approx(1.0)  # all in one corner
    assert mean_offset(uniform(400, (0, 0), (1, 0.5)), FIELD) == pytest.approx(0.354, abs=0.03)
    assert mean_offset(uniform(400, (0, 0), (0.5, 0.5)), FIELD) == pytest.approx(0.5, abs=0.03)
    # Along the rows, beads in the left half reach both edges; beads in a corner quarter never pass the centre.
    assert centre_reach(np.array([[0.0, 0.0], [191.0, 60.0]]), FIELD) == pytest.approx(1.0)
    assert centre_reach(uniform(400, (0, 0), (0.5, 0.5)), FIELD) <= 0.0
    # A wide sensor is judged per axis, like a square one.
    wide = np.array([[0.0, 0.0], [255.0, 0.0], [0.0, 280.5], [255.0, 280.5]])
    assert mean_offset(wide, (256, 512)) == pytest.approx(mean_offset(wide / [1, 2], (256, 256)), abs=0.01)


# -- slides that are refused -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "positions, message",
    [
        pytest.param(
            grid((16, 50, 84)),
            r"the 9 usable beads are bunched towards the top-left of the field: they lie in rows 16-84 and "
            r"columns 16-84 of the 192 x 192 image, their convex hull covers 13% of the field and their mean "
            r"position is 48% of the way from the field centre to its corners \(accepted: beads on both sides of "
            r"the centre, their mean position at most 40% of the way\), so the PSF over the rest of the field "
            r"would be extrapolated",
            id="nine-beads-in-a-corner",
        ),
        pytest.param(uniform(40, (0.5, 0.5), (1, 1)), r"the 40 usable beads are bunched towards the bottom-right",
                     id="a-corner-quarter"),
        pytest.param(uniform(40, (0.65, 0), (1, 1)), r"the 40 usable beads are bunched towards the bottom of the field",
                     id="the-bottom-35%"),
        pytest.param(uniform(40, (0, 0), (1, 0.3)), r"the 40 usable beads are bunched towards the left of the field",
                     id="the-left-third"),
        pytest.param(uniform(20, (0.45, 0.45), (0.55, 0.55)),
                     r"the 20 usable beads cover only 1% of the field \(their convex hull; they lie in rows "
                     r"\d+-\d+ and columns \d+-\d+ of the 192 x 192 image\): the PSF elsewhere cannot be measured",
                     id="a-small-cluster"),
    ],
)
def test_beads_bunched_in_part_of_the_field_are_refused(positions, message):
    with pytest.raises(ValueError, match=message + ".*" + FIX):
        check_spread(positions, FIELD)


def test_a_corner_quarter_is_refused_even_when_its_beads_hug_the_centre():
    """A mean position near enough the centre and a hull above the floor, but no bead past the centre lines."""
    positions = grid((25, 47, 69, 91))  # the top-left quarter, up to 4 px from the centre lines
    assert mean_offset(positions, FIELD) < MAX_MEAN_OFFSET and field_coverage(positions, FIELD) > MIN_HULL_FRACTION
    with pytest.raises(ValueError, match=r"the 16 usable beads are bunched towards the top-left of the field.*"
                                         r"accepted: beads on both sides of the centre"):
        check_spread(positions, FIELD)


def test_calibration_refuses_nine_beads_in_a_corner_before_fitting_a_model():
    """Nine bright beads in the top-left quarter: their hull covers 13 % of the field (above the 10 % floor)."""
    lens = simulate_lens((128, 128), grid=(4, 4), psf_size=21, defocus_edge=0.7, astigmatism_edge=0.4)
    image = np.full(lens.field_shape, 100.0)
    h = lens.psf_size // 2
    for y, x in grid((11, 34, 57)).astype(int):
        image[y - h : y + h + 1, x - h : x + h + 1] += 1e4 * lens.psf_at(y, x)
    messages = []
    with pytest.raises(ValueError, match=r"the 9 usable beads are bunched towards the top-left of the field: they lie "
                                         r"in rows \d+-\d+ and columns \d+-\d+ of the 128 x 128 image.*" + FIX):
        calibrate_from_beads(np.random.default_rng(7).poisson(image).astype(float), psf_size=21,
                             report=messages.append)
    assert not any(m.startswith("fitting the") for m in messages), messages  # refused after the first quick fit
