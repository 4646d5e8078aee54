"""napari-coordgate: remove a microscope's static, spatially varying blur with CoordGate U-Nets.

The package is a Qt-free core (torch + NumPy); the napari widgets live in
:mod:`napari_coordgate._qt` and are imported only by napari.
"""

from ._version import __version__
from .data import make_training_set
from .gate_map import gate_maps, local_response
from .inference import deblur
from .model_files import load_model, save_model
from .models import CGUNet, CoordConvUNet, CoordGate, UNet
from .psf import PSFField, calibrate_from_beads, calibrate_from_pair, render_bead_target, simulate_lens
from .training import train

__all__ = [
    "CoordGate",
    "UNet",
    "CGUNet",
    "CoordConvUNet",
    "deblur",
    "save_model",
    "load_model",
    "PSFField",
    "simulate_lens",
    "render_bead_target",
    "calibrate_from_beads",
    "calibrate_from_pair",
    "make_training_set",
    "train",
    "gate_maps",
    "local_response",
]
