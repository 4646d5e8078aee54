"""Two field models that the held-out beads cannot separate must agree, or the calibration says it is unsure."""

import numpy as np
import pytest

from napari_coordgate.psf.field_models.agreement import compare_fields, disagreement_warning


def _gaussians(k, centre_shift=(0.0, 0.0), sigma=1.5, grid=(3, 3)):
    yy, xx = np.indices((k, k)) - k // 2
    psf = np.exp(-((yy - centre_shift[0]) ** 2 + (xx - centre_shift[1]) ** 2) / (2 * sigma**2))
    return np.broadcast_to(psf / psf.sum(), (*grid, k, k)).copy()


def test_the_same_field_agrees_whatever_its_kernel_size():
    agreement = compare_fields(_gaussians(21), _gaussians(31))
    assert agreement["shift_px_max"] < 0.05 and agreement["correlation_min"] > 0.999
    assert disagreement_warning(agreement, ("pupil", "empirical (order 2)"), (0.03, 0.01)) is None


def test_moved_or_reshaped_psfs_are_reported_with_their_figures():
    moved = compare_fields(_gaussians(21), _gaussians(21, centre_shift=(1.5, 2.0)))
    assert moved["shift_px_median"] == pytest.approx(2.5, abs=0.1)
    text = disagreement_warning(moved, ("pupil", "empirical (order 2)"), (0.03, 0.01))
    assert "unsure" in text and "moved by 2.5 px" in text and "give the optics" in text
    wider = compare_fields(_gaussians(21), _gaussians(21, sigma=3.5))
    assert wider["correlation_median"] < 0.95
    assert disagreement_warning(wider, ("pupil", "empirical (order 1)"), (0.02, 0.02)) is not None

