"""Comparisons of PSFs shared by the calibration tests."""

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of the same shape."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def central(kernel: np.ndarray, size: int) -> np.ndarray:
    """The central ``size x size`` part of an odd kernel."""
    c, h = kernel.shape[0] // 2, size // 2
    return kernel[c - h : c + h + 1, c - h : c + h + 1]
