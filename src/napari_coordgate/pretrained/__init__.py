"""Pretrained base models: a CG U-Net trained on many simulated lenses, to fine-tune from, and the choice of
the model a training starts from (:mod:`.starting_model`)."""

from .base_models import (
    DEFAULT_BASE, FINE_TUNE_LR, GATE_STARTS, SCRATCH_LR, base_model, base_model_path, find_base, registry,
)
from .starting_model import ARCHITECTURES, START_FROM, build_named_model, starting_model

__all__ = ["DEFAULT_BASE", "FINE_TUNE_LR", "GATE_STARTS", "SCRATCH_LR", "base_model", "base_model_path", "find_base",
           "registry", "ARCHITECTURES", "START_FROM", "build_named_model", "starting_model"]
