"""Which files ``coordgate deblur`` processes, and where each result goes.

``coordgate deblur`` takes one image, a folder or a glob. A folder means every
image file directly inside it (by the suffixes :func:`.io.image_format` knows);
a glob (``"run1/*.tif"``, ``"**/*.ome.tif"``) means the image files it matches.
Each output keeps its input's file name, inside the output folder.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from .io import image_format

__all__ = ["BatchJob", "is_batch", "plan_batch"]

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class BatchJob:
    """One input image and the output it is written to."""

    source: Path
    output: Path


def is_batch(image: str) -> bool:
    """True for a folder (that is not a Zarr store) or a glob pattern."""
    if _GLOB_CHARS & set(image):
        return True
    path = Path(image)
    if not path.is_dir():
        return False
    try:
        return image_format(path) != "zarr"
    except ValueError:
        return True


def _is_image(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    try:
        image_format(path)
    except ValueError:
        return False
    return path.is_file() or path.is_dir()


def plan_batch(image: str, output: str, *, overwrite: bool) -> tuple[list[BatchJob], list[Path]]:
    """The jobs for a folder or glob, and the files skipped as not images.

    Parameters
    ----------
    image : str
        A folder or a glob pattern.
    output : str
        The output folder; created if its parent exists.
    overwrite : bool
        Replace outputs that exist; otherwise any existing output is an error
        before anything runs.

    Raises
    ------
    FileNotFoundError
        The folder does not exist, nothing matches, or the output folder's parent is missing.
    ValueError
        The output is an existing file, is the input folder itself, or two inputs
        would write the same output.
    FileExistsError
        Outputs exist and ``overwrite`` is False.
    """
    if _GLOB_CHARS & set(image):
        matches = sorted(Path(p) for p in glob.glob(image, recursive=True))
        where = f"the pattern {image!r}"
    else:
        folder = Path(image)
        if not folder.is_dir():
            raise FileNotFoundError(f"{image}: no such folder")
        matches = sorted(folder.iterdir())
        where = f"the folder {image}"
    sources = [p for p in matches if _is_image(p)]
    skipped = [p for p in matches if p not in sources and p.is_file() and not p.name.startswith(".")]
    if not sources:
        raise FileNotFoundError(f"no image files (.tif, .ome.tif, .zarr, .npy) in {where}")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{output}: for a folder or a pattern of inputs, the output must be a folder, not a file")
    if not out.parent.exists():
        raise FileNotFoundError(f"{out.parent}: output folder's parent does not exist")
    out_resolved = out.resolve()
    if any(s.parent.resolve() == out_resolved for s in sources):
        raise ValueError(f"{output}: the output folder holds inputs; write the results to another folder")
    jobs = [BatchJob(s, out / s.name) for s in sources]
    names = [j.output.name for j in jobs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"several inputs have the same name ({', '.join(repeated[:3])}), so their outputs would collide; "
                         "give a pattern that matches one folder")
    existing = [j.output for j in jobs if j.output.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}{more} already exist (use --overwrite to replace them)")
    os.makedirs(out, exist_ok=True)
    return jobs, skipped
