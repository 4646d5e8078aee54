"""The instrument: spatially varying PSF fields and their calibration (Qt-free, NumPy/SciPy).

- :class:`PSFField` holds PSFs on a grid over the field, blurs images with
  them quickly, and reads/writes ``.npz`` files.
- :func:`simulate_lens` makes a field from pupil-function optics.
- :func:`render_bead_target` images a synthetic bead slide through a field.
- :func:`calibrate_from_beads` and :func:`calibrate_from_pair` measure a
  field from a bead-slide image, or from a known sharp pattern and its image.
- :func:`read_optics` reads the optics (NA, emission wavelength, pixel size,
  immersion index) an image file records, to give to the calibration.
"""

from .optics.bead_slide import render_bead_target
from .beads.calibrate import calibrate_from_beads
from .pair.calibrate import calibrate_from_pair
from .optics.metadata import read_optics
from .psf_field import PSFField
from .optics.simulate import simulate_lens

__all__ = [
    "PSFField",
    "simulate_lens",
    "render_bead_target",
    "calibrate_from_beads",
    "calibrate_from_pair",
    "read_optics",
]
