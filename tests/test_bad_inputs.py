"""Bad input gets a clear refusal or a correct result, never a silent non-finite one (API and CLI).

The first half is one test per case users met; the second half fuzzes the
public functions with hypothesis: every input either raises a ``ValueError``
or ``TypeError`` with a message, or gives a finite result of the right shape
and dtype.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from napari_coordgate import CGUNet, UNet, deblur, load_model, save_model
from napari_coordgate.cli import main as cli_main
from napari_coordgate.data import make_training_set
from napari_coordgate.psf import PSFField, calibrate_from_beads, simulate_lens
from napari_coordgate.training import train

FIELD = (48, 48)
FUZZ = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
#: Every message a user gets names the problem (not an empty or one-word error).
MIN_MESSAGE = 15


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CGUNet(2, field_shape=FIELD, base_channels=2).eval()


@pytest.fixture(scope="module")
def field():
    return simulate_lens(FIELD, grid=(2, 2), psf_size=7, defocus_edge=0.5)


def write_header(path, change) -> str:
    """A valid model file at ``path`` whose JSON header was changed by ``change(header)``."""
    torch.manual_seed(0)
    save_model(CGUNet(2, field_shape=FIELD, base_channels=2), path)
    with safe_open(str(path), "pt") as fh:
        header = json.loads(fh.metadata()["napari_coordgate"])
    change(header)
    save_file(load_file(str(path)), str(path), metadata={"napari_coordgate": json.dumps(header)})
    return str(path)


def assert_clear(err: BaseException) -> None:
    event(f"refused: {type(err).__name__}")
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {err}"
    assert len(str(err)) >= MIN_MESSAGE, str(err)
    assert "allow_pickle" not in str(err)


# -- the cases users met -----------------------------------------------------------------------------------
def test_values_beyond_float32_are_refused(model):
    huge = np.random.default_rng(0).random(FIELD) * 1e300
    with pytest.raises(ValueError, match="float32 range"):
        deblur(huge, model, device="cpu")


@pytest.mark.parametrize("bad, match", [((5, 5), "low < high"), ((math.nan, 1), "finite"), ((1, math.inf), "finite"),
                                        ((9, 1), "low < high"), (5, "two numbers")])
def test_intensity_ranges_are_checked(model, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        deblur(np.ones(FIELD), model, device="cpu", intensity_range=bad)


@pytest.mark.parametrize("bad, error, match", [(5, TypeError, "two numbers"), ((math.nan, 0), ValueError, "finite"),
                                               ((1.5, 0), ValueError, "whole number"), ((0, 0, 0), ValueError, "two numbers")])
def test_offsets_are_checked(model, bad, error, match):
    with pytest.raises(error, match=match):
        deblur(np.ones((16, 16)), model, device="cpu", offset=bad)


def test_a_nan_weight_is_refused_at_load_and_named_at_deblur(model, tmp_path):
    broken = CGUNet(2, field_shape=FIELD, base_channels=2)
    with torch.no_grad():
        broken.head.weight[0, 0] = math.nan
    path = save_model(broken, tmp_path / "nan.safetensors")
    with pytest.raises(ValueError, match="non-finite weights"):
        load_model(path)
    with pytest.raises(ValueError, match="non-finite values"):
        deblur(np.random.default_rng(0).random(FIELD), broken, device="cpu")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda h: h["config"].pop("depth"), "'depth' is missing"),
        (lambda h: h["config"].update(depth="3"), "depth must be a whole number"),
        (lambda h: h["config"].update(depth=40), "depth must be between 1 and 8"),
        (lambda h: h["config"].update(base_channels=2.5), "whole number"),
        (lambda h: h["config"].update(field_shape=[48]), "field_shape"),
        (lambda h: h["config"].update(residual="yes"), "true or false"),
        (lambda h: h["config"].update(extra=1), "unknown CGUNet settings"),
        (lambda h: h["config"].update(gate_stride=0), "gate_stride must be between 1 and"),
        (lambda h: h.update(format_version="1"), "format_version must be a number"),
        (lambda h: h.update(format_version=99), "newer napari-coordgate"),
        (lambda h: h["normalization"].update(percentiles=[200, 300]), "percentiles"),
        (lambda h: h["normalization"].update(percentiles=[50, 10]), "low < high"),
        (lambda h: h.update(metadata=[1]), "metadata"),
    ],
)
def test_model_headers_are_checked_against_the_schema(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        load_model(write_header(tmp_path / "m.safetensors", change))


def test_too_large_a_model_is_refused_before_it_is_built(tmp_path):
    path = write_header(tmp_path / "big.safetensors", lambda h: h["config"].update(depth=8, base_channels=256))
    with pytest.raises(ValueError, match="million parameters"):
        load_model(path)
    with pytest.raises(ValueError, match="depth must be between 1 and 8"):
        CGUNet(40, field_shape=FIELD, base_channels=16)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_named(tmp_path):
    path = save_model(CGUNet(2, field_shape=FIELD, base_channels=2), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        load_model(path, device="cuda")


def test_saving_under_a_file_names_the_file(tmp_path):
    (tmp_path / "notes").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        save_model(CGUNet(2, field_shape=FIELD, base_channels=2), tmp_path / "notes" / "m.safetensors")
    assert (tmp_path / "notes").read_text() == "x"


def test_saturated_bead_image_is_named():
    with pytest.raises(ValueError, match="saturated"):
        calibrate_from_beads(np.full((64, 64), 65535, np.uint16))


def test_psf_larger_than_the_field_is_refused():
    with pytest.raises(ValueError, match="larger than its field"):
        make_training_set(PSFField(np.ones((2, 2, 41, 41)), (32, 32)), patch_size=32)


def test_simulated_lens_reports_the_energy_its_kernel_holds():
    with pytest.raises(ValueError, match="more cells than"):
        simulate_lens((6, 6), defocus_edge=2.0)
    with pytest.raises(ValueError, match=r"holds only \d+% of the most blurred PSF"):
        simulate_lens((6, 6), grid=(2, 2), defocus_edge=2.0)
    with pytest.raises(ValueError, match="defocus_edge must be a finite number"):
        simulate_lens((64, 64), defocus_edge=math.nan)
    lens = simulate_lens((40, 40), grid=(2, 2), defocus_edge=2.0)
    energy = lens.metadata["worst_psf_energy_in_kernel"]
    assert 0.5 <= energy < 0.98  # the real share, not 100 %: the field caps the kernel


def test_huge_batches_are_refused_at_once(field):
    data = make_training_set(field, patch_size=32, n_specimens=1, n_val=1, seed=0)
    with pytest.raises(ValueError, match="batch_size must be between 1 and 1024"):
        train(CGUNet(2, field_shape=FIELD, base_channels=2), data, steps=1, batch_size=10**8)
    with pytest.raises(ValueError, match="finite"):
        train(CGUNet(2, field_shape=FIELD, base_channels=2), data, steps=1, lr=math.inf)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["calibrate", "simulate", "--field", "4", "-o", "{tmp}/f.npz", "-q"], "more cells than"),
        (["deblur", "{tmp}/img.tif", "{tmp}/m.safetensors", "-o", "{tmp}/out.tif", "--range", "5,5", "-q"], "low < high"),
        (["deblur", "{tmp}/img.tif", "{tmp}/m.safetensors", "-o", "{tmp}/out.tif", "--range", "nan,1", "-q"], "finite"),
        (["info", "{tmp}/depth.safetensors"], "depth must be a whole number"),
        (["train", "{tmp}/lens.npz", "-o", "{tmp}/out.safetensors", "--depth", "40", "--steps", "1", "-q"],
         "depth must be between 1 and 8"),
    ],
)
def test_cli_refuses_in_one_line(tmp_path, capsys, argv, match):
    import tifffile

    tifffile.imwrite(tmp_path / "img.tif", np.random.default_rng(0).random(FIELD).astype(np.float32))
    save_model(CGUNet(2, field_shape=FIELD, base_channels=2), tmp_path / "m.safetensors")
    write_header(tmp_path / "depth.safetensors", lambda h: h["config"].update(depth="3"))
    simulate_lens(FIELD, grid=(2, 2), psf_size=7).save(tmp_path / "lens.npz")
    status = cli_main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert status != 0 and err.count("\n") == 0 and "Traceback" not in err
    assert match in err
    assert not any((tmp_path / name).exists() for name in ("out.tif", "f.npz", "out.safetensors"))


# -- fuzzing -------------------------------------------------------------------------------------------------
finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)
anything_numberish = st.one_of(finite_or_not, st.integers(-10**6, 10**6), st.none(), st.text(max_size=3),
                               st.booleans(), st.lists(st.integers(0, 9), max_size=3))


def _a_valid_count(value) -> bool:
    try:
        return 1 <= float(value) <= 4096 and float(value).is_integer() and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        return False


#: Anything but a count the training set accepts (1 to 4096): a fuzz example that happens to be a large valid count
#: (3000 specimens) builds that many specimens, which takes minutes, not a refusal to test.
not_a_count = anything_numberish.filter(lambda value: not _a_valid_count(value))


def _positive_whole(value) -> bool:
    try:
        return float(value) >= 1 and float(value).is_integer() and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        return False


#: Anything but a valid number of steps: 700000 steps is valid, and trains for hours instead of being refused.
not_a_step_count = anything_numberish.filter(lambda value: not _positive_whole(value))
dtypes = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])


@st.composite
def images(draw):
    dtype = draw(dtypes)
    shape = draw(st.one_of(st.tuples(st.integers(1, 40), st.integers(1, 40)),
                           st.tuples(st.integers(1, 2), st.integers(1, 24), st.integers(1, 24)),
                           st.tuples(st.integers(1, 5))))
    if np.dtype(dtype).kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
        return draw(hnp.arrays(dtype, shape, elements=st.one_of(elements, st.floats(-1e3, 1e3,
                                                                                    width=np.dtype(dtype).itemsize * 8))))
    return draw(hnp.arrays(dtype, shape))


@FUZZ
@given(image=images(),
       offset=st.one_of(st.tuples(st.integers(-3, 50), st.integers(-3, 50)), st.tuples(finite_or_not, finite_or_not),
                        anything_numberish),
       intensity_range=st.one_of(st.none(), st.tuples(finite_or_not, finite_or_not), anything_numberish))
def test_fuzz_deblur(model, image, offset, intensity_range):
    try:
        out = deblur(image, model, offset=offset, intensity_range=intensity_range, device="cpu")
    except (ValueError, TypeError) as err:
        assert_clear(err)
        return
    event("deblurred")
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.isfinite(out).all()


header_values = st.one_of(st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                          st.none(), st.booleans(), st.lists(st.integers(-2, 70), max_size=3))


#: Values a header field may hold: a valid one, a near miss or anything at all.
valid_header = {
    "depth": st.integers(1, 3), "base_channels": st.integers(1, 4), "field_shape": st.just([48, 48]),
    "residual": st.booleans(), "gate_hidden": st.integers(1, 8), "gate_layers": st.integers(1, 3),
    "gate_stride": st.integers(1, 32),
    "arch": st.sampled_from(["CGUNet", "UNet", "CoordConvUNet"]), "format_version": st.integers(0, 2),
    "percentiles": st.lists(st.floats(0, 100), min_size=2, max_size=2).map(sorted), "metadata": st.just({}),
    "config": st.just({"arch": "UNet", "depth": 2, "base_channels": 2, "field_shape": None, "residual": True}),
}


@FUZZ
@given(changes=st.lists(st.sampled_from(sorted(valid_header)).flatmap(
    lambda key: st.tuples(st.just(key), st.one_of(valid_header[key], header_values))), min_size=1, max_size=3))
def test_fuzz_model_header(tmp_path_factory, changes):
    def change(header):
        for key, value in changes:
            if key in ("format_version", "metadata", "config"):
                header[key] = value
            elif key == "percentiles":
                header["normalization"]["percentiles"] = value
            elif isinstance(header["config"], dict):
                header["config"][key] = value

    path = write_header(tmp_path_factory.mktemp("m") / "m.safetensors", change)
    try:
        loaded = load_model(path)
    except (ValueError, TypeError) as err:
        assert_clear(err)
        return
    event("loaded")
    image = np.random.default_rng(0).random(FIELD)
    if loaded.field_shape is not None and any(f < n for f, n in zip(loaded.field_shape, FIELD)):
        # a valid header for a smaller field: the image does not fit, and deblur says so
        with pytest.raises(ValueError, match="does not fit in the model's calibrated field") as err:
            deblur(image, loaded, device="cpu")
        assert_clear(err.value)
        return
    out = deblur(image, loaded, device="cpu")
    assert out.shape == FIELD and np.isfinite(out).all()


@st.composite
def psf_files(draw):
    """The arrays of a PSF-field file: a valid one with at most two of its parts broken."""
    parts = draw(arguments(
        valid=dict(psfs=hnp.arrays(np.float64, (2, 2, 5, 5), elements=st.floats(0.01, 1)),
                   format=st.just("napari-coordgate.psf-field"), version=st.just(1), field_shape=st.just([20, 20]),
                   kind=st.sampled_from(["custom", "beads", "simulated"])),
        invalid=dict(psfs=st.one_of(hnp.arrays(np.float64, (2, 2, 5, 5)),
                                    hnp.arrays(st.sampled_from([np.float64, np.int64, np.bool_]),
                                               hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))),
                     format=header_values, version=header_values, field_shape=header_values, kind=header_values)))
    header = json.dumps({key: parts[key] for key in ("format", "version", "field_shape", "kind")})
    return {"psfs": parts["psfs"], "header": draw(st.one_of(st.just(header), st.just(header), st.text(max_size=30)))}


@FUZZ
@given(content=st.one_of(st.binary(max_size=300), psf_files()))
def test_fuzz_psf_field_load(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("p") / "field.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, psfs=content["psfs"], header=np.array(content["header"]))
    try:
        field = PSFField.load(path)
    except (ValueError, TypeError) as err:
        assert_clear(err)
        return
    event("loaded")
    assert np.isfinite(field.psfs).all()


@st.composite
def arguments(draw, valid: dict, invalid: dict) -> dict:
    """Keyword arguments with at most two of them drawn from ``invalid`` (the rest valid)."""
    broken = draw(st.sets(st.sampled_from(sorted(invalid)), max_size=2))
    return {key: draw(invalid[key] if key in broken else valid[key]) for key in valid}


FUZZ_SLOW = settings(FUZZ, max_examples=30)


@FUZZ_SLOW
@given(kwargs=arguments(
    valid=dict(patch_size=st.sampled_from([16, 32, 48]), n_specimens=st.integers(1, 2), n_val=st.integers(0, 2),
               noise=st.one_of(st.none(), st.just("auto"), st.floats(1, 1e4), st.fixed_dictionaries(
                   {"photons": st.floats(1, 1e4), "read_noise": st.floats(0, 10)})),
               intensity_range=st.floats(1, 4), percentiles=st.tuples(st.floats(0, 49), st.floats(51, 100))),
    invalid=dict(patch_size=st.one_of(st.integers(-8, 100), anything_numberish),
                 n_specimens=st.one_of(st.integers(-2, 0), not_a_count),
                 n_val=st.one_of(st.integers(-2, -1), not_a_count.filter(lambda value: value != 0)),
                 noise=st.one_of(finite_or_not, st.text(max_size=3), st.fixed_dictionaries({"photons": finite_or_not})),
                 intensity_range=st.one_of(st.floats(-2, 1), finite_or_not),
                 percentiles=st.one_of(st.tuples(finite_or_not, finite_or_not), anything_numberish))))
def test_fuzz_make_training_set(field, kwargs):
    try:
        data = make_training_set(field, seed=0, **kwargs)
    except (ValueError, TypeError) as err:
        assert_clear(err)
        return
    event("made")
    blurred, sharp, _ = data.sample_batch(2, np.random.default_rng(0))
    assert np.isfinite(np.asarray(blurred)).all() and np.isfinite(np.asarray(sharp)).all()
    assert np.isfinite(data.validation.blurred).all()


def test_a_vanishing_photon_count_is_refused(field):
    """Found by the fuzz test above: 1e-197 photons made NaN training data (1 / photons overflows float32)."""
    with pytest.raises(ValueError, match="noise photons"):
        make_training_set(field, patch_size=16, n_specimens=1, n_val=0, noise=1.2e-197, seed=0)


@pytest.fixture(scope="module")
def small_data(field):
    return make_training_set(field, patch_size=16, n_specimens=1, n_val=1, seed=0)


@FUZZ_SLOW
@given(kwargs=arguments(
    valid=dict(steps=st.integers(1, 2), batch_size=st.integers(1, 4), lr=st.floats(1e-4, 1e-2),
               val_every=st.integers(1, 2), early_stop_patience=st.integers(1, 3)),
    invalid=dict(steps=st.one_of(st.integers(-1, 0), not_a_step_count),
                 batch_size=st.one_of(st.integers(-1, 0), st.integers(10**3, 10**9), anything_numberish),
                 lr=st.one_of(st.floats(1, 1e9), finite_or_not), val_every=st.one_of(st.integers(-1, 0), anything_numberish),
                 early_stop_patience=st.one_of(st.integers(-1, 0), anything_numberish))),
       arch=st.sampled_from(["CGUNet", "UNet"]))
def test_fuzz_train(small_data, kwargs, arch):
    torch.manual_seed(0)
    net = CGUNet(2, field_shape=FIELD, base_channels=2) if arch == "CGUNet" else UNet(2, base_channels=2, field_shape=FIELD)
    try:
        run = train(net, small_data, device="cpu", preview=False, **kwargs)
    except (ValueError, TypeError) as err:
        assert_clear(err)
        return
    try:
        while True:
            next(run)
    except StopIteration as stop:
        result = stop.value
    except RuntimeError as err:  # a learning rate that makes the loss diverge is reported while training
        assert "diverged" in str(err)
        event("diverged")
        return
    event("trained")
    assert result.steps_done >= 1
    assert all(torch.isfinite(t).all() for t in result.best_state_dict.values())
