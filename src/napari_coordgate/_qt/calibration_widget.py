"""The Calibration dock widget: measure (or simulate) the instrument's PSF field."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, SpinBox
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QProgressBar

from ..cancellation import Cancelled
from ..psf.calibration_report import calibration_report
from ..psf.optics.metadata import OPTICS, FileOptics, describe_value, optics_from_metadata, read_optics
from ..psf.psf_field import PSFField
from ._controls import (MessageLog, StatusLine, ask_open_path, ask_save_path, button, collapsible, info_label,
                        layer_combo, report_error, scrolling_layout)
from ._layers import one_per_turn, show_bead_layer, show_fwhm_map, show_psf_field
from ._threads import MessageRelay
from ._workers import calibration_job
from .dock import Dock

__all__ = ["CalibrationWidget"]

#: Immersion media and their refractive indices (0: not known).
IMMERSION_MEDIA = [("not known", 0.0), ("air (1.0)", 1.0), ("water (1.333)", 1.333), ("silicone oil (1.406)", 1.406),
                   ("glycerol (1.47)", 1.47), ("oil (1.518)", 1.518)]
KINDS = [("Bead slide", "beads"), ("Sharp + blurred pair", "pair"), ("Simulated lens", "simulated")]
#: The models of a bead calibration (``method=`` of :func:`calibrate_from_beads`).
BEAD_MODELS = [("auto", "auto"), ("pupil (known optics)", "pupil"), ("empirical (unknown optics)", "empirical"),
               ("per-node average", "nodes")]


def recorded_optics(layer) -> tuple[FileOptics, str] | None:
    """The optics a layer's file (``layer.source.path``) or its metadata (OME-XML) records, and where from.

    None when neither records any. The reading is :mod:`..psf.optics_metadata`'s; a file that is not a
    TIFF (a Zarr, a PNG) or is gone records nothing.
    """
    path = getattr(getattr(layer, "source", None), "path", None)
    if path:
        try:
            optics = read_optics(path)
        except (OSError, ValueError):
            optics = None
        if optics is not None and optics.values():
            return optics, Path(path).name
    metadata = getattr(layer, "metadata", None)
    optics = optics_from_metadata(metadata) if metadata else FileOptics()
    return (optics, f"the metadata of '{layer.name}'") if optics.values() else None


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


class CalibrationWidget(Dock):
    """Calibrate the PSF field from a bead slide, a sharp + blurred pair, or a simulated lens.

    The result becomes the shared calibration (the Fine-tune widget's
    default), is shown as a "PSF field" layer (each grid PSF drawn over its
    cell of the field) and a "<image> FWHM map" layer (the width of each grid
    PSF over its cell) and, for beads, the beads used ("detected beads",
    green) and rejected ("rejected beads", coloured and labelled by reason) as
    Points layers. For a bead slide the model (auto, pupil, empirical,
    per-node average) and the optics (NA 0 = unknown) can be chosen; the model
    used, why, the held-out check and any warnings go to the status line.
    The optics inputs the user has not typed in are prefilled from what the
    bead layer's file (OME-TIFF, ImageJ TIFF) or metadata records, else the
    pixel size from the layer's scale; the status line says which.
    Save / Load write and read ``.npz`` PSF-field files.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self._showing = False  # result layers still being added, one per event-loop turn

        self._kind = ComboBox(label="target", choices=KINDS, value="beads")
        self._bead_image = layer_combo(viewer, "bead image")
        self._bead_size = FloatSpinBox(label="bead size (px)", value=1.0, min=0.1, max=50, step=0.1,
                                       tooltip="Bead diameter in pixels (sub-resolution beads: about 1)")
        self._min_snr = FloatSpinBox(label="min bead SNR", value=10.0, min=1, max=1000,
                                     tooltip="Fainter beads are too noisy to use")
        self._model = ComboBox(label="model", choices=BEAD_MODELS, value="auto", tooltip=(
            "pupil: a pupil-function model of the objective (needs NA, wavelength and pixel size); "
            "empirical: a smooth model fitted to the beads (optics unknown); per-node average: the beads near "
            "each grid node averaged; auto: the pupil model when the optics are given, otherwise chosen from the data"))
        self._bead_na = FloatSpinBox(label="NA", value=0.0, min=0.0, max=1.7, step=0.05,
                                     tooltip="Numerical aperture of the objective; 0 = unknown (the optics are "
                                             "passed on only when NA, wavelength and pixel size are all given). "
                                             "Prefilled, like the wavelength, pixel size and immersion, from the "
                                             "bead image's OME-TIFF file when it records them")
        self._bead_wavelength = FloatSpinBox(label="emission (nm)", value=520.0, min=0.0, max=2000,
                                             tooltip="Emission wavelength of the beads, in nm")
        self._bead_pixel_size = FloatSpinBox(label="pixel size (nm)", value=0.0, min=0.0, max=100_000, step=1.0,
                                             tooltip=(
            "Pixel size in the sample plane, in nm; 0 = unknown. Prefilled from the bead image's file (OME-TIFF, "
            "ImageJ TIFF) when it records it, else from the layer's scale when it is not 1 (napari's convention: "
            "scale in µm per pixel, so nm = scale × 1000)"))
        self._file_immersion: list = []  # a choice for an index a file records that is not in IMMERSION_MEDIA
        self._immersion = ComboBox(label="immersion", choices=self._immersion_choices, value=0.0, tooltip=(
            "The immersion medium of the objective: makes the pupil model vectorial, as a high-NA PSF is "
            "(give it for any objective above NA 0.7); not known: a scalar, low-NA pupil"))
        self._sharp_image = layer_combo(viewer, "sharp image")
        self._blurred_image = layer_combo(viewer, "blurred image")
        self._psf_size = SpinBox(label="PSF size (px)", value=0, min=0, max=255,
                                 tooltip="Odd kernel size; 0 chooses one from the data")
        self._grid_y = SpinBox(label="grid rows", value=0, min=0, max=32,
                               tooltip="Grid of the PSF field. 0 = automatic: for bead slides, cells of about "
                                       "32 px; 4 x 4 for a pair, 8 x 8 for a simulated lens")
        self._grid_x = SpinBox(label="grid columns", value=0, min=0, max=32, tooltip="0 = automatic")
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
        self._bead_controls = (self._bead_image, self._bead_size, self._min_snr, self._model, self._bead_na,
                               self._bead_wavelength, self._bead_pixel_size, self._immersion)
        self._pair_controls = (self._sharp_image, self._blurred_image)
        self._lens_controls = (self._field_h, self._field_w, self._na, self._wavelength, self._pixel_size,
                               self._defocus, self._astigmatism, self._coma, self._seed)
        # the controls a user sets for each target, then the rest under "advanced"
        self._advanced_bead_controls = (self._bead_size, self._min_snr, self._model)
        self._form = Container(widgets=[
            self._kind, self._bead_image, self._bead_na, self._bead_wavelength, self._bead_pixel_size,
            self._immersion, *self._pair_controls, *self._lens_controls,
        ])
        self._advanced_form = Container(widgets=[*self._advanced_bead_controls, self._psf_size, self._grid_y,
                                                 self._grid_x])
        self._run_button = button("Calibrate", "Compute the PSF field (runs in the background)")
        self._cancel_button = button("Cancel", "Stop the calibration; the previous calibration stays in place")
        self._cancel_button.enabled = False
        self._save_button = button("Save calibration…")
        self._load_button = button("Load calibration…")
        self._current = info_label("calibration")
        self._progress = QProgressBar()
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setFormat("idle")
        self._status = StatusLine()
        self._log = MessageLog()
        files = Container(widgets=[self._save_button, self._load_button], layout="horizontal", labels=False)
        scrolling_layout(self, (
            self._form.native, collapsible("advanced", [self._advanced_form.native]),
            Container(widgets=[self._run_button, self._cancel_button], layout="horizontal", labels=False).native,
            self._progress, self._status, collapsible("log", [self._log]),
            Container(widgets=[self._current]).native, files.native,
        ))

        # the optics inputs, which are prefilled from the bead layer unless the user typed a value in
        self._optics_inputs = {"na": self._bead_na, "wavelength_nm": self._bead_wavelength,
                               "pixel_size_nm": self._bead_pixel_size, "immersion_index": self._immersion}
        self._optics_defaults = {name: control.value for name, control in self._optics_inputs.items()}
        self._typed: set[str] = set()  # inputs the user set (to a known value)
        self._prefilled: dict[str, float] = {}  # inputs filled in from the bead layer: value
        self._prefill_sources: dict[str, str] = {}  # ... and where it came from
        self._prefilling = False
        for name, control in self._optics_inputs.items():
            control.changed.connect(lambda value, name=name: self._on_optics_input(name, value))

        self._kind.changed.connect(self._show_kind)
        self._bead_image.changed.connect(self._prefill_optics)
        self._on_clicks({self._run_button: self._run, self._cancel_button: self.cancel,
                         self._save_button: self._ask_save, self._load_button: self._ask_load})
        # Progress messages from the worker arrive as the calibration goes; the bar shows the time so far.
        self._cancel = threading.Event()
        self._started = 0.0
        self._messages = MessageRelay(self)
        self._messages.arrived.connect(self._on_message)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._show_elapsed)
        self._settle_in(self.cancel)
        self._state.events.psf_field.connect(self._on_psf_field)
        self._show_kind(self._kind.value)
        self._prefill_optics(self._bead_image.value)
        self._on_psf_field(self._state.psf_field)

    def reset_choices(self, *_) -> None:
        """Refresh the layer lists (napari calls this when layers change)."""
        self._form.reset_choices()

    def log_text(self) -> str:
        """Every message of this widget so far (the "log" section)."""
        return self._log.toPlainText()

    def _say(self, text: str, level: str) -> None:
        """Show ``text`` in the status line and add it to the log."""
        self._status.show_message(text, level)
        self._log.add(text)
        self._last_report = (text, level)

    # -- optics prefilled from the bead layer ---------------------------------------------
    def _immersion_choices(self, _widget=None) -> list:
        return IMMERSION_MEDIA + self._file_immersion

    def _on_optics_input(self, name: str, value) -> None:
        """Remember which optics inputs the user set: those are never prefilled (0 = unknown again)."""
        if self._prefilling:
            return
        if value:
            self._typed.add(name)
        else:
            self._typed.discard(name)

    def _fill(self, name: str, value: float | None, source: str = "") -> None:
        """Set an optics input as a prefill (None: back to its default)."""
        control = self._optics_inputs[name]
        self._prefilling = True
        try:
            if value is None:
                control.value = self._optics_defaults[name]
                if name == "immersion_index" and self._file_immersion:
                    self._file_immersion = []
                    control.reset_choices()
                return
            if name == "immersion_index":
                value = next((index for _, index in IMMERSION_MEDIA if index and abs(index - value) < 1e-3), value)
                if value not in control.choices:
                    self._file_immersion = [(f"{value:g} (from the file)", value)]
                    control.reset_choices()
            else:
                value = min(value, control.max)
            control.value = value
        finally:
            self._prefilling = False
        self._prefilled[name] = control.value
        self._prefill_sources[name] = source

    def _prefill_optics(self, layer) -> None:
        """Fill the optics inputs the user has not set from what the bead layer records.

        What an earlier layer filled in goes first; then the pixel size comes
        from the layer's scale when it is not 1 (napari's convention: µm per
        pixel), and every value the layer's file or metadata records (OME-XML,
        ImageJ or TIFF resolution) from there. The status line says which.
        """
        for name in [n for n in self._prefilled if n not in self._typed]:
            self._fill(name, None)
        self._prefilled.clear()
        self._prefill_sources.clear()
        if layer is None:
            return
        size = float(layer.scale[-1])
        if size > 0 and abs(size - 1.0) > 1e-9 and "pixel_size_nm" not in self._typed:
            self._fill("pixel_size_nm", round(size * 1000.0, 3), "the layer scale (µm -> nm)")
        found = recorded_optics(layer)
        if found is None:
            return
        optics, origin = found
        filled, lines = {}, []
        for name, value in optics.values().items():
            control = self._optics_inputs[name]
            if name not in self._typed:
                self._fill(name, value, f"{optics.sources[name]} ({origin})")
                filled[name] = value
            elif abs(float(control.value) - value) > 1e-6 * value:
                lines.append(f"Kept your {describe_value(name, float(control.value))}; the file records "
                             f"{describe_value(name, value)}.")
        if filled:
            lines.insert(0, f"Optics from {origin}: {FileOptics(**filled).describe()}.")
        missing = [label for name, label in (("na", "NA"), ("wavelength_nm", "emission wavelength"),
                                             ("pixel_size_nm", "pixel size"))
                   if name in optics.missing() and name not in self._typed and name not in self._prefilled]
        if filled and missing:
            lines.append(f"Not recorded there: {', '.join(missing)}; type {'it' if len(missing) == 1 else 'them'} "
                         "in to use the optics.")
        for note in optics.notes:
            self._log.add(f"{origin}: {note}")
        if lines:
            self._say("\n".join(lines), "info")

    def _optics_sources(self, options: dict) -> dict[str, str]:
        """Where each optical value of a calibration came from, when any came from the bead layer; else {}."""
        sources = {name: self._prefill_sources[name] if name in self._prefilled and name not in self._typed
                   else "typed in" for name in OPTICS if name in options}
        return sources if any(source != "typed in" for source in sources.values()) else {}

    def _bead_options(self) -> dict | None:
        """The model and optics options of a bead calibration (None after showing an error)."""
        options = dict(method=self._model.value, bead_size_px=self._bead_size.value, min_snr=self._min_snr.value)
        if self._bead_na.value > 0:
            if self._bead_wavelength.value <= 0 or self._bead_pixel_size.value <= 0:
                show_error("Calibration: with the NA given, also give the emission wavelength and the pixel size "
                           "(or set NA to 0 for unknown optics)")
                return None
            options.update(na=self._bead_na.value, wavelength_nm=self._bead_wavelength.value,
                           pixel_size_nm=self._bead_pixel_size.value)
            if self._immersion.value > 0:
                options["immersion_index"] = self._immersion.value
        return options

    def _grid(self, kind: str):
        """The grid shape; None (automatic) for beads when rows or columns are 0."""
        grid = (self._grid_y.value, self._grid_x.value)
        if min(grid) > 0:
            return grid
        return {"beads": None, "pair": (4, 4), "simulated": (8, 8)}[kind]

    def _show_kind(self, kind: str) -> None:
        for controls, shown in ((self._bead_controls, kind == "beads"), (self._pair_controls, kind == "pair"),
                                (self._lens_controls, kind == "simulated")):
            for control in controls:
                control.visible = shown

    # -- running --------------------------------------------------------------------------
    def _request(self):
        """``(images, options, reference layer)`` for the chosen target kind, or None."""
        kind = self._kind.value
        grid = self._grid(kind)
        if kind == "simulated":
            options = dict(
                field_shape=(self._field_h.value, self._field_w.value), grid=grid,
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
        options = dict(psf_size=self._psf_size.value or None, grid=grid)
        if kind == "beads":
            bead_options = self._bead_options()
            if bead_options is None:
                return None
            options.update(bead_options)
        return [layer.data for layer in layers], options, layers[-1]

    def _run(self) -> None:
        self._start_job(self._request, self._launch)

    def _launch(self, request) -> None:
        images, options, reference = request
        kind = self._kind.value
        sources = self._optics_sources(options) if kind == "beads" else {}
        self._cancel = cancel = threading.Event()
        worker = calibration_job(kind, images, options, report=self._messages.send, cancel=cancel)
        worker.returned.connect(lambda result: self._on_result(kind, reference, *result, optics_sources=sources))
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._run_button.enabled, self._cancel_button.enabled = False, True
        self._progress.setRange(0, 0)  # busy
        self._started = time.perf_counter()
        self._show_elapsed()
        self._clock.start()
        source = "" if reference is None else f" from '{reference.name}'"
        self._say(f"Calibrating{source}…", "busy")
        worker.start()

    def cancel(self) -> None:
        """Stop a running calibration (within about a second); the previous calibration stays current."""
        if self._worker is None or self._cancel.is_set():
            return
        self._cancel.set()
        self._cancel_button.enabled = False
        self._say("Cancelling…", "busy")

    def _on_message(self, text: str) -> None:
        """A progress message from the running calibration: into the log and the status line."""
        if self._worker is None or self._cancel.is_set():
            return
        self._log.add(text)
        self._status.show_message(f"Calibrating: {text}", "busy")

    def _show_elapsed(self) -> None:
        self._progress.setFormat(f"calibrating… {time.perf_counter() - self._started:.0f} s")

    def _on_error(self, err: BaseException) -> None:
        if isinstance(err, Cancelled):
            elapsed = time.perf_counter() - self._started
            self._say(f"Calibration cancelled after {elapsed:.0f} s; the previous calibration is kept.", "warning")
            return
        report_error("Calibration", err, self._status)
        self._log.add(f"Calibration failed: {err}")

    def _on_finished(self) -> None:
        self._worker = None
        self._clock.stop()
        self._run_button.enabled, self._cancel_button.enabled = True, False
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setFormat("idle")

    def _on_result(self, kind: str, reference, field: PSFField, montage, optics_sources: dict | None = None) -> None:
        if self._cancel.is_set():  # finished just as it was cancelled: the user asked not to have it
            self._say("Calibration cancelled; the previous calibration is kept.", "warning")
            return
        if optics_sources:
            field.metadata["optics_sources"] = optics_sources
        self._state.psf_field = field
        viewer, meta = self._viewer, field.metadata
        base = reference.name if reference is not None else "PSF field"
        steps = [lambda: show_psf_field(viewer, field, reference, montage=montage),
                 lambda: show_fwhm_map(viewer, field, reference, f"{base} FWHM map")]
        s = field.summary()
        if kind == "beads":
            # A ring around each bead's core, not its whole (tail-sized) kernel box: those would cover the slide.
            core = float(np.nan_to_num(s["fwhm_centre_px"], nan=3.0))
            size = float(np.clip(2.5 * core, 6.0, max(6.0, field.psf_size / 4)))
            steps += [lambda: show_bead_layer(viewer, meta.get("beads"), [], reference, size=size,
                                              name="detected beads"),
                      lambda: show_bead_layer(viewer, [], meta.get("rejected_beads"), reference, size=size,
                                              name="rejected beads"),
                      lambda: self._bring_to_top(reference, *(viewer.layers[name] for name in
                                                              ("detected beads", "rejected beads")
                                                              if name in viewer.layers))]
        lines = calibration_report(field)
        warnings = [str(w) for w in meta.get("warnings") or []]
        coverage = coverage_warning(field)
        if coverage:
            warnings.append(coverage)
        text = "\n".join(lines + [f"Warning: {w}" for w in warnings]) or "Done."
        self._say(text, "warning" if warnings else "ok")
        steps += [lambda w=w: show_warning(f"Calibration: {w}") for w in warnings]
        self._showing = True
        one_per_turn(steps, done=self._shown)  # each layer in its own event-loop turn: no long freeze

    def _shown(self) -> None:
        self._showing = False

    def is_idle(self) -> bool:
        """Whether no calibration runs and its result layers are all shown."""
        return self._worker is None and not self._showing

    def _bring_to_top(self, *layers) -> None:
        """Move ``layers`` (bottom to top; None skipped) to the top of the layer list and show them,
        so that the bead markers are drawn over the bead image and nothing else."""
        layer_list = self._viewer.layers
        for layer in layers:
            if layer is None or layer not in layer_list:
                continue
            layer_list.move(layer_list.index(layer), len(layer_list))
            layer.visible = True

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
        # The calibration's report stays in the status line; the save is added below it.
        report, level = getattr(self, "_last_report", ("", "ok"))
        saved = f"Saved to {path.name}."
        self._status.show_message(f"{report}\n{saved}" if report else saved, level)
        self._log.add(saved)
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
        show_fwhm_map(self._viewer, field, None, "PSF field FWHM map")
        show_info(f"Loaded the calibration {Path(path).name}")
        self._status.show_message(f"Loaded {Path(path).name}.", "ok")
