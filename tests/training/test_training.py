"""The training loop: records, stopping, checkpoints, learning-rate schedule, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, UNet, load_model
from napari_coordgate.data import make_training_set
from napari_coordgate.training import TrainingProgress, region_masks, regional_psnr, run_training, train
from napari_coordgate.training.metrics import psnr

from napari_coordgate.psf.psf_field import PSFField

FIELD = (64, 64)


def gaussian_psf_field(field_shape=FIELD, grid=(4, 4), k=11, sigma_centre=0.7, sigma_edge=2.5) -> PSFField:
    """A PSF field whose Gaussian blur grows with the distance from the centre."""
    yy, xx = np.mgrid[:k, :k] - k // 2
    psfs = np.empty((*grid, k, k))
    for i in range(grid[0]):
        for j in range(grid[1]):
            r = np.hypot((i + 0.5) / grid[0] - 0.5, (j + 0.5) / grid[1] - 0.5) / np.hypot(0.5, 0.5)
            s = sigma_centre + (sigma_edge - sigma_centre) * r**2
            psfs[i, j] = np.exp(-(yy**2 + xx**2) / (2 * s * s))
    return PSFField(psfs, field_shape, kind="custom")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def data():
    field = gaussian_psf_field(FIELD, grid=(4, 4), k=11, sigma_centre=0.7, sigma_edge=2.5)
    return make_training_set(field, patch_size=32, n_specimens=4, n_val=2, noise=1000.0, seed=0)


def small_model(base=4, arch=CGUNet):
    torch.manual_seed(0)
    return arch(3, base_channels=base, field_shape=FIELD)


def validation_loss(model, data):
    model.eval()
    with torch.inference_mode():
        x = torch.from_numpy(data.validation.blurred[:, None])
        pred = model(x, (0, 0)).numpy()[:, 0]
    return float(np.mean((pred - data.validation.sharp) ** 2))


def test_records_have_every_field(data):
    records = []
    result = run_training(train(small_model(), data, steps=6, val_every=3, device="cpu", schedule="plateau"),
                          records.append)
    assert [r.step for r in records] == list(range(7))
    for r in records:
        assert isinstance(r, TrainingProgress) and r.total_steps == 6 and r.device.startswith("cpu")
        assert r.lr == pytest.approx(1e-3) and r.elapsed_s >= 0 and r.eta_s >= 0
        assert np.isfinite([r.input_psnr, r.input_ssim, r.input_psnr_centre, r.input_psnr_edge]).all()
        validated = r.step in (0, 3, 6)
        assert (r.val_loss is not None) == validated and (r.preview is not None) == validated
        if validated:
            assert np.isfinite([r.val_loss, r.val_psnr, r.val_ssim, r.val_psnr_centre, r.val_psnr_edge]).all()
            assert r.preview.ndim == 2 and r.preview.dtype == np.float32
        if r.step:
            assert r.train_loss > 0 and r.samples_per_s > 0 and r.epoch == 1
        assert "preview" not in r.as_dict()
    assert records[0].train_loss is None and records[0].is_best
    assert result.steps_done == 6 and len(result.history) == 3 and not result.stopped_early
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    assert all(t.device.type == "cpu" for t in result.best_state_dict.values())
    assert result.device.startswith("cpu") and result.checkpoint is None
    assert set(result.best_metrics) >= {"val_loss", "val_psnr", "val_ssim", "val_psnr_centre", "val_psnr_edge"}


def test_loss_decreases(data):
    records = []
    result = run_training(train(small_model(base=8), data, steps=40, lr=3e-3, val_every=10, device="cpu"),
                          records.append)
    losses = [r.train_loss for r in records[1:]]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert result.best_val_loss < 0.9 * records[0].val_loss


def test_closing_midway_keeps_best_weights_and_checkpoint(data, tmp_path):
    model = small_model()
    path = tmp_path / "best.safetensors"
    gen = train(model, data, steps=100, lr=3e-3, val_every=4, device="cpu", precision="fp32", checkpoint=path,
                metadata={"note": "unit test"})
    best_val = None
    for record in gen:
        if record.is_best:
            best_val = record.val_loss
        if record.step == 10:
            break
    gen.close()
    assert best_val is not None and path.is_file()
    # the model holds the best weights: its validation loss is the best one seen
    assert validation_loss(model, data) == pytest.approx(best_val, rel=1e-4)
    saved = load_model(path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[key], value)
    assert saved.metadata["note"] == "unit test"
    training = saved.metadata["training"]
    assert training["best_val_loss"] == pytest.approx(best_val)
    assert training["data"]["psf_field"]["kind"] == "custom" and training["calibration_kind"] == "custom"


def test_an_exception_leaves_the_best_weights(data, monkeypatch):
    model = small_model()
    calls = {"n": 0}
    original = data.sample_batch

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyError("disk gone")
        return original(*args, **kwargs)

    monkeypatch.setattr(data, "sample_batch", failing)
    records = []
    with pytest.raises(KeyError):
        run_training(train(model, data, steps=20, lr=3e-3, val_every=2, device="cpu", precision="fp32"),
                     records.append)
    best = min(r.val_loss for r in records if r.val_loss is not None)
    assert validation_loss(model, data) == pytest.approx(best, rel=1e-4)


def test_plateau_lowers_lr_then_early_stop(data):
    records = []
    gen = train(small_model(), data, steps=50, lr=1e-12, val_every=2, schedule="plateau", plateau_patience=1,
                lr_factor=0.5, min_lr=0.0, early_stop_patience=3, device="cpu")
    result = run_training(gen, records.append)
    validations = [r for r in records if r.val_loss is not None]
    lrs = [r.lr for r in validations]
    assert lrs[0] == pytest.approx(1e-12) and lrs[1] == pytest.approx(5e-13) and lrs[2] == pytest.approx(2.5e-13)
    assert "learning rate" in validations[1].message
    assert result.stopped_early and result.steps_done == 6 and "stopped early" in records[-1].message


def test_cosine_schedule_warms_up_and_ends_at_min_lr(data):
    records = []
    run_training(train(small_model(), data, steps=40, lr=1e-3, min_lr=1e-5, val_every=20, device="cpu"),
                 records.append)
    lrs = [r.lr for r in records[1:]]  # the learning rate each step ran with
    assert lrs[0] < 1e-3 / 5 and max(lrs) == pytest.approx(1e-3, rel=0.05)
    assert lrs.index(max(lrs)) <= 3 and lrs[-1] < 1e-4  # warm-up over 5 %, then down to min_lr
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))  # a monotone decay after the warm-up


def test_time_budget_ends_the_run_and_keeps_the_best(data, tmp_path):
    records = []
    result = run_training(train(small_model(), data, time_budget_s=3.0, val_every=10, device="cpu",
                                checkpoint=tmp_path / "m.safetensors"), records.append)
    last = records[-1]
    assert 2.9 <= last.elapsed_s < 3.0 + 10 * max(r.elapsed_s for r in records[:2]) + 2  # within one validation period
    assert last.val_loss is not None and last.step == result.steps_done > 1  # validated at the end
    assert last.total_steps == last.step and last.eta_s == 0.0  # the plan, re-estimated, met the end
    mid = records[len(records) // 2]
    assert mid.eta_s == pytest.approx(3.0 - mid.elapsed_s, abs=0.05) and mid.total_steps >= mid.step
    assert last.lr < 0.2 * max(r.lr for r in records)  # the cosine ran with the clock
    assert not result.stopped_early and load_model(tmp_path / "m.safetensors").metadata["training"]["time_budget_s"] == 3.0


def test_fine_tuning_starts_from_the_given_weights(data):
    model = small_model()
    with torch.no_grad():
        model.head.bias.fill_(0.05)  # weights no initialisation would produce
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gen = train(model, data, steps=2, val_every=1, lr=1e-4, device="cpu", precision="fp32")
    first = next(gen)
    assert first.val_loss == pytest.approx(validation_loss(model, data), rel=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    run_training(gen)
    assert float(model.head.bias) == pytest.approx(0.05, abs=0.01)


def test_epochs_count_steps(data):
    records = []
    result = run_training(train(small_model(arch=UNet), data, epochs=2, steps_per_epoch=3, val_every=10,
                                device="cpu"), records.append)
    assert result.steps_done == 6 and records[-1].total_steps == 6
    assert [r.epoch for r in records] == [0, 1, 1, 1, 2, 2, 2]
    assert records[-1].val_loss is not None  # the last step always validates


def test_out_of_memory_becomes_a_clear_error(data, monkeypatch):
    model = small_model()

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    gen = train(model, data, steps=3, device="cpu", batch_size=6)
    next(gen)  # validation before training works
    monkeypatch.setattr(model, "forward", oom)
    with pytest.raises(RuntimeError, match="out of memory on cpu with batch size 6; try a smaller batch size"):
        next(gen)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give steps, epochs or time_budget_s"),
        ({"steps": 5, "epochs": 1}, "steps or epochs, not both"),
        ({"time_budget_s": 0.0}, "time_budget_s must be more than 0"),
        ({"steps": 5, "schedule": "linear"}, "schedule must be one of"),
        ({"steps": 0}, "at least 1"),
        ({"steps": 5, "batch_size": 0}, "batch_size"),
        ({"steps": 5, "lr": 0.0}, "lr"),
        ({"steps": 5, "metadata": {"bad": object()}}, "JSON"),
    ],
)
def test_bad_arguments_raise_at_once(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(small_model(), data, **kwargs)


def test_mismatched_field_or_alignment_raises(data):
    other = CGUNet(3, field_shape=(64, 96), base_channels=4)
    with pytest.raises(ValueError, match=r"\(64, 96\).*\(64, 64\).*fine-tune the bundled base model"):
        train(other, data, steps=1)
    deep = CGUNet(7, field_shape=FIELD, base_channels=2)  # alignment 64 > patch size 32
    with pytest.raises(ValueError, match="alignment"):
        train(deep, data, steps=1)
    field = gaussian_psf_field(FIELD)
    no_val = make_training_set(field, patch_size=32, n_specimens=1, n_val=0)
    with pytest.raises(ValueError, match="validation"):
        train(small_model(), no_val, steps=1)


def test_region_masks_and_regional_psnr():
    masks = region_masks((50, 80))
    assert masks["centre"][25, 40] and not masks["edge"][25, 40]
    assert masks["edge"][0, 0] and not masks["centre"][0, 0]
    assert not (masks["centre"] & masks["edge"]).any()
    truth = np.zeros((50, 80))
    pred = truth.copy()
    pred[masks["edge"]] = 0.1  # errors only at the edge
    values = regional_psnr(pred, truth, masks)
    assert values["centre"] == np.inf and values["edge"] == pytest.approx(20.0)
    assert psnr(pred, truth) > 20.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_cuda_with_bf16(data):
    model = small_model()
    records = []
    run_training(train(model, data, steps=4, val_every=2, device="cuda"), records.append)
    assert records[-1].device.startswith("cuda") and np.isfinite(records[-1].val_loss)
    assert next(model.parameters()).device.type == "cuda"
