"""Validation shared by the calibration routines."""

from __future__ import annotations

import numpy as np

__all__ = ["as_real_image", "checked_psf_size"]


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


def checked_psf_size(psf_size, largest: int, shape) -> int:
    """A user's kernel size as an int: odd, at least 3 and at most ``largest`` for an image of ``shape``.

    Raises
    ------
    ValueError
        Naming the size and, when it is too large, the image shape.
    """
    if not float(psf_size).is_integer() or int(psf_size) < 3 or int(psf_size) % 2 == 0:
        raise ValueError(f"psf_size must be an odd integer of at least 3; got {psf_size}")
    if int(psf_size) > largest:
        raise ValueError(f"image of shape {tuple(shape)} is too small for a PSF size of {psf_size} (at most {largest})")
    return int(psf_size)
