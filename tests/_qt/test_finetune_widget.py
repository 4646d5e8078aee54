"""The Fine-tune widget: live training in a worker, Stop, the shared model, model files."""

import threading
import time

import numpy as np
import pytest
import torch
from qtpy.QtCore import QTimer

from napari_coordgate import CGUNet
from napari_coordgate._qt import finetune_widget as finetune_module
from napari_coordgate.device import available_devices
from napari_coordgate.precision import compute_mode
from napari_coordgate.pretrained import FINE_TUNE_LR, SCRATCH_LR

TIMEOUT = 120_000


@pytest.fixture
def widget(open_widget, state, small_lens):
    state.psf_field = small_lens
    w = open_widget("Fine-tune")
    # small and fast: a new 2-level, 4-channel CG U-Net on 32 x 32 patches
    w._start_from.value = "scratch"
    w._depth.value, w._width.value, w._batch.value, w._patch.value = 2, 4, 2, 32
    return w


def wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: widget._worker is None, timeout=TIMEOUT)


def validation_loss(model, data) -> float:
    """The loss train() validates with: MSE over the full-field validation images, in its compute mode."""
    mode = compute_mode(torch.device("cpu"))
    with torch.no_grad(), mode.autocast():
        x = mode.prepare_input(torch.from_numpy(data.validation.blurred[:, None]))
        pred = model.cpu().eval()(x, (0, 0))[:, 0].float().numpy()
    return float(np.mean((pred - data.validation.sharp) ** 2))


def test_device_combo_shows_what_was_found(open_widget, widget, state):
    assert list(widget._device.combo.choices) == available_devices()
    assert widget._device.found.value  # e.g. "auto: cpu, 2 threads"
    widget._device.combo.value = "cpu"
    assert state.device == "cpu" and widget._device.found.value.startswith("cpu, ")
    deblur = open_widget("Deblur")
    assert deblur._device.combo.value == "cpu"  # one device for all widgets
    deblur._device.combo.value = "auto"
    assert widget._device.combo.value == "auto"


def test_trains_and_publishes_the_model(qtbot, viewer, widget, state, click):
    widget._unit.value = "steps"
    widget._length.value = 6
    click(widget._start_button)
    assert not widget._start_button.enabled and widget._stop_button.enabled
    wait_idle(qtbot, widget)

    model = state.model
    assert isinstance(model, CGUNet) and model.depth == 2 and model.base_channels == 4
    assert model.field_shape == state.psf_field.field_shape
    assert "finished at step 6" in state.model_source
    assert widget.monitor.step_bar.value() == widget.monitor.step_bar.maximum() == 6
    plot = widget.monitor.plot
    assert plot.steps == [1, 2, 3, 4, 5, 6] and len(plot.train_loss) == 6
    assert plot.val_steps == [0, 6] and all(np.isfinite(plot.val_psnr))
    assert "dB at step" in widget.monitor.best.text()
    preview = widget.monitor.preview.image  # drawn in the dock, not as a layer
    assert preview is not None and preview.shape == state.psf_field.field_shape
    assert "validation preview (deblurred)" not in viewer.layers
    assert state.training_set is not None and state.training_set.patch_size == 32
    assert widget._start_button.enabled and not widget._stop_button.enabled
    assert widget._status.level == "ok"


def test_stop_keeps_the_best_model_and_the_gui_stays_responsive(qtbot, widget, state, click):
    widget._unit.value = "steps"
    widget._length.value = 10**5
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    click(widget._start_button)
    # measure the event loop for a while once training steps are running
    qtbot.waitUntil(lambda: widget.monitor.step_bar.value() >= 2, timeout=TIMEOUT)
    gaps.clear()
    last[0] = time.perf_counter()
    start_step = widget.monitor.step_bar.value()
    qtbot.wait(2500)
    timer.stop()
    trained = widget.monitor.step_bar.value() - start_step
    click(widget._stop_button)
    wait_idle(qtbot, widget)

    assert trained > 5, "training made no progress while the GUI was measured"
    assert max(gaps) < 0.25, f"the GUI froze for {max(gaps) * 1000:.0f} ms while training"
    assert "stopped at step" in state.model_source
    # Stop kept the weights with the best validation loss seen, not the last ones
    best = min(widget.monitor.plot.val_loss)
    assert validation_loss(state.model, state.training_set) == pytest.approx(best, rel=1e-4)


def test_trains_for_minutes_by_default(qtbot, widget, state, click):
    assert widget._unit.value == "minutes" and widget._length.value == 3
    widget._length.value = 1
    click(widget._start_button)
    assert "for 1 min" in widget._status.text()
    qtbot.waitUntil(lambda: widget.monitor.step_bar.value() >= 3, timeout=TIMEOUT)
    record = widget._last_record
    assert record.eta_s == pytest.approx(60 - record.elapsed_s, abs=1.0)  # the budget, not a step count, sets it
    assert widget.monitor.step_bar.maximum() > record.step  # steps re-estimated from the measured speed
    click(widget._stop_button)
    wait_idle(qtbot, widget)
    assert "stopped at step" in state.model_source


def test_starts_from_the_shipped_base_by_default(qtbot, open_widget, state, small_lens, click, monkeypatch):
    state.psf_field = small_lens
    w = open_widget("Fine-tune")
    assert w._start_from.value == "base"
    assert (w._arch.value, w._depth.value, w._width.value) == ("CGUNet", 3, 16) and not w._depth.enabled
    w._batch.value, w._patch.value, w._unit.value, w._length.value = 2, 32, "steps", 2
    built_on = []  # loading the base takes a few hundred ms: not on the GUI thread
    real = finetune_module.starting_model
    monkeypatch.setattr(finetune_module, "starting_model",
                        lambda *args: built_on.append(threading.current_thread()) or real(*args))
    click(w._start_button)
    wait_idle(qtbot, w)
    assert built_on and built_on[0] is not threading.main_thread()
    model = state.model
    assert model.metadata["base_model"] == "cgunet3-w16" and model.field_shape == small_lens.field_shape
    assert w._lr.value == FINE_TUNE_LR
    w._start_from.value = "scratch"
    assert w._depth.enabled and w._lr.value == SCRATCH_LR  # the rate follows the start...
    w._lr.value = 2e-4
    w._start_from.value = "base"
    assert w._lr.value == 2e-4  # ...unless the user chose one


def test_fine_tunes_a_copy_of_the_current_model(qtbot, widget, state, small_model, click):
    state.model = small_model
    before = {k: v.clone() for k, v in small_model.state_dict().items()}
    widget._start_from.value = "current"
    assert not widget._depth.enabled  # the architecture is the current model's
    widget._unit.value = "steps"
    widget._length.value = 3
    click(widget._start_button)
    wait_idle(qtbot, widget)
    assert state.model is not small_model and type(state.model) is type(small_model)
    # the original was never touched (other widgets may have been using it)
    assert all(torch.equal(before[k], v) for k, v in small_model.state_dict().items())


def test_baselines_can_be_trained(qtbot, widget, state, click):
    widget._arch.value = "CoordConvUNet"
    widget._unit.value = "steps"
    widget._length.value = 2
    click(widget._start_button)
    wait_idle(qtbot, widget)
    assert state.model.arch == "CoordConvUNet"


def test_save_and_load_model(qtbot, widget, state, small_model, click, tmp_path, monkeypatch, open_widget):
    state.model = small_model
    target = tmp_path / "lens-model"
    monkeypatch.setattr(finetune_module, "ask_save_path", lambda *a: str(target))
    click(widget._save_button)
    saved = tmp_path / "lens-model.safetensors"
    assert saved.is_file()

    state.model = None
    monkeypatch.setattr(finetune_module, "ask_open_path", lambda *a: str(saved))
    click(widget._load_button)
    loaded = state.model
    assert loaded is not small_model and loaded.config == small_model.config
    assert all(torch.equal(v, small_model.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert loaded.metadata["psf_field"]["field_shape"] == list(state.psf_field.field_shape)
    assert "lens-model.safetensors" in open_widget("Deblur")._model.value  # everyone uses it


def test_errors(qtbot, widget, state, click, notifications, tmp_path, monkeypatch):
    state.psf_field = None
    click(widget._start_button)
    assert any("no calibration" in m for m in notifications.errors)
    assert widget._status.level == "error" and "no calibration" in widget._status.text()  # not only a pop-up
    bad = tmp_path / "not-a-model.safetensors"
    bad.write_bytes(b"nonsense")
    monkeypatch.setattr(finetune_module, "ask_open_path", lambda *a: str(bad))
    click(widget._load_button)
    assert any("not a napari-coordgate model" in m for m in notifications.errors)


def test_saved_model_records_its_training(qtbot, tmp_path, open_widget, state, small_lens, click):
    from napari_coordgate import load_model

    state.psf_field = small_lens
    widget = open_widget("Fine-tune")
    widget._start_from.value = "scratch"
    widget._depth.value, widget._width.value = 2, 4
    widget._unit.value, widget._length.value = "steps", 4
    widget._patch.value, widget._batch.value = 32, 2
    click(widget._start_button)
    qtbot.waitUntil(lambda: widget._worker is None, timeout=120_000)
    path = widget.save_model(str(tmp_path / "m.safetensors"))
    meta = load_model(path).metadata
    assert meta["training"]["steps"] == 4 and meta["training"]["started_from"] == "scratch"
    assert "val_psnr" in meta["training"] and meta["psf_field"]["field_shape"] == [64, 64]


@pytest.mark.slow
def test_export_for_bioimageio(qtbot, tmp_path, open_widget, calibrated, notifications):
    import bioimageio.spec

    from napari_coordgate import deblur, load_model

    widget = open_widget("Fine-tune")
    widget._export_author.value = "Ada Lovelace; Charles Babbage"
    widget.export_bioimageio(str(tmp_path / "scope"))
    qtbot.waitUntil(lambda: widget._export_worker is None, timeout=120_000)
    assert "Exported scope.zip" in widget._status.text(), widget._status.text()
    descr = bioimageio.spec.load_description(tmp_path / "scope.zip")
    assert [a.name for a in descr.authors] == ["Ada Lovelace", "Charles Babbage"]
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    np.testing.assert_allclose(deblur(image, load_model(tmp_path / "scope.zip"), device="cpu", precision="fp32"),
                               deblur(image, calibrated.model, device="cpu", precision="fp32"), atol=1e-5)


def test_export_errors_are_notified(qtbot, tmp_path, open_widget, calibrated, notifications):
    widget = open_widget("Fine-tune")
    widget._export_license.value = "not a licence"
    widget.export_bioimageio(str(tmp_path / "bad.zip"))
    qtbot.waitUntil(lambda: widget._export_worker is None, timeout=120_000)
    assert widget._status.level == "error" and any("licen" in m.lower() for m in notifications.errors)
    assert not (tmp_path / "bad.zip").exists()


def test_closing_the_dock_stops_training_and_keeps_the_best_model(qtbot, viewer, widget, state, click, notifications):
    widget._unit.value = "steps"
    widget._length.value = 10**5
    click(widget._start_button)
    qtbot.waitUntil(lambda: widget._best_record is not None, timeout=TIMEOUT)
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    wait_idle(qtbot, widget)
    assert state.model is not None and "stopped at step" in state.model_source
    assert any("dock was closed" in m for m in notifications.messages("info"))
