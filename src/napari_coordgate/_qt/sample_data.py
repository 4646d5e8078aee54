"""Sample data (File > Open Sample > napari-coordgate): one simulated microscope.

The three samples are views of the same instrument, a simulated lens that is
sharp on axis and blurred by defocus, astigmatism and coma towards the field
edge. They are generated on demand with fixed seeds, so every call returns
the same images:

- "Bead calibration target": a bead slide seen through the lens, with noise;
- "Blurred specimen": a fluorescence-like specimen seen through the lens;
- "Ground truth": the same specimen without blur or noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..data.noise import add_poisson_gaussian
from ..data.specimens import make_specimen
from ..psf.bead_target import render_bead_target
from ..psf.simulate import simulate_lens

__all__ = ["bead_calibration_target", "blurred_specimen", "ground_truth", "SAMPLE_LENS"]

#: The simulated lens of all samples (arguments of :func:`simulate_lens`).
SAMPLE_LENS = dict(
    field_shape=(256, 256), grid=(8, 8), defocus_edge=1.0, astigmatism_edge=0.4, coma_edge=0.2, seed=0
)
#: Photons at the specimen's bright level, and the camera's read noise (electrons).
_PHOTONS, _READ_NOISE = 300.0, 2.0
_SPECIMEN_SEED, _NOISE_SEED, _BEAD_SEED = 6, 2, 3


@lru_cache(maxsize=1)
def _lens():
    return simulate_lens(**SAMPLE_LENS)


@lru_cache(maxsize=1)
def _specimen() -> np.ndarray:
    return make_specimen(SAMPLE_LENS["field_shape"], np.random.default_rng(_SPECIMEN_SEED))


def _metadata(sample: str) -> dict:
    return {"napari_coordgate": {"sample": sample, "lens": dict(_lens().metadata)}}


def bead_calibration_target():
    """Sub-resolution beads across the field, blurred by the lens, with noise."""
    image, _ = render_bead_target(_lens(), n_beads=90, brightness=(2000, 20000), seed=_BEAD_SEED)
    return [(image, {"name": "bead calibration target", "metadata": _metadata("beads")}, "image")]


def blurred_specimen():
    """The specimen seen through the lens: blurred, with shot and read noise (photons)."""
    blurred = _lens().blur(_specimen())
    noisy = add_poisson_gaussian(blurred, _PHOTONS, _READ_NOISE, np.random.default_rng(_NOISE_SEED)) * _PHOTONS
    return [(noisy, {"name": "blurred specimen", "metadata": _metadata("blurred specimen")}, "image")]


def ground_truth():
    """The specimen without blur or noise, in the same units as the blurred one."""
    truth = _specimen() * np.float32(_PHOTONS)
    return [(truth, {"name": "ground truth", "metadata": _metadata("ground truth")}, "image")]
