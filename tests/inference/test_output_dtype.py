"""Output dtypes: rounding, saturation at both ends, counting the clipped pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, deblur
from napari_coordgate.inference import OutputCast, output_dtype_for


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_saturates_at_both_ends_never_wraps(dtype):
    info = np.iinfo(dtype)
    values = np.array([info.min - 1000.0, info.min - 0.4, 3.6, info.max + 0.4, info.max + 1.0, 1e9], np.float32)
    cast = OutputCast(np.dtype(dtype))
    out = cast(values)
    assert out.dtype == dtype
    assert out.tolist() == [info.min, info.min, 4, info.max, info.max, info.max]
    assert (cast.clipped_low, cast.clipped_high, cast.total) == (1, 2, 6)
    assert "3 pixels" in cast.report() and f"above {info.max}" in cast.report()


def test_counts_accumulate_over_bands():
    cast = OutputCast(np.dtype(np.uint8))
    cast(np.array([-1.0, 10.0]))
    cast(np.array([300.0, 10.0]))
    assert (cast.clipped_low, cast.clipped_high, cast.total) == (1, 1, 4)


def test_choices():
    assert output_dtype_for(None, np.uint16) == np.float32
    assert output_dtype_for("input", np.uint16) == np.uint16
    assert output_dtype_for("input", np.float64) == np.float64
    assert output_dtype_for("input", bool) == np.uint8
    assert output_dtype_for("uint8", np.float32) == np.uint8
    for bad in ("complex64", "float16", "bool", "not-a-dtype"):
        with pytest.raises(ValueError, match="output dtype"):
            output_dtype_for(bad, np.uint16)


def test_deblur_output_dtype_input():
    torch.manual_seed(0)
    model = CGUNet(depth=2, field_shape=(48, 48), base_channels=4)
    image = (np.random.default_rng(0).random((2, 40, 40)) * 60000).astype(np.uint16)
    messages = []
    as_input = deblur(image, model, device="cpu", output_dtype="input", progress=lambda p: messages.append(p.message))
    as_float = deblur(image, model, device="cpu")
    assert as_input.dtype == np.uint16 and as_float.dtype == np.float32
    expected = np.clip(np.rint(as_float), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(as_input, expected)
    assert messages[-1].startswith("uint16:") and "clipped" in messages[-1]
    assert image.dtype == np.uint16  # the input is untouched
