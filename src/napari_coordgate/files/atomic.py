"""Writing files: atomically, and with the permissions the user's umask gives a new file.

Files are written to a temporary file (or folder) moved onto the destination
(:func:`atomic_write`), so a crash mid-write leaves any previous file intact;
``tempfile`` creates those readable by their owner only (mode 0600, folders
0700). :func:`apply_umask` gives them the mode an ordinary new file would get,
so that colleagues on a shared acquisition PC can read the models,
calibrations and results (with umask 022: 0644, folders 0755).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "current_umask", "apply_umask", "blocking_file"]


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the modes the umask gives new ones."""
    mask = current_umask()
    path = Path(path)
    if not path.is_dir():
        os.chmod(path, 0o666 & ~mask)
        return
    for folder, _, files in os.walk(path):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~mask)


def blocking_file(path: Path) -> Path | None:
    """The nearest existing folder above ``path`` when it is in fact a file (so ``path`` cannot be made), else None."""
    for parent in Path(path).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def atomic_write(path: Path, write: Callable[[str], object], suffix: str = ".tmp", *, folder: bool = False) -> None:
    """Call ``write(tmp_path)`` then move the temporary file (or folder) onto ``path``.

    The temporary file is in the same folder and ends in ``suffix`` (for writers
    that insist on an extension, e.g. ``".partial.zip"``); it is removed if
    ``write`` fails, leaving any previous ``path`` intact. It gets the modes the
    user's umask gives new files (:func:`apply_umask`). With ``folder=True``
    ``write`` creates a folder at ``tmp_path`` (a Zarr store, say), which then
    replaces any folder at ``path``.
    """
    path = Path(path)
    if path.is_dir() and not folder:
        raise IsADirectoryError(f"cannot save to {path}: it is a folder; give a file name")
    blocking = blocking_file(path)
    if blocking is not None:
        raise NotADirectoryError(f"cannot save to {path}: {blocking} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.rmdir(tmp)  # the name is reserved; the writer makes the folder
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    try:
        write(tmp)
        if not folder:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        apply_umask(tmp)
        if folder and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise
