"""Progress bars for the command line (tqdm on stderr; hidden with --quiet or
when stderr is not a terminal)."""

from __future__ import annotations

from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


class _Bar(tqdm):
    def update_to(self, done: int, total: int | None = None) -> None:
        """Set the absolute position (and total) instead of adding to it."""
        if total is not None and total != self.total:
            self.total = total
        self.update(done - self.n)


@contextmanager
def progress_bar(desc: str, *, unit: str = "it", total: int | None = None, quiet: bool = False, position: int | None = None):
    """A tqdm bar with ``update_to(done, total)``; disabled when ``quiet``.
    ``position`` stacks bars (0 for the outer one, 1 for a bar inside it)."""
    bar = _Bar(desc=desc, unit=unit, total=total, disable=True if quiet else None, leave=False, dynamic_ncols=True,
               position=position)
    try:
        yield bar
    finally:
        bar.close()
