"""The state shared by the widgets of one viewer, and the worker helpers."""

import gc
import os
import threading

import torch

from napari_coordgate._qt import state as state_module
from napari_coordgate._qt._threads import leave_a_core_for_the_gui, until_cancelled
from napari_coordgate._qt.state import CoordGateState, state_for


def test_one_state_per_viewer(make_napari_viewer):
    first, second = make_napari_viewer(), make_napari_viewer()
    assert state_for(first) is state_for(first)
    assert state_for(first) is not state_for(second)


def test_widgets_follow_the_state_not_each_other(open_widget, state, small_lens, small_model):
    finetune, deblur, gates = open_widget("Fine-tune"), open_widget("Deblur"), open_widget("Gate map")
    state.psf_field = small_lens
    assert "simulated, field 64x64" in finetune._calibration.value
    state.model_source = "lens.safetensors"
    state.model = small_model
    assert "CGUNet(2)" in deblur._model.value and "lens.safetensors" in deblur._model.value
    assert list(gates._block.choices) == ["down0", "down1", "up0"]


def test_state_events_fire_for_new_objects_only():
    state = CoordGateState()
    seen = []
    state.events.model.connect(seen.append)
    model = torch.nn.Linear(1, 1)
    state.model = model
    state.model = model  # the same object: no news
    state.model = None
    assert seen == [model, None]


def test_the_state_lives_as_long_as_its_viewer():
    class Viewer:  # stands in for a napari viewer
        pass

    viewer = Viewer()
    state_for(viewer).device = "cpu"
    assert state_for(viewer).device == "cpu"
    del viewer
    gc.collect()
    assert not any(isinstance(key, Viewer) for key in state_module._STATES)


def test_until_cancelled_closes_the_work_in_its_thread():
    cleaned = []

    def work():
        try:
            yield from range(100)
        finally:
            cleaned.append(threading.current_thread().name)
        return "done"

    cancel = threading.Event()
    run = until_cancelled(work(), cancel)
    assert [next(run), next(run)] == [0, 1]
    cancel.set()
    try:
        next(run)
    except StopIteration as stop:
        assert stop.value is None
    assert cleaned == [threading.current_thread().name]  # clean-up ran at once, here

    finished = until_cancelled(iter_range_returning("done"), threading.Event())
    assert list_and_result(finished) == ([0, 1], "done")


def iter_range_returning(value):
    yield 0
    yield 1
    return value


def list_and_result(gen):
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def test_leave_a_core_restores_the_thread_count():
    before = torch.get_num_threads()
    with leave_a_core_for_the_gui():
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 2) - 1)
    assert torch.get_num_threads() == before
