"""The package itself: public API, and a core that never imports Qt or napari."""

import subprocess
import sys

import napari_coordgate


def test_public_api():
    for name in ["CoordGate", "UNet", "CGUNet", "CoordConvUNet", "deblur", "save_model", "load_model",
                 "PSFField", "simulate_lens", "calibrate_from_beads", "calibrate_from_pair", "make_training_set", "train"]:
        assert name in napari_coordgate.__all__ and hasattr(napari_coordgate, name)


def test_import_does_not_pull_qt_or_napari():
    code = (
        "import sys, napari_coordgate, napari_coordgate.cli as _\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'vispy')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
