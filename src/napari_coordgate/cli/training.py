"""Training from the command line: build a model, make its data, train it under a
step or wall-clock budget with a progress bar (shared by ``train`` and ``demo``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..pretrained.starting_model import START_FROM, build_named_model, starting_model
from .progress import progress_bar

__all__ = ["build_named_model", "starting_model", "train_model", "TrainedModel", "DEFAULT_STEPS", "START_FROM"]

#: Steps when neither ``steps`` nor ``minutes`` is given.
DEFAULT_STEPS = 2000


@dataclass
class TrainedModel:
    """A trained model (holding its best validation weights) and what to save with it."""

    model: object
    metadata: dict
    result: object | None
    training_set: object


def train_model(
    psf_field,
    *,
    arch: str = "cgunet",
    depth: int = 3,
    base_channels: int = 16,
    start_from: str = "auto",
    gates: str = "base",
    steps: int | None = None,
    minutes: float | None = None,
    batch_size: int = 8,
    lr: float | None = None,
    patch_size: int = 64,
    n_specimens: int = 16,
    n_val: int = 4,
    sharp_images=None,
    calibration_image=None,
    device: str = "auto",
    seed: int = 0,
    val_every: int = 25,
    quiet: bool = False,
    model=None,
    training_set=None,
    **train_options,
) -> TrainedModel:
    """Train a model for ``psf_field`` for ``steps`` steps or ``minutes`` of wall-clock time.

    With ``minutes``, training stops (keeping the best validated weights) when
    the time is up or after ``steps`` steps, whichever comes first, and the
    learning-rate schedule runs with the clock (``train(time_budget_s=...)``).
    The data set is built first and is not counted in the budget. ``start_from``
    is one of :data:`START_FROM` or a model file (see :func:`starting_model`);
    ``gates`` says how a base model's gates start. ``lr`` defaults to
    :data:`~napari_coordgate.pretrained.FINE_TUNE_LR` when the training starts
    from a shipped base, else :data:`~napari_coordgate.pretrained.SCRATCH_LR`.
    ``train_options`` go to
    :func:`~napari_coordgate.training.train` (e.g. ``early_stop_patience``).
    """
    import torch

    from ..data import make_training_set
    from ..training import train

    torch.manual_seed(seed)
    started_from = "the given model"
    if model is None:
        model, started_from = starting_model(start_from, arch, depth, base_channels, psf_field.field_shape, gates)
    if lr is None:
        from ..pretrained import FINE_TUNE_LR, SCRATCH_LR

        lr = FINE_TUNE_LR if started_from.startswith("the shipped base model") else SCRATCH_LR
    if training_set is None:
        training_set = make_training_set(psf_field, patch_size=patch_size, n_specimens=n_specimens, n_val=n_val,
                                         sharp_images=sharp_images, calibration_image=calibration_image, seed=seed)
    budget_s = None if minutes is None else 60.0 * float(minutes)
    planned = steps if steps is not None or budget_s is not None else DEFAULT_STEPS
    meta = {"psf_field": psf_field.summary()}
    gen = train(model, training_set, steps=planned, time_budget_s=budget_s, lr=lr, batch_size=batch_size,
                device=device, val_every=val_every, metadata=meta, seed=seed, preview=False, **train_options)
    last = best = None
    result = None
    t0 = time.perf_counter()
    by_time = planned is None
    total = int(math.ceil(budget_s)) if by_time else planned  # whole seconds: the bar shows "15/30 s", not floats
    with progress_bar("train", unit="s" if by_time else "step", total=total, quiet=quiet) as bar:
        try:
            while True:
                last = next(gen)
                if last.val_psnr is not None and last.is_best:
                    best = last
                bar.update_to(min(int(last.elapsed_s), total) if by_time else last.step, total)
                if last.val_psnr is not None:
                    bar.set_postfix(loss=f"{last.train_loss or 0:.2e}", val_psnr=f"{last.val_psnr:.2f}", refresh=False)
        except StopIteration as stop:
            result = stop.value
    elapsed = time.perf_counter() - t0
    if best is None:
        raise RuntimeError("training produced no validation result")
    m = result.best_metrics
    if result.stopped_early:
        stopped = "early stop"
    elif budget_s is not None and (steps is None or result.steps_done < steps):
        stopped = "time budget"
    else:
        stopped = "steps done"
    steps_done = result.steps_done
    summary = {
        "arch": model.arch, "depth": model.depth, "base_channels": model.base_channels, "started_from": started_from,
        "steps": steps_done, "best_step": best.step, "stopped_by": stopped, "elapsed_s": round(elapsed, 2),
        "batch_size": batch_size, "patch_size": training_set.patch_size, "lr": lr, "device": best.device, "seed": seed,
        "input_psnr": best.input_psnr, "input_ssim": best.input_ssim, "noise": training_set.summary()["noise"],
        **{k: m.get(k) for k in ("val_loss", "val_psnr", "val_ssim", "val_psnr_centre", "val_psnr_edge")},
    }
    model.eval()
    return TrainedModel(model=model, metadata={**meta, "training": summary}, result=result, training_set=training_set)
