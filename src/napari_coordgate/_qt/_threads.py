"""Running torch work in worker threads without freezing or tangling the GUI."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from qtpy.QtCore import QObject, Signal

__all__ = ["leave_a_core_for_the_gui", "until_cancelled", "MODEL_LOCK", "MessageRelay", "warm_up"]

_Y = TypeVar("_Y")
_R = TypeVar("_R")

#: Held by every job that runs the shared current model (deblurring, previews,
#: kernel probes): a model switches modes and caches gates as it runs, so two
#: threads must not run the same model at once. Training works on its own copy.
MODEL_LOCK = threading.Lock()


#: Modules imported lazily on first use that hold the GIL for 0.1-0.5 s while they
#: load: torch.optim imports torch._dynamo (and sympy) when the first optimiser is
#: made, napari imports pandas for the first Points layer with features, and the
#: Fine-tune and Gate map docks need matplotlib's Qt canvas (no Qt object is made here).
_SLOW_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_qtagg", "torch._dynamo", "pandas",
                 "skimage.metrics", "skimage.measure")
_warmed = threading.Event()


def warm_up() -> None:
    """Import :data:`_SLOW_IMPORTS` once per session, in a background thread.

    Called when a dock opens, while the user reads it, so that the first
    calibration or training does not freeze the window for these imports.
    """
    if _warmed.is_set():
        return
    _warmed.set()

    def load() -> None:
        import importlib

        for name in _SLOW_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # optional: the work imports what it needs anyway
                pass

    threading.Thread(target=load, name="napari-coordgate warm-up", daemon=True).start()


@contextmanager
def leave_a_core_for_the_gui() -> Iterator[None]:
    """Let torch use every CPU core but one while in this block.

    torch's CPU thread count is set per thread (OpenMP), so this affects only
    the worker thread it runs in; the count is restored on exit because
    worker threads are pooled and reused.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def until_cancelled(work: Generator[_Y, None, _R], cancel: threading.Event) -> Generator[_Y, None, _R | None]:
    """Run ``work`` until it ends or ``cancel`` is set; return its result, or None.

    Unlike ``worker.quit()``, which leaves the generator suspended until it is
    garbage collected, this closes ``work`` in the worker thread as soon as
    cancellation is seen, so its clean-up (``finally`` blocks: releasing
    locks, restoring the best weights) has run before the worker finishes.
    """
    try:
        while not cancel.is_set():
            try:
                item = next(work)
            except StopIteration as stop:
                return stop.value
            yield item
        return None
    finally:
        work.close()


class MessageRelay(QObject):
    """Carries text from a worker thread to the GUI thread.

    Pass :meth:`send` as the ``report`` callback of a core function running
    in a worker; each call emits :attr:`arrived`, which Qt queues to the
    relay's own (GUI) thread, so connected slots may touch widgets.
    """

    arrived = Signal(str)

    def send(self, text: str) -> None:
        """Emit ``text`` (thread-safe)."""
        self.arrived.emit(str(text))
