"""How long the napari window freezes at each step of a day with the docks (issue #23).

A shown viewer at 1366 x 768 (run it under Xvfb on a machine without a display),
the four docks opened the way the Plugins menu opens them, then, each as a
phase: the three samples, a calibration started and cancelled, the default
calibration (until its result layers are shown), fine-tuning from the base for
60 steps, deblurring the specimen, compare side by side (on and off), a gate
map and a kernel probe; then a 2048 x 2048 frame: opening it as a layer,
deblurring it with the base model set up for a 2048 x 2048 field, and its gate
map. A 20 ms ``QTimer`` records every gap of the Qt event loop; a watchdog
thread notes where the GUI thread was during each gap above 100 ms (the
innermost frames of this package, else of napari or vispy), so each figure
comes with its cause. Everything is driven through the docks' controls and
napari's own calls, as a user's clicks would be.

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/gui_gaps.py
    # -> results/gui_gaps/gui_gaps.json, one line per phase on stdout
    # --gc: also each garbage collection over 30 ms, with its thread and phase

Software OpenGL under Xvfb (llvmpipe) draws slower than a desktop GPU, so
the layer-drawing part of each gap is pessimistic.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback

import numpy as np

from lib.common import machine, write_results

SCREEN = (1366, 768)
COMMANDS = {"Calibration": "calibration_widget", "Fine-tune": "finetune_widget", "Deblur": "deblur_widget",
            "Gate map": "gate_map_widget"}


class Gaps:
    """Event-loop gaps per phase, and where the GUI thread was during the long ones."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.phase, self.last = None, time.perf_counter()
        self.gaps: dict[str, list[float]] = {}
        self.where: dict[str, dict[str, float]] = {}
        self._main = threading.get_ident()
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.phase is not None:
            self.gaps[self.phase].append(now - self.last)
        self.last = now

    def _watch(self) -> None:
        while True:
            time.sleep(0.03)
            lag = time.perf_counter() - self.last
            if lag > 0.1 and self.phase is not None:
                frames = traceback.extract_stack(sys._current_frames().get(self._main))
                ours = [f for f in frames if "napari_coordgate" in f.filename]
                other = [f for f in frames if "/napari/" in f.filename or "/vispy/" in f.filename]
                pick = (ours or other or frames)[-1]
                key = f"{pick.filename.split('site-packages/')[-1].split('src/')[-1]}:{pick.lineno} {pick.name}"
                place = self.where.setdefault(self.phase, {})
                place[key] = max(place.get(key, 0.0), round(lag, 3))

    def start(self, phase: str) -> None:
        self.phase = phase
        self.gaps.setdefault(phase, [])
        self.last = time.perf_counter()

    def summary(self) -> dict:
        out = {}
        for phase, gaps in self.gaps.items():
            worst = sorted(self.where.get(phase, {}).items(), key=lambda kv: -kv[1])[:3]
            out[phase] = {"worst_ms": round(1000 * max(gaps, default=0.0)), "ticks": len(gaps),
                          "over_100ms": int(sum(g > 0.1 for g in gaps)), "where": dict(worst)}
        return out


def watch_collections(gaps: Gaps) -> list[dict]:
    """Record each garbage collection over 30 ms: generation, thread and phase (a full
    collection scans every object of the process while holding the GIL)."""
    import gc

    started: dict[int, float] = {}
    rows: list[dict] = []

    def callback(stage: str, info: dict) -> None:
        thread = threading.current_thread()
        if stage == "start":
            started[thread.ident] = time.perf_counter()
            return
        seconds = time.perf_counter() - started.pop(thread.ident, time.perf_counter())
        if seconds > 0.03:
            rows.append({"ms": round(1000 * seconds), "generation": info["generation"], "thread": thread.name,
                         "phase": gaps.phase})

    gc.callbacks.append(callback)
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None)
    p.add_argument("--gc", action="store_true",
                   help="also record every garbage collection over 30 ms (it holds the GIL: the GUI waits)")
    args = p.parse_args(argv)

    import napari
    from napari._app_model import get_app_model
    from qtpy.QtWidgets import QApplication, QDockWidget

    from napari_coordgate._qt.state import state_for
    from napari_coordgate.pretrained import base_model

    app = QApplication.instance() or QApplication([])

    def wait(condition, timeout=900.0) -> None:
        end = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > end:
                raise TimeoutError("a step did not finish")
            app.processEvents()
            time.sleep(0.002)

    def settle(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    viewer = napari.Viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    state = state_for(viewer)
    settle(1.0)
    gaps = Gaps()
    collections = watch_collections(gaps) if args.gc else []

    gaps.start("open the four docks from the menu")
    for command in COMMANDS.values():
        get_app_model().commands.execute_command(f"napari-coordgate.{command}").result()
        settle(0.2)
    settle(0.5)
    docks = {type(d.widget()).__name__: d.widget() for d in window.findChildren(QDockWidget)
             if d.widget() is not None and type(d.widget()).__module__.startswith("napari_coordgate")}
    calibration, finetune = docks["CalibrationWidget"], docks["FineTuneWidget"]
    deblur, gates = docks["DeblurWidget"], docks["GateMapWidget"]

    samples = {}
    for key in ("beads", "blurred_specimen", "ground_truth"):
        gaps.start(f"open sample {key}")
        samples[key] = viewer.open_sample("napari-coordgate", key)[0]
        settle(0.5)

    calibration.parent().raise_()
    calibration._bead_image.value = samples["beads"]
    gaps.start("calibration started, then cancelled")
    before = len(calibration.log_text())
    started = time.perf_counter()
    calibration._run_button.native.click()
    wait(lambda: "detecting beads" in calibration.log_text()[before:])  # the run's first message
    first_messages_s = time.perf_counter() - started
    wait(lambda: "round 1 of" in calibration.log_text())
    first_round_s = time.perf_counter() - started
    pressed = time.perf_counter()
    calibration._cancel_button.native.click()
    wait(calibration.is_idle)
    cancel_s = time.perf_counter() - pressed
    settle(0.3)

    gaps.start("calibration (defaults) until its layers are shown")
    calibration._run_button.native.click()
    wait(lambda: state.psf_field is not None and calibration.is_idle())
    settle(1.0)

    finetune.parent().raise_()
    finetune._unit.value, finetune._length.value = "steps", 60
    gaps.start("fine-tune from the base, 60 steps")
    finetune._start_button.native.click()
    wait(lambda: finetune._worker is None)
    settle(0.5)

    def run_dock(phase: str, dock, button, image, after: float = 0.5) -> None:
        """Bring ``dock`` to the front, choose ``image``, click ``button``, wait until its work is done."""
        dock.parent().raise_()
        dock._image.value = image
        gaps.start(phase)
        button.native.click()
        wait(lambda: dock._worker is None)
        settle(after)

    run_dock("deblur the specimen", deblur, deblur._run_button, samples["blurred_specimen"])
    gaps.start("compare side by side, on and off")
    deblur._compare_button.native.click()
    settle(0.5)
    deblur._compare_button.native.click()
    settle(0.5)

    run_dock("gate map of the specimen", gates, gates._show_button, samples["blurred_specimen"])
    gaps.start("kernel probe")
    gates.probe(128, 128)
    wait(lambda: gates.last_kernels is not None)
    settle(0.5)

    frame = np.random.default_rng(0).gamma(2.0, 50.0, (2048, 2048)).astype(np.float32)
    gaps.start("open a 2048 x 2048 frame")
    big = viewer.add_image(frame, name="frame 2048")
    settle(0.5)
    state.model_source = "base model for a 2048 x 2048 field"
    state.model = base_model((2048, 2048))
    run_dock("deblur the 2048 x 2048 frame", deblur, deblur._run_button, big, after=1.0)
    run_dock("gate map of the 2048 x 2048 frame", gates, gates._show_button, big, after=1.0)
    gaps.phase = None

    phases = gaps.summary()
    for phase, r in phases.items():
        where = "; ".join(f"{k} {1000 * v:.0f} ms" for k, v in r["where"].items())
        print(f"{phase}: worst {r['worst_ms']} ms, {r['over_100ms']} gaps over 100 ms"
              + (f" ({where})" if where else ""), flush=True)
    viewer.close()
    print(f"calibration messages: the first after {first_messages_s:.2f} s, the first fit round after "
          f"{first_round_s:.1f} s; Cancel ended the calibration {cancel_s:.3f} s after the click", flush=True)
    for row in collections:
        print(f"garbage collection: {row['ms']} ms, generation {row['generation']}, on {row['thread']}, "
              f"during '{row['phase']}'", flush=True)
    payload = {"machine": machine(), "screen": SCREEN, "phases": phases, "collections_over_30ms": collections,
               "calibration": {"first_messages_s": round(first_messages_s, 3), "first_round_s": round(first_round_s, 2),
                               "cancel_s": round(cancel_s, 3)}}
    write_results("gui_gaps", "gui_gaps", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
