"""Pretrained base models: a CG U-Net trained on many simulated lenses, to fine-tune from."""

from .base_models import (
    DEFAULT_BASE, FINE_TUNE_LR, GATE_STARTS, SCRATCH_LR, base_model, base_model_path, find_base, registry,
)

__all__ = ["DEFAULT_BASE", "FINE_TUNE_LR", "GATE_STARTS", "SCRATCH_LR", "base_model", "base_model_path", "find_base",
           "registry"]
