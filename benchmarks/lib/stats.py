"""Paired statistics over the same test images."""

from __future__ import annotations

import numpy as np


def paired_difference(a, b) -> tuple[float, float]:
    """Mean and standard error of the per-image difference ``a - b`` (two lists over the same images)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
