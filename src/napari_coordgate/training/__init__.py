"""Training and fine-tuning: the progress-yielding training loop and its metrics."""

from .metrics import psnr, region_masks, regional_psnr, ssim
from .progress import TrainingProgress, TrainingResult, run_training
from .train import train

__all__ = [
    "train",
    "run_training",
    "TrainingProgress",
    "TrainingResult",
    "psnr",
    "ssim",
    "region_masks",
    "regional_psnr",
]
