"""The records of a training run: progress after each step, and the final result."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._generators import drive

__all__ = ["TrainingProgress", "TrainingResult", "run_training"]


@dataclass
class TrainingProgress:
    """One record yielded by :func:`train` (after every step, and at step 0).

    Validation fields (``val_*``, ``preview``) are None except on validation
    steps; ``input_*`` compare the blurred validation input with the truth.
    PSNR in dB and SSIM on normalised images (data range 1).
    """

    step: int
    total_steps: int
    epoch: int
    train_loss: float | None
    lr: float
    elapsed_s: float
    samples_per_s: float
    eta_s: float
    device: str
    input_psnr: float
    input_ssim: float
    input_psnr_centre: float
    input_psnr_edge: float
    val_loss: float | None = None
    val_psnr: float | None = None
    val_ssim: float | None = None
    val_psnr_centre: float | None = None
    val_psnr_edge: float | None = None
    is_best: bool = False
    message: str = ""
    preview: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """The record without the preview image (JSON-able)."""
        record = asdict(self)
        record.pop("preview")
        return record


@dataclass
class TrainingResult:
    """What :func:`train` returns (the generator's ``StopIteration.value``)."""

    best_state_dict: dict[str, torch.Tensor]
    best_step: int
    best_val_loss: float
    best_metrics: dict
    history: list[dict]
    device: str
    stopped_early: bool
    checkpoint: Path | None
    steps_done: int = 0


def run_training(gen: Generator[TrainingProgress, None, TrainingResult],
                 callback: Callable[[TrainingProgress], None] | None = None) -> TrainingResult:
    """Drive a :func:`train` generator to the end, calling ``callback`` on each record."""
    return drive(gen, callback)
