"""Stopping a long computation from another thread.

A calibration runs for tens of seconds in a worker thread. Whoever started it
holds a :class:`threading.Event`; the computation runs inside
:func:`cancelled_by` with that event and calls :func:`check_cancelled` at
points that come often (every objective evaluation of a fit), which raises
:class:`Cancelled` once the event is set. The event is held in a context
variable, so the check needs no argument threaded through every function,
and each thread sees only its own event.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["Cancelled", "cancellable", "cancelled_by", "check_cancelled"]

_F = TypeVar("_F", bound=Callable)

_EVENT: ContextVar[threading.Event | None] = ContextVar("napari_coordgate_cancel", default=None)


class Cancelled(Exception):
    """The computation was stopped by its caller; it left no result."""


@contextmanager
def cancelled_by(event: threading.Event | None) -> Iterator[None]:
    """Make :func:`check_cancelled` in this block raise once ``event`` is set.

    ``None`` keeps whatever event an enclosing block set (or none), so
    functions can pass their optional argument straight through.
    """
    if event is None:
        yield
        return
    if not isinstance(event, threading.Event):
        raise TypeError(f"cancel must be a threading.Event, got {type(event).__name__}")
    token = _EVENT.set(event)
    try:
        check_cancelled()
        yield
    finally:
        _EVENT.reset(token)


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if the event of the enclosing :func:`cancelled_by` is set."""
    event = _EVENT.get()
    if event is not None and event.is_set():
        raise Cancelled("cancelled")


def cancellable(function: _F) -> _F:
    """Give ``function`` a keyword-only argument ``cancel`` (a :class:`threading.Event` or None).

    The call runs inside :func:`cancelled_by` with it, so the checks in
    everything it calls raise :class:`Cancelled` once the event is set. The
    wrapped function documents ``cancel`` in its own docstring.
    """
    @functools.wraps(function)
    def wrapper(*args, cancel: threading.Event | None = None, **kwargs):
        with cancelled_by(cancel):
            return function(*args, **kwargs)

    signature = inspect.signature(function)
    extra = inspect.Parameter("cancel", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation="threading.Event | None")
    parameters = list(signature.parameters.values())
    at = len(parameters) - (bool(parameters) and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD)
    wrapper.__signature__ = signature.replace(parameters=[*parameters[:at], extra, *parameters[at:]])
    return wrapper
