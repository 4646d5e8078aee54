"""Permissions of the files this package writes: those the user's umask gives a new file.

Files are written atomically, to a temporary file (or folder) moved onto the
destination; ``tempfile`` creates those readable by their owner only (mode
0600, folders 0700). :func:`apply_umask` gives them the mode an ordinary new
file would get, so that colleagues on a shared acquisition PC can read the
models, calibrations and results (with umask 022: 0644, folders 0755).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["current_umask", "apply_umask"]


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
