"""One torch thread count for every bead calibration, whoever runs it.

A calibration's fits sum over many pixels; torch splits such sums between
its threads, so the last bits of every objective and gradient depend on the
thread count, and an L-BFGS fit of dozens of parameters can carry such
differences into visibly different PSFs. The CLI runs torch with half the
cores by default, napari's worker threads and scripts with torch's default:
without a fixed count, the same slide and the same settings would give
slightly different calibrations in the dock, the CLI and the API. Every
calibration therefore runs its fits with :data:`CALIBRATION_THREADS`
threads (all the machine's cores: a calibration is worth them), and gives
the caller's count back afterwards.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["CALIBRATION_THREADS", "with_calibration_threads"]

#: torch threads of every calibration on this machine.
CALIBRATION_THREADS = max(1, os.cpu_count() or 1)

_F = TypeVar("_F", bound=Callable)


def with_calibration_threads(function: _F) -> _F:
    """Run ``function`` with :data:`CALIBRATION_THREADS` torch threads (in the calling thread), then restore."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        torch.set_num_threads(CALIBRATION_THREADS)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper
