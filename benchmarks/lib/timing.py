"""Wall-clock timing of a call."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def _no_sync() -> None:
    pass


def timed(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    """Seconds one call of ``fn`` takes; ``sync`` (e.g. ``torch.cuda.synchronize``) runs before and after."""
    sync = sync or _no_sync
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1,
                sync: Callable[[], None] | None = None) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return float(np.median([timed(fn, sync) for _ in range(repeats)]))
