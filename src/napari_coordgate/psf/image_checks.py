"""Validation shared by the calibration routines."""

from __future__ import annotations

import numpy as np

__all__ = ["as_real_image"]


def as_real_image(array, name: str) -> np.ndarray:
    """Check that ``array`` is a finite, real 2D image and return it as float64.

    ``name`` names the image in the error messages (e.g. ``"bead"``, ``"sharp"``).

    Raises
    ------
    ValueError
        Not 2D, not real numbers, or NaN / infinite values.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"the {name} image must be 2D (a 2D image is required for calibration); got an array of shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"the {name} image must hold real numbers; got dtype {array.dtype}")
    image = array.astype(np.float64)
    if not np.all(np.isfinite(image)):
        raise ValueError(f"the {name} image contains NaN or infinite values")
    return image
