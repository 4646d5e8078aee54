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

from .state import CoordGateState, state_for

__all__ = ["CoordGateState", "state_for"]
