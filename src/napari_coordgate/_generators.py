"""Running the package's progress-yielding generators to completion."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")


def drive(gen: Generator[P, None, R], callback: Callable[[P], None] | None = None) -> R:
    """Exhaust ``gen``, passing each yielded record to ``callback``; return its value."""
    while True:
        try:
            record = next(gen)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(record)
