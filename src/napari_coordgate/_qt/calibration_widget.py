"""The Calibration dock widget: measure (or simulate) the instrument's PSF field."""

from __future__ import annotations

from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FloatSpinBox, SpinBox
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from ..psf.beads import calibrate_from_beads
from ..psf.pair import calibrate_from_pair
from ..psf.psf_field import PSFField
from ..psf.simulate import simulate_lens
from ._controls import StatusLine, ask_open_path, ask_save_path, button, info_label, layer_combo, report_error
from ._layers import show_points, show_psf_field
from .state import state_for

__all__ = ["CalibrationWidget"]

KINDS = [("Bead slide", "beads"), ("Sharp + blurred pair", "pair"), ("Simulated lens", "simulated")]


@thread_worker(ignore_errors=True)
def calibration_job(kind: str, images: list, options: dict):
    """Calibrate in a worker; returns ``(psf_field, messages)``."""
    messages: list[str] = []
    if kind == "beads":
        field = calibrate_from_beads(images[0], report=messages.append, **options)
    elif kind == "pair":
        field = calibrate_from_pair(images[0], images[1], report=messages.append, **options)
    else:
        field = simulate_lens(**options)
    return field, messages


def coverage_warning(field: PSFField) -> str:
    """A sentence about grid cells with too few beads, or "" when coverage is good."""
    poor = field.metadata.get("poorly_covered_cells") or []
    if not poor:
        return ""
    cells = ", ".join(f"({i}, {j})" for i, j in poor[:8]) + (" …" if len(poor) > 8 else "")
    total = field.grid_shape[0] * field.grid_shape[1]
    return (
        f"Poor coverage: {len(poor)} of {total} grid cells have few beads nearby (row, column: {cells}). "
        "The PSF there is extrapolated from the nearest beads; image more beads there, or use a coarser grid."
    )


class CalibrationWidget(QWidget):
    """Calibrate the PSF field from a bead slide, a sharp + blurred pair, or a simulated lens.

    The result becomes the shared calibration (the Fine-tune widget's
    default), is shown as a "PSF field" layer (each grid PSF drawn over its
    cell of the field) and, for beads, the beads used as a Points layer.
    Save / Load write and read ``.npz`` PSF-field files.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self._viewer = viewer
        self._state = state_for(viewer)
        self._worker = None

        self._kind = ComboBox(label="target", choices=KINDS, value="beads")
        self._bead_image = layer_combo(viewer, "bead image")
        self._bead_size = FloatSpinBox(label="bead size (px)", value=1.0, min=0.1, max=50, step=0.1,
                                       tooltip="Bead diameter in pixels (sub-resolution beads: about 1)")
        self._min_snr = FloatSpinBox(label="min bead SNR", value=10.0, min=1, max=1000,
                                     tooltip="Fainter beads are too noisy to use")
        self._sharp_image = layer_combo(viewer, "sharp image")
        self._blurred_image = layer_combo(viewer, "blurred image")
        self._psf_size = SpinBox(label="PSF size (px)", value=0, min=0, max=255,
                                 tooltip="Odd kernel size; 0 chooses one from the data")
        self._grid_y = SpinBox(label="grid rows", value=4, min=1, max=32,
                               tooltip="PSFs measured on a grid; each node needs about 3 beads within a cell")
        self._grid_x = SpinBox(label="grid columns", value=4, min=1, max=32)
        self._field_h = SpinBox(label="field height", value=256, min=16, max=2**15)
        self._field_w = SpinBox(label="field width", value=256, min=16, max=2**15)
        self._na = FloatSpinBox(label="NA", value=0.8, min=0.05, max=1.5, step=0.05)
        self._wavelength = FloatSpinBox(label="wavelength (nm)", value=520.0, min=200, max=2000)
        self._pixel_size = FloatSpinBox(label="pixel size (nm)", value=130.0, min=1, max=10000)
        self._defocus = FloatSpinBox(label="defocus at edge (waves)", value=2.0, min=0, max=10, step=0.1)
        self._astigmatism = FloatSpinBox(label="astigmatism (waves)", value=0.0, min=0, max=10, step=0.1)
        self._coma = FloatSpinBox(label="coma (waves)", value=0.0, min=0, max=10, step=0.1)
        self._seed = SpinBox(label="manufacturing seed", value=-1, min=-1, max=2**31 - 1,
                             tooltip="-1: the ideal, centred lens; otherwise a random alignment error")
        # the controls of each target kind; one form, so that the labels line up
        self._bead_controls = (self._bead_image, self._bead_size, self._min_snr)
        self._pair_controls = (self._sharp_image, self._blurred_image)
        self._lens_controls = (self._field_h, self._field_w, self._na, self._wavelength, self._pixel_size,
                               self._defocus, self._astigmatism, self._coma, self._seed)
        self._form = Container(widgets=[
            self._kind, *self._bead_controls, *self._pair_controls, *self._lens_controls,
            self._psf_size, self._grid_y, self._grid_x,
        ])
        self._run_button = button("Calibrate", "Compute the PSF field (runs in the background)")
        self._save_button = button("Save calibration…")
        self._load_button = button("Load calibration…")
        self._current = info_label("calibration")
        self._progress = QProgressBar()
        self._progress.setRange(0, 1)
        self._status = StatusLine()
        files = Container(widgets=[self._save_button, self._load_button], layout="horizontal", labels=False)
        layout = QVBoxLayout(self)
        for part in (self._form.native, self._run_button.native, self._progress, self._status,
                     Container(widgets=[self._current]).native, files.native):
            layout.addWidget(part)
        layout.addStretch(1)

        self._kind.changed.connect(self._show_kind)
        self._run_button.clicked.connect(self._run)
        self._save_button.clicked.connect(self._ask_save)
        self._load_button.clicked.connect(self._ask_load)
        self._state.events.psf_field.connect(self._on_psf_field)
        self._show_kind(self._kind.value)
        self._on_psf_field(self._state.psf_field)

    def reset_choices(self, *_) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        self._form.reset_choices()

    def _show_kind(self, kind: str) -> None:
        for controls, shown in ((self._bead_controls, kind == "beads"), (self._pair_controls, kind == "pair"),
                                (self._lens_controls, kind == "simulated")):
            for control in controls:
                control.visible = shown

    # -- running --------------------------------------------------------------------------
    def _request(self):
        """``(images, options, reference layer)`` for the chosen target kind, or None."""
        kind = self._kind.value
        if kind == "simulated":
            options = dict(
                field_shape=(self._field_h.value, self._field_w.value), grid=(self._grid_y.value, self._grid_x.value),
                na=self._na.value, wavelength_nm=self._wavelength.value, pixel_size_nm=self._pixel_size.value,
                defocus_edge=self._defocus.value, astigmatism_edge=self._astigmatism.value,
                coma_edge=self._coma.value, seed=None if self._seed.value < 0 else self._seed.value,
                psf_size=self._psf_size.value or None,
            )
            return [], options, None
        layers = [self._bead_image.value] if kind == "beads" else [self._sharp_image.value, self._blurred_image.value]
        if any(layer is None for layer in layers):
            show_error("Calibration: choose the image layer(s) first")
            return None
        if any(layer.rgb or layer.ndim != 2 for layer in layers):
            show_error("Calibration: the calibration images must be single-channel 2D image layers")
            return None
        options = dict(psf_size=self._psf_size.value or None, grid=(self._grid_y.value, self._grid_x.value))
        if kind == "beads":
            options.update(bead_size_px=self._bead_size.value, min_snr=self._min_snr.value)
        return [layer.data for layer in layers], options, layers[-1]

    def _run(self) -> None:
        if self._worker is not None:
            return
        request = self._request()
        if request is None:
            return
        images, options, reference = request
        kind = self._kind.value
        worker = calibration_job(kind, images, options)
        worker.returned.connect(lambda result: self._on_result(kind, reference, *result))
        worker.errored.connect(lambda err: report_error("Calibration", err, self._status))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._run_button.enabled = False
        self._progress.setRange(0, 0)  # busy
        self._status.show_message("Calibrating…", "busy")
        worker.start()

    def _on_finished(self) -> None:
        self._worker = None
        self._run_button.enabled = True
        self._progress.setRange(0, 1)

    def _on_result(self, kind: str, reference, field: PSFField, messages: list[str]) -> None:
        self._state.psf_field = field
        show_psf_field(self._viewer, field, reference)
        beads = field.metadata.get("beads")
        if kind == "beads" and beads:
            show_points(self._viewer, "detected beads", beads, reference, size=max(3, field.psf_size // 2))
        warning = coverage_warning(field)
        text = "\n".join(messages[-2:]) or "Done."
        if warning:
            show_warning(f"Calibration: {warning}")
            self._status.show_message(f"{text}\n{warning}", "warning")
        else:
            self._status.show_message(text, "ok")

    def _on_psf_field(self, field) -> None:
        if field is None:
            self._current.value = "none yet"
            return
        s = field.summary()
        self._current.value = (
            f"{field.kind}, field {field.field_shape[0]}x{field.field_shape[1]}, grid {field.grid_shape[0]}x"
            f"{field.grid_shape[1]}, PSF {field.psf_size} px; FWHM {s['fwhm_centre_px']:.1f} px at the centre, "
            f"{s['fwhm_corners_mean_px']:.1f} px in the corners"
        )

    # -- files ----------------------------------------------------------------------------
    def _ask_save(self) -> None:
        if self._state.psf_field is None:
            show_error("Calibration: nothing to save yet; calibrate or load a PSF field first")
            return
        path = ask_save_path(self, "Save the calibration", "PSF fields (*.npz)")
        if path:
            self.save_calibration(path)

    def save_calibration(self, path: str) -> Path:
        """Save the current PSF field (adds ``.npz`` if missing)."""
        path = Path(path).with_suffix(".npz") if Path(path).suffix != ".npz" else Path(path)
        try:
            self._state.psf_field.save(path)
        except OSError as err:
            show_error(f"Calibration: cannot save to {path}: {err}")
            return path
        self._status.show_message(f"Saved to {path.name}.", "ok")
        return path

    def _ask_load(self) -> None:
        path = ask_open_path(self, "Load a calibration", "PSF fields (*.npz)")
        if path:
            self.load_calibration(path)

    def load_calibration(self, path: str) -> None:
        """Load a PSF field file and make it the current calibration."""
        try:
            field = PSFField.load(path)
        except (OSError, ValueError) as err:
            show_error(f"Calibration: cannot load {path}: {err}")
            self._status.show_message(str(err), "error")
            return
        self._state.psf_field = field
        show_psf_field(self._viewer, field, None)
        show_info(f"Loaded the calibration {Path(path).name}")
        self._status.show_message(f"Loaded {Path(path).name}.", "ok")
