"""Sample data (File > Open Sample > napari-coordgate): one simulated microscope.

The three samples are views of the same instrument (see
:mod:`napari_coordgate.data.samples`, which makes them and ships them made):

- "Bead calibration target": a bead slide seen through the lens, with noise;
- "Blurred specimen": a fluorescence-like specimen seen through the lens;
- "Ground truth": the same specimen without blur or noise.

napari calls these on its GUI thread; the shipped images open without the
second or more it takes to make them.
"""

from __future__ import annotations

from ..data.samples import SAMPLE_LENS, sample_images

__all__ = ["bead_calibration_target", "blurred_specimen", "ground_truth", "SAMPLE_LENS"]


def _layer(key: str, name: str, sample: str) -> list[tuple]:
    images, lens = sample_images()
    return [(images[key], {"name": name, "metadata": {"napari_coordgate": {"sample": sample, "lens": lens}}}, "image")]


def bead_calibration_target():
    """Sub-resolution beads across the field, blurred by the lens, with noise."""
    return _layer("beads", "bead calibration target", "beads")


def blurred_specimen():
    """The specimen seen through the lens: blurred, with shot and read noise (photons)."""
    return _layer("blurred_specimen", "blurred specimen", "blurred specimen")


def ground_truth():
    """The specimen without blur or noise, in the same units as the blurred one."""
    return _layer("ground_truth", "ground truth", "ground truth")
