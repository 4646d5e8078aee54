"""Deblurring image files: one, a folder or a glob, one file at a time.

``coordgate deblur`` (and the Deblur widget's "Deblur a folder…") takes one
image, a folder or a glob. A folder means every image file directly inside it
(by the suffixes :func:`.images.image_format` knows); a glob (``"run1/*.tif"``,
``"**/*.ome.tif"``) means the image files it matches. Each output keeps its
input's file name, inside the output folder. Files are processed one after the
other and nothing of one is kept for the next, so memory does not grow with
the number of files; a file that fails is reported and the others go on.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .images import image_format, open_image, write_image

__all__ = ["BatchJob", "FileOptions", "FileEvent", "is_batch", "plan_batch", "iter_deblur_file", "iter_deblur_files"]

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


@dataclass(frozen=True)
class FileOptions:
    """How each file is deblurred (see :func:`napari_coordgate.deblur` and ``coordgate deblur --help``)."""

    offset: tuple[int, int] = (0, 0)
    tile_shape: tuple[int, int] | None = None
    device: str = "auto"
    intensity_range: tuple[float, float] | None = None
    output_dtype: str | None = None
    chunks: int | None = None
    scheduler: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class FileEvent:
    """Progress of :func:`iter_deblur_files`.

    ``kind`` is ``"tiles"`` (``done`` of ``total`` tiles or bands of file
    ``index``), ``"written"`` or ``"failed"`` (with a ``message`` for the user).
    """

    kind: str
    index: int
    source: Path
    done: int = 0
    total: int = 0
    message: str = ""
    extra: dict = field(default_factory=dict)


def iter_deblur_file(source_path: Path, output: Path, model, options: FileOptions,
                     index: int = 0) -> Generator[FileEvent, None, str]:
    """Deblur one image file into ``output``, yielding tile progress; return the report line.

    Small files are deblurred in memory; a file that opens lazily (Zarr, a
    TIFF above :data:`.io.LAZY_BYTES`), or any file when ``options.chunks`` or
    ``options.scheduler`` is set, is deblurred chunk by chunk with dask and
    written band by band.
    """
    from ..inference.deblur import check_fits, check_image, iter_deblur
    from ..inference.output_dtype import OutputCast

    source_path, output = Path(source_path), Path(output)
    source = open_image(source_path)
    shape = tuple(source.array.shape)
    if len(shape) < 2 or 0 in shape:
        raise ValueError(f"{source_path}: image must be at least 2D (Y, X) and non-empty, got shape {shape}")
    check_fits(model, shape[-2:], options.offset)
    cast = OutputCast.for_input(options.output_dtype, source.array.dtype)
    t0 = time.perf_counter()
    chunked = source.lazy or options.chunks is not None or options.scheduler is not None
    if chunked:
        import dask.array as da

        from ..scale import deblur_dask
        from ..scale.dask_deblur import DEFAULT_CHUNK

        arr = source.array if source.lazy else da.from_array(check_image(source.array), chunks=-1)
        bands = (0, 0)  # the last (done, total) the writer reported

        def written(done: int, total: int) -> None:
            nonlocal bands
            bands = (done, total)

        with _scheduler(options.scheduler):
            result = deblur_dask(arr, model, offset=options.offset, intensity_range=options.intensity_range,
                                 chunk_size=options.chunks or DEFAULT_CHUNK, tile_shape=options.tile_shape,
                                 device=options.device)
            write_image(output, result, overwrite=options.overwrite, axes=source.axes, progress=written, convert=cast)
        if bands[1]:
            yield FileEvent("tiles", index, source_path, *bands)
    else:
        image = check_image(source.array)
        steps = iter_deblur(image, model, offset=options.offset, tile_shape=options.tile_shape,
                            device=options.device, intensity_range=options.intensity_range)
        while True:
            try:
                step = next(steps)
            except StopIteration as stop:
                out = stop.value
                break
            yield FileEvent("tiles", index, source_path, step.done, step.total, step.message)
        write_image(output, out, overwrite=options.overwrite, axes=source.axes, convert=cast)
        del out, image
    mode = f"in chunks of {options.chunks or 'default size'}" if chunked else "in memory"
    clipped = f"; {cast.report()}" if cast.dtype.kind != "f" else ""
    return (f"wrote {output}: {'x'.join(map(str, shape))} {cast.dtype}, {model.arch}({model.depth}), {mode}, "
            f"{time.perf_counter() - t0:.1f} s{clipped}")


def iter_deblur_files(jobs: Sequence[BatchJob], model, options: FileOptions) -> Generator[FileEvent, None, list]:
    """Deblur each job's file in turn; a file that fails is reported and the rest go on.

    Yields :class:`FileEvent` records (tiles, then ``"written"`` or
    ``"failed"`` for each file); returns the ``(source, message)`` of the
    files that failed. Closing the generator stops after the current tile.
    """
    failed: list[tuple[Path, str]] = []
    for index, job in enumerate(jobs):
        try:
            line = yield from iter_deblur_file(job.source, job.output, model, options, index)
        except (GeneratorExit, KeyboardInterrupt):
            raise
        except Exception as err:  # one bad file must not stop the batch
            message = " ".join(str(err).split()) or type(err).__name__
            prefix = f"{job.source}: "
            message = message[len(prefix):] if message.startswith(prefix) else message  # the event names the file
            failed.append((job.source, message))
            yield FileEvent("failed", index, job.source, message=message, extra={"error": err})
        else:
            yield FileEvent("written", index, job.source, message=line)
    return failed


@contextmanager
def _scheduler(address: str | None):
    """Run dask work on a named local scheduler or a dask.distributed cluster."""
    if address is None:
        yield None
        return
    import dask

    if address in ("threads", "processes", "sync", "synchronous"):
        with dask.config.set(scheduler=address):
            yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout="20s")
    except OSError as err:
        raise OSError(f"cannot reach the dask scheduler at {address}: {err}") from None
    try:
        yield client
    finally:
        client.close()
