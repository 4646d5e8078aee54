"""Optics: pupil-function PSFs, the lens simulator, synthetic bead slides, the optics a user states or a
file records (NA, emission wavelength, pixel size, immersion index)."""

from .bead_slide import render_bead_target
from .metadata import read_optics
from .parameters import check_optics
from .pupil import pupil_psf
from .simulate import simulate_lens

__all__ = ["pupil_psf", "simulate_lens", "render_bead_target", "check_optics", "read_optics"]
