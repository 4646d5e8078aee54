"""The training loop: a generator that yields a progress record after every step.

``train()`` validates its arguments at once and returns a generator; iterate
it to train (a napari worker does, to show progress live), ``close()`` it to
stop. Whatever ends the loop (the last step, an early stop, ``close()``, an
exception), the model is left holding the best weights seen by validation,
and the checkpoint file, if any, holds the same weights.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.lens_mixture import LensMixture
from ..data.training_set import TrainingSet
from ..device import describe_device, resolve_device
from ..model_files import save_model
from ..models.unet import UNet
from ..precision import compute_mode
from ..validation import integer, number
from .metrics import psnr, region_masks, regional_psnr, ssim
from .progress import TrainingProgress, TrainingResult

__all__ = ["train", "TrainConfig", "TrainingRun", "validation_scores"]

_PREVIEW_SIDE = 256
_REL_IMPROVEMENT = 1e-4  # a validation loss must drop by this fraction to count as better


#: Largest batch, and most pixels in one batch (a step's activations must fit in memory).
MAX_BATCH_SIZE = 1024
MAX_BATCH_PIXELS = 1 << 24
#: Learning-rate schedules of :func:`train`.
SCHEDULES = ("cosine", "plateau")
#: Share of the run spent warming the learning rate up (cosine schedule).
_WARMUP = 0.05


def scheduled_lr(progress: float, lr: float, min_lr: float) -> float:
    """The cosine schedule: linear warm-up to ``lr`` over the first 5 %, then a cosine down to ``min_lr`` at 1."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < _WARMUP:
        return lr * max(progress / _WARMUP, 0.02)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (progress - _WARMUP) / (1 - _WARMUP)))


def train(
    model: UNet,
    data: TrainingSet,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    time_budget_s: float | None = None,
    steps_per_epoch: int = 100,
    lr: float = 1e-3,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    val_every: int = 25,
    schedule: str = "cosine",
    plateau_patience: int = 4,
    lr_factor: float = 0.5,
    early_stop_patience: int | None = None,
    min_lr: float = 1e-6,
    checkpoint: str | Path | None = None,
    metadata: dict | None = None,
    precision: str = "auto",
    seed: int = 0,
    preview: bool = True,
) -> Generator[TrainingProgress, None, TrainingResult]:
    """Train (or fine-tune) a model on a training set with Adam and an MSE loss.

    Parameters
    ----------
    model : UNet, CGUNet or CoordConvUNet
        Trained from its current weights (fine-tuning needs nothing more).
    data : TrainingSet or LensMixture
        From :func:`~napari_coordgate.data.make_training_set` (or several of
        them pooled, for a base model); its field must be the model's and it
        must have validation images.
    steps, epochs : int
        At most one; ``epochs`` means ``epochs * steps_per_epoch`` steps.
    time_budget_s : float, optional
        Wall-clock budget in seconds: training ends when it is spent (or at
        ``steps``, whichever comes first). Give ``steps``, ``epochs`` or this.
    steps_per_epoch : int
        Steps per epoch (patches are drawn endlessly; an epoch is a count).
    lr : float
        Initial Adam learning rate.
    batch_size : int
        Patches per step.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU) or an explicit device.
    val_every : int
        Validate on the validation images (whole fields, or crops of a large field) every this many steps
        (and at the last step).
    schedule : {"cosine", "plateau"}
        ``"cosine"``: a linear warm-up over the first 5 % of the run, then a
        cosine decay from ``lr`` to ``min_lr`` that ends with the run. The run's
        progress is the fraction of the steps done or of the time budget spent
        (whichever is further), so with a time budget the schedule follows the
        measured speed. ``"plateau"``: multiply the learning rate by
        ``lr_factor`` (not below ``min_lr``) after ``plateau_patience``
        validations without improvement.
    plateau_patience, lr_factor
        For ``schedule="plateau"``.
    min_lr : float
        The learning rate at the end of the cosine, or the plateau schedule's floor.
    early_stop_patience : int, optional
        Stop after this many validations without improvement (off by default:
        a schedule that ends with the run uses the whole budget).
    checkpoint : path, optional
        Where to save the best model (atomically, at every new best).
    metadata : dict, optional
        JSON-able extras saved in the checkpoint next to a ``training`` summary.
    precision : {"auto", "bf16", "fp32"}
        ``"auto"``: bf16 autocast with channels_last where the device computes
        bf16 natively (CUDA, CPUs with AVX-512 BF16 or AMX), else float32
        (see :mod:`napari_coordgate.precision`). The loss is always float32.
    seed : int
        Seeds the patch sampling.
    preview : bool
        Attach a small deblurred validation image to validation records.

    Returns
    -------
    generator
        Yields :class:`TrainingProgress`; returns a :class:`TrainingResult`.

    Raises
    ------
    ValueError
        Immediately, for inconsistent arguments. ``RuntimeError`` while
        iterating if the device runs out of memory or the loss diverges.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"model must be a napari_coordgate model, got {type(model).__name__}")
    if not isinstance(data, (TrainingSet, LensMixture)):
        raise TypeError(f"data must be a TrainingSet (see make_training_set), got {type(data).__name__}")
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if steps is None and epochs is None and time_budget_s is None:
        raise ValueError("give steps, epochs or time_budget_s: how long to train")
    steps_per_epoch = integer("steps_per_epoch", steps_per_epoch, low=1)
    if steps is not None:
        total = integer("steps", steps, low=1)
    elif epochs is not None:
        total = integer("epochs", epochs, low=1) * steps_per_epoch
    else:
        total = None
    if time_budget_s is not None:
        time_budget_s = number("time_budget_s", time_budget_s, low=0, high=7 * 24 * 3600, low_open=True)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")
    batch_size = integer("batch_size", batch_size, low=1, high=MAX_BATCH_SIZE)
    if batch_size * data.patch_size**2 > MAX_BATCH_PIXELS:
        raise ValueError(
            f"a batch of {batch_size} patches of {data.patch_size}x{data.patch_size} px is more than a training step "
            f"holds in memory ({MAX_BATCH_PIXELS / 2**20:.0f} Mpx); use batch_size <= "
            f"{MAX_BATCH_PIXELS // data.patch_size**2} or smaller patches"
        )
    val_every = integer("val_every", val_every, low=1)
    plateau_patience = integer("plateau_patience", plateau_patience, low=1)
    if early_stop_patience is not None:
        early_stop_patience = integer("early_stop_patience", early_stop_patience, low=1)
    lr = number("lr", lr, low=0, high=1, low_open=True)
    lr_factor = number("lr_factor", lr_factor, low=0, high=1, low_open=True, high_open=True)
    min_lr = number("min_lr", min_lr, low=0, high=lr)
    seed = integer("seed", seed)
    if model.field_shape is not None and tuple(model.field_shape) != tuple(data.field_shape):
        raise ValueError(f"the model's field_shape {tuple(model.field_shape)} differs from the training "
                         f"data's field_shape {tuple(data.field_shape)}: a model's gates are made for one field, "
                         "so fine-tune the bundled base model (it adapts to any field) or train from scratch on "
                         "this calibration, or calibrate on images of the model's field size")
    if data.patch_size % model.alignment or data.alignment % model.alignment:
        raise ValueError(f"patch_size ({data.patch_size}) and the data alignment ({data.alignment}) must be "
                         f"multiples of the model's alignment ({model.alignment})")
    if tuple(model.percentiles) != tuple(data.percentiles):
        raise ValueError(f"the model normalises with percentiles {model.percentiles}, "
                         f"the data with {data.percentiles}")
    if len(data.validation) == 0:
        raise ValueError("the training set has no validation images (n_val=0); training needs at least one")
    try:
        json.dumps(metadata or {})
    except TypeError as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from None
    reserved = {"model", "path", "training"} & set(metadata or {})
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are reserved")
    config = TrainConfig(total=total, budget_s=time_budget_s, steps_per_epoch=steps_per_epoch, lr=lr,
                         batch_size=batch_size, val_every=val_every, schedule=schedule,
                         plateau_patience=plateau_patience, lr_factor=lr_factor,
                         early_stop_patience=early_stop_patience, min_lr=min_lr, seed=seed, preview=bool(preview))
    path = Path(checkpoint) if checkpoint is not None else None
    mode = compute_mode(resolve_device(device), precision)
    return _lazy_run(model, data, mode, config, path, dict(metadata or {}))


def _lazy_run(*args) -> Generator[TrainingProgress, None, TrainingResult]:
    """The generator :func:`train` returns: the run is set up (and the model touched) only once it is iterated,
    on the thread that iterates it."""
    return (yield from TrainingRun(*args).run())


def _oom_error(err: RuntimeError, dev: torch.device, what: str) -> RuntimeError | None:
    if isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower():
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return RuntimeError(f"out of memory on {dev.type} {what}")
    return None


def _regions(pred: np.ndarray, truth: np.ndarray, masks: dict, offsets) -> dict:
    """PSNR in the field's centre and edge regions of validation images at ``offsets`` (whole fields or crops)."""
    h, w = pred.shape[-2:]
    if all(tuple(o) == (0, 0) for o in offsets) and next(iter(masks.values())).shape == (h, w):
        return regional_psnr(pred, truth, masks)
    out = {}
    for name, mask in masks.items():
        values = []
        for p, t, (oy, ox) in zip(pred, truth, offsets):
            crop = mask[oy : oy + h, ox : ox + w]
            if crop.any():
                values.append(regional_psnr(p, t, {name: crop})[name])
        out[name] = float(np.mean(values)) if values else float("nan")
    return out


def validation_scores(model: UNet, data, mode, masks: dict, want_preview: bool) -> dict:
    """Deblur each validation image (a whole field, or a crop at its offset) and score it."""
    model.eval()
    preds = []
    val = data.validation
    with torch.inference_mode(), mode.autocast():
        for image, offset in zip(val.blurred, val.offsets):
            x = mode.prepare_input(torch.from_numpy(image[None, None]))
            preds.append(model(x, tuple(offset)).float()[0, 0].cpu().numpy())
    pred, truth = np.stack(preds), val.sharp
    regions = _regions(pred, truth, masks, val.offsets)
    out = {"val_loss": float(np.mean((pred - truth) ** 2)), "val_psnr": psnr(pred, truth),
           "val_ssim": ssim(pred, truth), "val_psnr_centre": regions["centre"], "val_psnr_edge": regions["edge"]}
    if want_preview:
        stride = max(1, math.ceil(max(pred.shape[-2:]) / _PREVIEW_SIDE))
        out["preview"] = np.ascontiguousarray(pred[0, ::stride, ::stride])
    return out


@dataclass(frozen=True)
class TrainConfig:
    """The checked settings of one training run (see :func:`train` for each)."""

    total: int | None  # steps, or None for a time budget alone
    budget_s: float | None
    steps_per_epoch: int
    lr: float
    batch_size: int
    val_every: int
    schedule: str
    plateau_patience: int
    lr_factor: float
    early_stop_patience: int | None
    min_lr: float
    seed: int
    preview: bool


class TrainingRun:
    """One run of the training loop, in named stages: :meth:`train_step`, :meth:`validate`, :meth:`record`,
    driven by :meth:`run` (the generator :func:`train` returns).

    The state a run keeps (the step, the best weights, the validations
    without improvement, the history) lives on the object.
    """

    def __init__(self, model: UNet, data, mode, config: TrainConfig, path: Path | None, metadata: dict) -> None:
        self.model, self.data, self.mode, self.config = model, data, mode, config
        self.path, self.metadata = path, metadata
        self.device = mode.device
        self.description = f"{describe_device(self.device)}, {mode.describe()}"
        self.rng = np.random.default_rng(config.seed)
        self.masks = region_masks(data.field_shape)
        val = data.validation
        in_regions = _regions(val.blurred, val.sharp, self.masks, val.offsets)
        self.inputs = dict(input_psnr=psnr(val.blurred, val.sharp), input_ssim=ssim(val.blurred, val.sharp),
                           input_psnr_centre=in_regions["centre"], input_psnr_edge=in_regions["edge"])
        mode.prepare_model(model)
        first_lr = scheduled_lr(0.0, config.lr, config.min_lr) if config.schedule == "cosine" else config.lr
        self.optimizer = torch.optim.Adam(model.parameters(), lr=first_lr)
        self.best_state: dict | None = None
        self.best_loss, self.best_step, self.best_metrics = math.inf, 0, {}
        self.history: list[dict] = []
        self.stale = self.plateau = 0  # validations without improvement: in all, and since the last lr drop
        self.stopped_early = False
        self.step = 0
        self.start = time.perf_counter()
        self.step_times: deque[float] = deque(maxlen=20)
        self.losses_since_val: list[float] = []

    # -- where the run is ---------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def progress(self) -> float:
        """Fraction of the run done: of the steps, or of the time budget, whichever is further."""
        c = self.config
        done = self.step / c.total if c.total else 0.0
        if c.budget_s is not None:
            done = max(done, (time.perf_counter() - self.start) / c.budget_s)
        return min(done, 1.0)

    def planned_steps(self) -> int:
        """The steps the run will take (re-estimated from the measured speed under a time budget)."""
        c, step = self.config, self.step
        if c.budget_s is None:
            return c.total
        fraction = self.progress()
        estimate = round(step / fraction) if step and fraction > 0 else step + 1
        return min(max(estimate, step), c.total) if c.total else max(estimate, step)

    def is_last_step(self) -> bool:
        c = self.config
        return (c.total is not None and self.step >= c.total) or (c.budget_s is not None and self.progress() >= 1.0)

    # -- the stages -----------------------------------------------------------------------
    def train_step(self) -> float:
        """One optimisation step on a fresh batch; returns its loss."""
        c, dev, mode = self.config, self.device, self.mode
        t0 = time.perf_counter()
        if c.schedule == "cosine":  # the rate for the progress made before this step
            self.set_lr(scheduled_lr(self.progress(), c.lr, c.min_lr))
        self.step += 1
        self.model.train()
        try:
            if dev.type == "cuda":
                blurred, sharp, offsets = self.data.sample_batch(c.batch_size, self.rng, device=dev)
            else:
                blurred, sharp, offsets = (t.to(dev) for t in self.data.sample_batch(c.batch_size, self.rng))
            blurred = mode.prepare_input(blurred)
            with mode.autocast():
                pred = self.model(blurred, offsets)
            loss = F.mse_loss(pred.float(), sharp)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            train_loss = float(loss.item())
        except RuntimeError as err:
            oom = _oom_error(err, dev, f"with batch size {c.batch_size}; try a smaller batch size or patch size")
            if oom is None:
                raise
            raise oom from None
        if not math.isfinite(train_loss):
            raise RuntimeError(f"training diverged at step {self.step} (loss {train_loss}); try a lower learning rate")
        self.step_times.append(time.perf_counter() - t0)
        self.losses_since_val.append(train_loss)
        return train_loss

    def validate(self) -> tuple[dict, bool, str]:
        """Score the validation images; keep (and save) the best weights; lower the rate on a plateau.

        Returns the metrics, whether they are the best so far, and a message for the record.
        """
        c = self.config
        try:
            metrics = validation_scores(self.model, self.data, self.mode, self.masks, c.preview)
        except RuntimeError as err:
            oom = _oom_error(err, self.device, f"while validating on {self.data.validation.blurred.shape[-2:]} images; "
                                               "use the CPU or fewer validation images")
            if oom is None:
                raise
            raise oom from None
        improved = metrics["val_loss"] < self.best_loss * (1 - _REL_IMPROVEMENT) or self.best_state is None
        message = ""
        if improved:
            self.best_loss, self.best_step, self.best_metrics = metrics["val_loss"], self.step, metrics
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self.stale = self.plateau = 0
            if self.path is not None:
                save_model(self.model, self.path, **{**self.metadata, "training": self.summary()})
        else:
            self.stale, self.plateau = self.stale + 1, self.plateau + 1
            current = self.lr
            if c.schedule == "plateau" and self.plateau >= c.plateau_patience and current > c.min_lr:
                new_lr = max(current * c.lr_factor, c.min_lr)
                self.set_lr(new_lr)
                self.plateau = 0
                message = (f"no improvement for {c.plateau_patience} validations: "
                           f"learning rate {current:.3g} -> {new_lr:.3g}")
        mean_loss = float(np.mean(self.losses_since_val)) if self.losses_since_val else None
        self.losses_since_val.clear()
        self.history.append({"step": self.step, "train_loss": mean_loss, "lr": self.lr,
                             "elapsed_s": time.perf_counter() - self.start, "is_best": improved,
                             **{k: v for k, v in metrics.items() if k != "preview"}})
        return metrics, improved, message

    def record(self, train_loss, metrics=None, is_best=False, message="") -> TrainingProgress:
        """The progress record of the step just done."""
        c, step = self.config, self.step
        elapsed = time.perf_counter() - self.start
        rate = c.batch_size * len(self.step_times) / sum(self.step_times) if self.step_times else 0.0
        planned = self.planned_steps()
        if c.budget_s is not None and (c.total is None or self.progress() >= step / c.total):
            eta = max(c.budget_s - elapsed, 0.0)
        else:
            eta = elapsed / step * (planned - step) if step else 0.0
        return TrainingProgress(step=step, total_steps=planned, epoch=math.ceil(step / c.steps_per_epoch),
                                train_loss=train_loss, lr=self.lr, elapsed_s=elapsed, samples_per_s=rate, eta_s=eta,
                                device=self.description, **self.inputs, is_best=is_best, message=message,
                                **dict(metrics or {}))

    def summary(self) -> dict:
        """What a checkpoint records of the training."""
        c = self.config
        return {"steps_done": self.step, "steps_planned": self.planned_steps(), "time_budget_s": c.budget_s,
                "schedule": c.schedule, "best_step": self.best_step, "best_val_loss": self.best_loss,
                "metrics": {k: v for k, v in self.best_metrics.items() if k != "preview"}, **self.inputs,
                "batch_size": c.batch_size, "lr_initial": c.lr, "device": self.description,
                "data": self.data.summary(), "calibration_kind": getattr(self.data.psf_field, "kind", None)}

    def result(self) -> TrainingResult:
        return TrainingResult(best_state_dict=self.best_state, best_step=self.best_step, best_val_loss=self.best_loss,
                              best_metrics={k: v for k, v in self.best_metrics.items() if k != "preview"},
                              history=self.history, device=self.description, stopped_early=self.stopped_early,
                              checkpoint=self.path, steps_done=self.step)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> Generator[TrainingProgress, None, TrainingResult]:
        """Validate, then train step by step (validating every ``val_every`` steps and at the last), yielding a
        record after each; whatever ends it, the model is left with the best weights seen."""
        c = self.config
        try:
            metrics, _, _ = self.validate()
            yield self.record(None, metrics, True, "validation before training")
            while True:
                train_loss = self.train_step()
                last = self.is_last_step()
                if self.step % c.val_every and not last:
                    yield self.record(train_loss)
                    continue
                metrics, improved, message = self.validate()
                if last:
                    yield self.record(train_loss, metrics, improved, message)
                    break
                if c.early_stop_patience is not None and self.stale >= c.early_stop_patience:
                    self.stopped_early = True
                    message = f"stopped early: no improvement for {c.early_stop_patience} validations"
                yield self.record(train_loss, metrics, improved, message)
                if self.stopped_early:
                    break
        finally:
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)
            self.model.eval()
        return self.result()
