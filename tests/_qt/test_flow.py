"""The whole flow, as a user runs it: sample -> calibrate -> fine-tune -> stop -> deblur -> gate map."""

import pytest
import numpy as np
from numpy.testing import assert_array_equal

TIMEOUT = 300_000


@pytest.mark.slow
def test_sample_to_gate_map(qtbot, viewer, open_widget, state, click):
    calibration, finetune = open_widget("Calibration"), open_widget("Fine-tune")
    deblur, gates = open_widget("Deblur"), open_widget("Gate map")

    # 1. sample data
    beads = viewer.open_sample("napari-coordgate", "beads")[0]
    specimen = viewer.open_sample("napari-coordgate", "blurred_specimen")[0]

    # 2. calibrate from the bead slide
    calibration._kind.value = "beads"
    calibration._bead_image.value = beads
    click(calibration._run_button)
    qtbot.waitUntil(lambda: state.psf_field is not None and calibration.is_idle(), timeout=TIMEOUT)
    assert state.psf_field.kind == "beads" and state.psf_field.field_shape == beads.data.shape
    assert len(viewer.layers["detected beads"].data) == state.psf_field.metadata["n_used"] > 10
    assert "beads, field 256x256" in finetune._calibration.value

    # 3. fine-tune the shipped base (the default) for a few steps, then stop it
    finetune._batch.value, finetune._patch.value = 2, 32
    finetune._unit.value = "steps"
    finetune._length.value = 10_000
    click(finetune._start_button)
    qtbot.waitUntil(lambda: finetune.monitor.step_bar.value() >= 3, timeout=TIMEOUT)
    click(finetune._stop_button)
    qtbot.waitUntil(lambda: finetune._worker is None, timeout=TIMEOUT)
    model = state.model
    assert model is not None and model.arch == "CGUNet" and "stopped" in state.model_source
    assert finetune.monitor.preview.image.shape == (256, 256)
    assert "CGUNet(3)" in deblur._model.value and "CGUNet(3)" in gates._model_label.value

    # 4. deblur a stack
    stack = np.stack([specimen.data, 0.5 * specimen.data])
    original = stack.copy()
    source = viewer.add_image(stack, name="specimen stack")
    deblur._image.value = source
    click(deblur._run_button)
    qtbot.waitUntil(lambda: deblur._worker is None, timeout=TIMEOUT)
    result = viewer.layers["specimen stack deblurred"]
    assert result.data.shape == (2, 256, 256) and np.isfinite(result.data).all()
    assert_array_equal(source.data, original)

    # 5. the gate map of the first level, over the stack
    gates._image.value = source
    gates._block.value = "down0"
    click(gates._show_button)
    qtbot.waitUntil(lambda: "gate map down0 (level 0)" in viewer.layers, timeout=TIMEOUT)
    assert viewer.layers["gate map down0 (level 0)"].data.shape == (16, 256, 256)  # the base: 16 channels
