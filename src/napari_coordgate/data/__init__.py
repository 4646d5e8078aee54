"""Training data: procedural specimens, camera noise, and training sets for a PSF field."""

from .noise import DEFAULT_NOISE, add_poisson_gaussian, estimate_noise
from .specimens import SPECIMEN_KINDS, make_specimen
from .training_set import TrainingSet, ValidationSet, make_training_set

__all__ = [
    "make_specimen",
    "SPECIMEN_KINDS",
    "add_poisson_gaussian",
    "estimate_noise",
    "DEFAULT_NOISE",
    "make_training_set",
    "TrainingSet",
    "ValidationSet",
]
