"""Robust intensity normalisation used on the way into and out of a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_PERCENTILES", "IntensityScale"]

#: Percentiles of the input mapped to 0 and 1 unless a model says otherwise.
DEFAULT_PERCENTILES = (1.0, 99.8)


@dataclass(frozen=True)
class IntensityScale:
    """An affine map ``normalised = (raw - low) / (high - low)`` and its inverse.

    Attributes
    ----------
    low, high : float
        Raw intensities that map to 0 and 1.
    """

    low: float
    high: float

    @classmethod
    def from_percentiles(
        cls, image: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES
    ) -> IntensityScale:
        """Scale taking the ``percentiles`` of ``image`` to 0 and 1.

        A flat image (no spread between the percentiles) gets a unit range, so
        it passes through unchanged up to its offset.
        """
        image = np.asarray(image)
        if image.dtype == bool:
            image = image.view(np.uint8)
        low, high = np.percentile(image, list(percentiles))
        low, high = float(low), float(high)
        if not high > low:
            high = low + 1.0
        return cls(low, high)

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """Raw to normalised, as float32."""
        return ((np.asarray(image, dtype=np.float32) - self.low) / (self.high - self.low)).astype(np.float32, copy=False)

    def denormalize(self, image: np.ndarray) -> np.ndarray:
        """Normalised to raw intensity units, as float32."""
        return (np.asarray(image, dtype=np.float32) * (self.high - self.low) + self.low).astype(np.float32, copy=False)
