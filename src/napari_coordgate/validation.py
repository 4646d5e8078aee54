"""Checks of what a user passes in, one function per kind of input.

Every public function of the package checks its inputs here, at the
boundary, before any work starts. Each check returns the value in its
working form (a float, a tuple of ints, an ndarray) or raises a
``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong
value) whose message names the input, says what was wrong and what to do.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["number", "integer", "int_pair", "check_offset", "check_intensity_range", "check_percentiles", "check_image",
           "FLOAT32_MAX"]

#: Largest magnitude the network's float32 arithmetic can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Largest intensity accepted: normalising and restoring must not overflow float32 on the way.
_SAFE_MAX = FLOAT32_MAX / 1e6


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within ``[low, high]`` (ends open where asked), as float.

    Raises
    ------
    TypeError
        Not a real number (a string, None, a complex, an array, a bool).
    ValueError
        NaN, infinite, or out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise ValueError(f"{name} must be {_limits(low, high, low_open, high_open)}, got {value:g}")
    return value


def _limits(low, high, low_open=False, high_open=False) -> str:
    left = None if low is None else f"{'more than' if low_open else 'at least'} {low:g}"
    right = None if high is None else f"{'less than' if high_open else 'at most'} {high:g}"
    if left and right and not (low_open or high_open):
        return f"between {low:g} and {high:g}"
    return " and ".join(p for p in (left, right) if p)


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number within ``[low, high]``, as int (``3.0`` is accepted, ``3.5`` is not).

    Raises
    ------
    TypeError
        Not a number.
    ValueError
        Not whole, or out of range.
    """
    as_float = number(name, value)
    if as_float != int(as_float):
        raise ValueError(f"{name} must be a whole number, got {as_float:g}")
    value = int(as_float)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {_limits(low, high)}, got {value}")
    return value


def _pair(name: str, value, what: str) -> Sequence:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be two numbers {what}, got {_describe(value)}")
    if len(value) != 2:
        raise ValueError(f"{name} must be two numbers {what}, got {len(value)}: {_describe(value)}")
    return value


def int_pair(name: str, value, *, low: int | None = None, high: int | None = None) -> tuple[int, int]:
    """Two whole numbers ``(y, x)`` within ``[low, high]`` (a shape, a grid, a position)."""
    y, x = _pair(name, value, "(y, x)")
    return integer(f"{name} y", y, low=low, high=high), integer(f"{name} x", x, low=low, high=high)


def check_offset(offset, name: str = "offset") -> tuple[int, int]:
    """An image's ``(y, x)`` position in a field: two whole numbers (whether it fits is checked by the caller)."""
    return int_pair(name, offset)


def check_intensity_range(value, name: str = "intensity_range") -> tuple[float, float]:
    """``(low, high)`` raw intensities: finite, ``low < high``, with a spread float32 can divide by."""
    low, high = _pair(name, value, "(low, high)")
    low, high = number(f"{name} low", low), number(f"{name} high", high)
    if not low < high:
        raise ValueError(f"{name} must have low < high (the intensities mapped to 0 and 1), got ({low:g}, {high:g})")
    spread = high - low
    if max(abs(low), abs(high), spread) > _SAFE_MAX or spread < 1 / _SAFE_MAX:
        raise ValueError(f"{name} ({low:g}, {high:g}) is outside what float32 arithmetic can hold; rescale the image")
    return low, high


def check_percentiles(value, name: str = "percentiles") -> tuple[float, float]:
    """Normalisation percentiles ``(low, high)`` with ``0 <= low < high <= 100``."""
    low, high = _pair(name, value, "(low, high)")
    low = number(f"{name} low", low, low=0.0, high=100.0)
    high = number(f"{name} high", high, low=0.0, high=100.0)
    if not low < high:
        raise ValueError(f"{name} must have low < high, got ({low:g}, {high:g})")
    return low, high


def check_image(image, name: str = "image") -> np.ndarray:
    """A real image with Y and X last, finite in float32; returned as an ndarray (no copy).

    Raises
    ------
    TypeError
        Complex or non-numeric data.
    ValueError
        Fewer than 2 dimensions, no pixels, an RGB(A) colour axis last,
        NaN/inf, or values beyond the float32 range.
    """
    arr = np.asarray(image)
    if np.iscomplexobj(arr):
        raise TypeError(f"complex {name}s are not supported; pass the magnitude or the real part")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must be at least 2D (Y, X), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and min(arr.shape[:2]) > 4:
        raise ValueError(
            f"{name} of shape {arr.shape} looks like RGB(A) with colour last; "
            "choose one channel (e.g. image[..., 0]) or put channels first"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values; replace them (e.g. numpy.nan_to_num) first")
        if arr.dtype.itemsize >= 4:
            peak = float(np.abs(arr).max())
            if peak > _SAFE_MAX:
                raise ValueError(f"{name} values reach {peak:.3g}, beyond the float32 range the network computes in; "
                                 "rescale the image (e.g. divide it by its maximum)")
    return arr
