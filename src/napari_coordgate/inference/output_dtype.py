"""The dtype a deblurred image is returned or written in.

The network computes in float32. Users who keep their data as 8- or 16-bit
integers want the result in the same dtype: that means rounding and
*saturating* (a value above 65535 becomes 65535, never wraps to a small one),
and knowing how many pixels were clipped, because deblurring restores peaks
that can exceed the input's range.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OutputCast", "output_dtype_for", "OUTPUT_DTYPES"]

#: The choices offered in the widget and the CLI (besides any NumPy dtype name).
OUTPUT_DTYPES = ("float32", "input", "uint8", "uint16", "int16", "float64")


def output_dtype_for(choice, input_dtype) -> np.dtype:
    """The output dtype for a user's choice.

    Parameters
    ----------
    choice : None, "input" or dtype-like
        ``None`` (float32, the default), ``"input"`` (the input's dtype:
        integers are rounded and saturated; a float input keeps its float
        type; a boolean input gives uint8) or any real NumPy dtype.
    input_dtype : dtype-like
        The dtype of the image being deblurred.

    Raises
    ------
    ValueError
        Not a dtype, or not a real-number dtype.
    """
    if choice is None:
        return np.dtype(np.float32)
    if isinstance(choice, str) and choice.lower() == "input":
        dtype = np.dtype(input_dtype)
        return np.dtype(np.uint8) if dtype.kind == "b" else dtype
    try:
        dtype = np.dtype(choice)
    except TypeError:
        raise ValueError(f"output dtype {choice!r} is not a NumPy dtype; use 'input', float32, uint16, ...") from None
    if dtype.kind not in "iuf" or dtype.itemsize < 1 or (dtype.kind == "f" and dtype.itemsize < 4):
        raise ValueError(f"output dtype {dtype} is not supported; use 'input', float32, float64 or an integer dtype")
    return dtype


@dataclass
class OutputCast:
    """Casts float32 results to ``dtype``, counting the pixels clipped.

    Calling it on an array returns the cast array; for integer dtypes values
    are rounded to the nearest integer and saturated at the dtype's limits.
    The counts accumulate over calls (it is safe to call from several threads),
    so one ``OutputCast`` can convert a whole image band by band.

    Attributes
    ----------
    dtype : numpy.dtype
        The output dtype.
    clipped_low, clipped_high : int
        Pixels that were below the dtype's minimum / above its maximum.
    total : int
        Pixels converted.
    """

    dtype: np.dtype
    clipped_low: int = 0
    clipped_high: int = 0
    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)

    @classmethod
    def for_input(cls, choice, input_dtype) -> OutputCast:
        """The cast for a user's ``choice`` (see :func:`output_dtype_for`)."""
        return cls(output_dtype_for(choice, input_dtype))

    @property
    def clipped(self) -> int:
        """Pixels clipped at either end."""
        return self.clipped_low + self.clipped_high

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if self.dtype.kind == "f":
            out = image.astype(self.dtype, copy=False)
            low = high = 0
        else:
            info = np.iinfo(self.dtype)
            rounded = np.rint(image)
            low = int(np.count_nonzero(rounded < info.min))
            high = int(np.count_nonzero(rounded > info.max))
            out = np.clip(rounded, info.min, info.max).astype(self.dtype)
        with self._lock:
            self.clipped_low += low
            self.clipped_high += high
            self.total += int(image.size)
        return out

    def report(self) -> str:
        """One line for the user, e.g. ``"uint16: 12 pixels (0.001%) clipped: 0 below 0, 12 above 65535"``."""
        if self.dtype.kind == "f":
            return f"{self.dtype}: no clipping"
        info = np.iinfo(self.dtype)
        share = 100.0 * self.clipped / self.total if self.total else 0.0
        return (f"{self.dtype}: {self.clipped:,} pixels ({share:.3g}%) clipped: {self.clipped_low:,} below {info.min}, "
                f"{self.clipped_high:,} above {info.max}")
