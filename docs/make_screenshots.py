"""Make the user guide's screenshots by running the whole flow in napari.

Opens napari, loads the sample data, calibrates from the bead slide (giving
the sample lens's optics, so with the pupil model), trains a small CG U-Net,
deblurs the blurred specimen, shows a gate map and probes a local kernel,
saving a screenshot of the window and of each widget to ``docs/images/``.
On a machine without a display, run it under Xvfb::

    xvfb-run -a .venv/bin/python docs/make_screenshots.py

It takes a few minutes on a laptop CPU (most of it training);
``--calibration-only`` stops after the calibration screenshots.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
import numpy as np
import torch
from qtpy.QtWidgets import QApplication, QScrollArea

from napari_coordgate._qt.state import state_for

IMAGES = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-coordgate"
TRAINING_STEPS = 300  # from the base model
#: The manifest command of each dock: what its Plugins-menu entry runs.
COMMANDS = {"Calibration": "napari-coordgate.calibration_widget", "Fine-tune": "napari-coordgate.finetune_widget",
            "Deblur": "napari-coordgate.deblur_widget", "Gate map": "napari-coordgate.gate_map_widget"}
OUT = {"dir": IMAGES}  # where the screenshots go (the first-ten-minutes test writes elsewhere)


def wait_until(condition, timeout: float = 900.0) -> None:
    """Let napari work (worker threads, redraws) until ``condition()`` holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the flow did not finish in time")
        QApplication.processEvents()
        time.sleep(0.02)


def settle(seconds: float = 1.0) -> None:
    """Process events for a while, so that canvases and plots are redrawn."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() > end)


def dismiss_notifications() -> None:
    """Close notification pop-ups, which would cover the docks in a screenshot."""
    for widget in QApplication.allWidgets():
        if type(widget).__name__ == "NapariQtNotification":
            widget.close()


def save_window(viewer: napari.Viewer, name: str) -> None:
    settle()
    dismiss_notifications()
    settle(0.5)
    viewer.screenshot(str(OUT["dir"] / f"{name}.png"), canvas_only=False)
    print(f"saved {name}.png")


def save_widget(widget, name: str) -> None:
    """Save the whole content of a dock widget (not only the part its scroll area shows)."""
    settle()
    area = widget.findChild(QScrollArea)
    (area.widget() if area is not None else widget).grab().save(str(OUT["dir"] / f"{name}.png"))
    print(f"saved {name}.png")


def open_dock(viewer: napari.Viewer, name: str):
    """Open a dock as the Plugins menu does (its manifest command), in the layout a user gets."""
    from napari._app_model import get_app_model

    get_app_model().commands.execute_command(COMMANDS[name]).result()
    settle(0.3)
    dock = viewer.window._wrapped_dock_widgets[f"{name} ({PLUGIN})"]
    return dock, dock.widget()


def main(calibration_only: bool = False, out: Path = IMAGES) -> list[Path]:
    """Run the flow and save the screenshots to ``out``; returns the files written."""
    OUT["dir"] = Path(out)
    OUT["dir"].mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)  # the same model, and the same screenshots, every time
    viewer = napari.Viewer(title="napari-coordgate")
    viewer.window.resize(1600, 1050)
    state = state_for(viewer)

    # 1. calibration from the sample bead slide
    beads = viewer.open_sample(PLUGIN, "beads")[0]
    dock, calibration = open_dock(viewer, "Calibration")
    calibration._kind.value = "beads"
    calibration._bead_image.value = beads
    # the optics of the sample lens (simulate_lens's defaults), and an automatic grid
    calibration._bead_na.value, calibration._bead_wavelength.value = 0.8, 520.0
    calibration._bead_pixel_size.value = 130.0
    calibration._grid_y.value = calibration._grid_x.value = 0
    calibration._run_button.clicked.emit()
    wait_until(lambda: state.psf_field is not None and calibration.is_idle())
    # the FWHM map and the beads over the slide
    viewer.layers["PSF field"].visible = False
    dock.raise_()
    viewer.reset_view()
    save_window(viewer, "calibration-window")
    save_widget(calibration, "calibration-widget")
    # the PSF field montage on its own
    for layer in viewer.layers:
        layer.visible = layer.name == "PSF field"
    settle()
    viewer.screenshot(str(OUT["dir"] / "calibration-psf-field.png"), canvas_only=True)
    print("saved calibration-psf-field.png")
    if calibration_only:
        viewer.close()
        return sorted(OUT["dir"].glob("*.png"))

    # 2. fine-tuning the shipped base model (the default start) on the calibration
    for layer in list(viewer.layers):
        layer.visible = False
    dock, finetune = open_dock(viewer, "Fine-tune")
    finetune._start_from.value = "base"
    finetune._batch.value, finetune._patch.value = 8, 64
    finetune._unit.value = "steps"
    finetune._length.value = TRAINING_STEPS
    finetune._start_button.clicked.emit()
    wait_until(lambda: finetune._worker is None)
    dock.raise_()
    viewer.reset_view()
    save_window(viewer, "finetune-window")
    save_widget(finetune, "finetune-widget")

    # 3. deblurring the blurred specimen, next to the truth
    blurred = viewer.open_sample(PLUGIN, "blurred_specimen")[0]
    truth = viewer.open_sample(PLUGIN, "ground_truth")[0]
    dock, deblur = open_dock(viewer, "Deblur")
    deblur._image.value = blurred
    deblur._run_button.clicked.emit()
    wait_until(lambda: deblur._worker is None and "blurred specimen deblurred" in viewer.layers)
    result = viewer.layers["blurred specimen deblurred"]
    for layer in viewer.layers:
        layer.visible = layer in (blurred, result, truth)
    viewer.layers.move(viewer.layers.index(result), viewer.layers.index(truth))  # blurred, deblurred, truth
    limits = np.percentile(truth.data, (0.5, 99.8))
    for layer in (blurred, result, truth):
        layer.contrast_limits = tuple(limits)
    grid = viewer.canvas.grid
    grid.enabled, grid.shape = True, (1, 3)
    visible = [layer for layer in viewer.layers if layer.visible]
    columns = {layer.name: grid.position(visible.index(layer), visible)[1] for layer in visible}
    print("grid columns:", columns)  # the user guide's caption names them in this order
    assert columns == {"blurred specimen": 0, "blurred specimen deblurred": 1, "ground truth": 2}, columns
    dock.raise_()
    viewer.reset_view()
    save_window(viewer, "deblur-window")
    save_widget(deblur, "deblur-widget")
    grid.enabled = False

    # 3b. a folder of acquisitions (one of them broken), kept as uint16
    import tempfile

    import tifffile

    folder = Path(tempfile.mkdtemp(prefix="coordgate-screenshots-"))
    (folder / "in").mkdir()
    for k in range(3):
        tifffile.imwrite(folder / "in" / f"field-{k + 1}.tif", np.clip(blurred.data * (1 + 0.2 * k), 0, 65535).astype(np.uint16))
    (folder / "in" / "field-4.tif").write_bytes(b"II*\x00 not a whole TIFF")
    deblur._dtype.value = "input"
    deblur._batch_section.expand(animate=False)
    deblur.deblur_folder(str(folder / "in"), str(folder / "out"))
    wait_until(lambda: deblur._worker is None)
    save_widget(deblur, "deblur-batch-widget")

    # 3c. the model exported as a BioImage.IO package, from the Fine-tune widget
    finetune._export_author.value = "A. Microscopist"
    finetune._export_section.expand(animate=False)
    finetune.export_bioimageio(str(folder / "my-microscope.zip"))
    wait_until(lambda: finetune._export_worker is None)
    save_widget(finetune, "finetune-export-widget")

    # 3d. a model file dropped on the canvas becomes the current model of every widget
    finetune.save_model(str(folder / "my-microscope.safetensors"))
    settle()
    dismiss_notifications()
    viewer.open(str(folder / "my-microscope.safetensors"), plugin=PLUGIN)
    settle(0.5)
    for widget in QApplication.allWidgets():  # show the whole message, as a click on its arrow does
        if type(widget).__name__ == "NapariQtNotification":
            widget.expand()
    settle(1.5)
    viewer.screenshot(str(OUT["dir"] / "open-model-window.png"), canvas_only=False)
    print("saved open-model-window.png")

    # 4. the gate map of the first encoder level, and a local kernel in the corner
    dock, gates = open_dock(viewer, "Gate map")
    gates._image.value = blurred
    gates._block.value = "down0"
    gates._show_button.clicked.emit()
    wait_until(lambda: "gate map down0 (level 0)" in viewer.layers)
    for layer in viewer.layers:  # the gate map drawn over the image it explains
        layer.visible = layer.name in ("gate map down0 (level 0)", blurred.name)
    viewer.dims.set_current_step(0, 3)
    gates._probe_button.clicked.emit()
    viewer.layers["kernel probe"].add([30, 30])
    wait_until(lambda: gates.last_kernels is not None)
    dock.raise_()
    viewer.reset_view()
    save_window(viewer, "gate-map-window")
    save_widget(gates, "gate-map-widget")

    # 5. the four docks on a laptop screen: tabs, each scrolls up and down, none is cut off
    viewer.window.resize(1366, 768)
    settle(1.5)
    save_window(viewer, "laptop-four-docks")

    viewer.close()
    return sorted(OUT["dir"].glob("*.png"))


if __name__ == "__main__":
    main(calibration_only="--calibration-only" in sys.argv[1:])
