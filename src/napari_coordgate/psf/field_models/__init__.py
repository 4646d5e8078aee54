"""Models of the PSF across the field, fitted to beads: the field polynomials, the pupil models (free and
with the laws of a rotationally symmetric lens), the empirical model, sampling a model onto a grid,
and comparing two models."""

from .axial_pupil_field import AxialPupilFieldModel
from .empirical_field import EmpiricalFieldModel
from .pupil_field import ABERRATIONS, PupilFieldModel
from .sampling import default_grid, sample_field

__all__ = ["PupilFieldModel", "AxialPupilFieldModel", "EmpiricalFieldModel", "ABERRATIONS", "sample_field",
           "default_grid"]
