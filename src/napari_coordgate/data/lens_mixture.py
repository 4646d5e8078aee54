"""Training data drawn from many instruments at once: the data of a base model.

A :class:`LensMixture` holds one :class:`~.training_set.TrainingSet` per PSF
field (all of the same field shape) and draws each patch of a batch from a
randomly chosen one, so one step sees several lenses, specimens and noise
levels. Its validation set pools the first validation images of its lenses.
:func:`~napari_coordgate.training.train` accepts it wherever it accepts a
``TrainingSet``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .training_set import TrainingSet, ValidationSet

__all__ = ["LensMixture"]


class LensMixture:
    """Batches whose patches come from several training sets (see the module notes).

    Parameters
    ----------
    sets : sequence of TrainingSet
        One per lens; the same field shape, patch size, alignment and percentiles.
    n_val_per_set : int
        Validation images taken from each set (pooled, in order).

    Attributes
    ----------
    sets : list of TrainingSet
    field_shape, patch_size, alignment, percentiles
        Those of every set.
    validation : ValidationSet
    psf_field : None
        There is no single field; ``summary()["psf_fields"]`` lists them.
    """

    def __init__(self, sets: Sequence[TrainingSet], n_val_per_set: int = 1) -> None:
        sets = list(sets)
        if not sets or not all(isinstance(s, TrainingSet) for s in sets):
            raise TypeError("a LensMixture needs one or more TrainingSet objects")
        first = sets[0]
        for name in ("field_shape", "patch_size", "alignment", "percentiles"):
            values = {tuple(np.atleast_1d(getattr(s, name))) for s in sets}
            if len(values) > 1:
                raise ValueError(f"the training sets of a LensMixture must share their {name}; got {sorted(values)}")
        self.sets = sets
        self.field_shape = first.field_shape
        self.patch_size, self.alignment, self.percentiles = first.patch_size, first.alignment, first.percentiles
        self.psf_field = None
        n = max(0, int(n_val_per_set))
        parts = [s.validation for s in sets if len(s.validation)]
        self.validation = ValidationSet(
            np.concatenate([v.blurred[:n] for v in parts]) if parts else np.zeros((0, *self.field_shape), np.float32),
            np.concatenate([v.sharp[:n] for v in parts]) if parts else np.zeros((0, *self.field_shape), np.float32),
            [scale for v in parts for scale in v.scales[:n]],
        )

    def sample_batch(self, batch_size: int, rng: np.random.Generator, *,
                     device: str | torch.device | None = None) -> tuple:
        """A batch of ``batch_size`` patches, each from a set drawn uniformly at random.

        Returns ``(blurred, sharp, offsets)`` as :meth:`TrainingSet.sample_batch` does.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        counts = rng.multinomial(batch_size, np.full(len(self.sets), 1.0 / len(self.sets)))
        parts = [s.sample_batch(int(c), rng, device=device) for s, c in zip(self.sets, counts) if c]
        return tuple(torch.cat(tensors) for tensors in zip(*parts))

    def summary(self) -> dict:
        """JSON-able description: the shared settings and each set's summary."""
        return {"lens_mixture": len(self.sets), "field_shape": list(self.field_shape), "patch_size": self.patch_size,
                "alignment": self.alignment, "percentiles": list(self.percentiles), "n_val": len(self.validation),
                "sets": [s.summary() for s in self.sets]}
