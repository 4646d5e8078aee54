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
the caller's count back afterwards. A count the user chose explicitly (the
CLI's ``--threads``) is kept with :func:`calibration_threads`; with it the
last bits may differ from the default's. Give fewer threads on a machine
busy with other work: torch's threads wait for each other by spinning, and
with more threads than free cores a fit can run many times slower.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch

__all__ = ["CALIBRATION_THREADS", "calibration_threads", "with_calibration_threads"]

#: torch threads of every calibration on this machine (unless :func:`calibration_threads` says otherwise).
CALIBRATION_THREADS = max(1, os.cpu_count() or 1)
_CHOSEN: ContextVar[int | None] = ContextVar("napari_coordgate_calibration_threads", default=None)


@contextmanager
def calibration_threads(n: int | None) -> Iterator[None]:
    """Calibrations in this block fit with ``n`` torch threads (None: :data:`CALIBRATION_THREADS`)."""
    token = _CHOSEN.set(None if n is None else max(1, int(n)))
    try:
        yield
    finally:
        _CHOSEN.reset(token)

_F = TypeVar("_F", bound=Callable)


def with_calibration_threads(function: _F) -> _F:
    """Run ``function`` with the calibration's torch threads (in the calling thread), then restore the caller's."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        chosen = _CHOSEN.get()
        torch.set_num_threads(CALIBRATION_THREADS if chosen is None else chosen)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper
