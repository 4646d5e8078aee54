"""The napari plugin: dock widgets, sample data and the state they share.

This is the only part of napari-coordgate that imports napari or Qt. Each
widget arranges controls and forwards to the Qt-free core; long work runs in
``thread_worker`` generators. The widgets of one viewer share a
:class:`~napari_coordgate._qt.state.CoordGateState` (see :func:`state_for`).

Modules
-------
state               the shared, evented state
sample_data         File > Open Sample > napari-coordgate
calibration_widget  "Calibration": PSF field from beads, a sharp/blurred pair, or a simulated lens
finetune_widget     "Fine-tune": train a CG U-Net (or a baseline) live
deblur_widget       "Deblur": apply the model to any image layer, with live preview
gate_map_widget     "Gate map": the learned gates, and local kernels at a probe point
"""

import importlib
import threading

from .state import CoordGateState, state_for

__all__ = ["CoordGateState", "state_for"]


def _import_the_plot_library() -> None:
    # The Fine-tune dock's plot needs matplotlib's Qt canvas: half a second of imports on the GUI
    # thread when the dock opens. Imported here, in the background, as soon as the first of this
    # plugin's docks is opened, the later Fine-tune dock finds it loaded. No Qt object is made.
    try:
        for name in ("matplotlib.figure", "matplotlib.backends.backend_qtagg"):
            importlib.import_module(name)
    except Exception:  # the dock's own import reports any problem, on the GUI thread
        pass


threading.Thread(target=_import_the_plot_library, name="napari-coordgate imports", daemon=True).start()
