"""Pretrained base models: a CG U-Net trained on many simulated lenses, to fine-tune from."""

from .base_models import DEFAULT_BASE, GATE_STARTS, base_model, base_model_path, find_base, registry

__all__ = ["DEFAULT_BASE", "GATE_STARTS", "base_model", "base_model_path", "find_base", "registry"]
