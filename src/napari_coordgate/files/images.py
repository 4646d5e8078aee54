"""Image files for the command line and the Deblur dock: TIFF / OME-TIFF, Zarr and NumPy ``.npy``.

Reading is lazy where it matters: a Zarr store, and a TIFF larger than
``LAZY_BYTES``, open as dask arrays that are read chunk by chunk. Writing takes
a NumPy or a dask array; a dask array is computed and written one band of
chunks at a time, so an output larger than memory never exists whole.
Existing outputs are replaced only with ``overwrite=True``, and only once the
new file is complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write

__all__ = ["ImageSource", "image_format", "open_image", "check_output", "write_image", "LAZY_BYTES"]

#: TIFF files larger than this open lazily (as dask arrays).
LAZY_BYTES = 512 * 2**20

_TIFF = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf", ".tf8")


@dataclass
class ImageSource:
    """An opened image: ``array`` is a NumPy array (possibly memory-mapped) or a
    dask array; ``axes`` the axis letters when the file records them."""

    path: Path
    array: object
    format: str
    axes: str | None = None

    @property
    def lazy(self) -> bool:
        return hasattr(self.array, "dask")


def image_format(path: str | os.PathLike) -> str:
    """``"tiff"``, ``"zarr"`` or ``"npy"`` from a file name; ``ValueError`` otherwise."""
    name = Path(path).name.lower().rstrip("/")
    if name.endswith(_TIFF):
        return "tiff"
    if name.endswith((".zarr", ".zarr.zip")) or (Path(path).is_dir() and any((Path(path) / f).exists() for f in ("zarr.json", ".zarray", ".zgroup"))):
        return "zarr"
    if name.endswith(".npy"):
        return "npy"
    raise ValueError(f"{path}: unknown image format; use .tif/.tiff, .ome.tif, .zarr or .npy")


def open_image(path: str | os.PathLike, *, lazy: bool | None = None) -> ImageSource:
    """Open an image file.

    Parameters
    ----------
    path : str or Path
        A TIFF / OME-TIFF (first series, full resolution), a Zarr array or
        group (an OME-Zarr's first multiscale level, or its only array), or a
        ``.npy`` file (memory-mapped).
    lazy : bool, optional
        Force (True) or forbid (False) opening as a dask array. By default Zarr
        is always lazy, TIFF only when larger than :data:`LAZY_BYTES`.
    """
    path = Path(path)
    fmt = image_format(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if fmt == "tiff":
        return _open_tiff(path, lazy)
    if fmt == "zarr":
        return _open_zarr(path, lazy)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None
    if lazy:
        import dask.array as da

        arr = da.from_array(arr, chunks="auto")
    return ImageSource(path, arr, "npy")


def _open_tiff(path: Path, lazy: bool | None) -> ImageSource:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            nbytes = int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize
            if lazy is None:
                lazy = nbytes > LAZY_BYTES
            if not lazy:
                return ImageSource(path, series.asarray(), "tiff", axes)
    except IndexError:  # tifffile found no image series
        raise ValueError(f"{path}: not a readable TIFF (no image in it: damaged or truncated)") from None
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable TIFF ({err})") from None
    import dask.array as da
    import zarr

    store = tifffile.imread(path, aszarr=True, series=0, level=0)
    return ImageSource(path, da.from_zarr(zarr.open(store, mode="r")), "tiff", axes)


def _open_zarr(path: Path, lazy: bool | None) -> ImageSource:
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises a variety of errors for non-stores
        raise ValueError(f"{path}: not a readable Zarr store ({type(err).__name__}: {err})") from None
    axes = None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if multiscales:
            ms = multiscales[0]
            name = ms["datasets"][0]["path"]
            axes_meta = ms.get("axes")
            if axes_meta:
                axes = "".join((a["name"] if isinstance(a, dict) else str(a))[0].upper() for a in axes_meta)
        else:
            names = [k for k, _ in node.arrays()]
            if len(names) != 1:
                raise ValueError(f"{path}: a Zarr group with {len(names)} arrays ({', '.join(names[:5])}); point to one array")
            name = names[0]
        node = node[name]
    arr = da.from_zarr(node)
    if lazy is False:
        arr = arr.compute()
    return ImageSource(path, arr, "zarr", axes)


def check_output(path: str | os.PathLike, *, overwrite: bool, inputs=()) -> Path:
    """Refuse to write over an existing file (unless ``overwrite``) or over an input."""
    path = Path(path)
    for other in inputs:
        if other is not None and Path(other).exists() and path.exists() and path.resolve() == Path(other).resolve():
            raise ValueError(f"{path}: the output would overwrite an input")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (use --overwrite to replace it)")
    if not path.parent.exists():
        raise FileNotFoundError(f"{path.parent}: output folder does not exist")
    return path


# -- writing ------------------------------------------------------------------------------------


def _iter_bands(arr, progress: Callable[[int, int], None] | None, convert=None,
                min_blocks: int = 8) -> Iterator[tuple[int, int, np.ndarray]]:
    """Compute a dask array plane by plane, one band (row of chunks) at a time.

    Yields ``(plane_index, y0, band)`` with ``band`` of shape ``(h, X)``, passed
    through ``convert`` when given. Several bands are computed together when a
    band has fewer than ``min_blocks`` chunks, so workers stay busy.
    """
    import dask

    planes = (arr[None] if arr.ndim == 2 else arr.reshape((-1, *arr.shape[-2:]))).rechunk({0: 1})
    row_starts = np.concatenate([[0], np.cumsum(planes.chunks[1])])
    per_band = len(planes.chunks[2])
    bands = [(p, i) for p in range(planes.shape[0]) for i in range(len(planes.chunks[1]))]
    group = max(1, -(-min_blocks // per_band))
    for g in range(0, len(bands), group):
        todo = bands[g : g + group]
        results = dask.compute(*[planes[p, row_starts[i] : row_starts[i + 1]] for p, i in todo])
        for (p, i), band in zip(todo, results):
            band = np.asarray(band)
            yield p, int(row_starts[i]), band if convert is None else convert(band)
        if progress is not None:
            progress(min(g + group, len(bands)), len(bands))


def _tiff_tiles(arr, tile: tuple[int, int], progress, convert) -> Iterator[np.ndarray]:
    """Re-cut bands of chunks into TIFF tiles, in the order TIFF stores them."""
    th, tw = tile
    width = arr.shape[-1]
    buffer = None
    current = -1

    def flush(buf, final):
        while buf is not None and (buf.shape[0] >= th or (final and buf.shape[0] > 0)):
            rows, buf = buf[:th], buf[th:]
            for x in range(0, width, tw):
                yield rows[:, x : x + tw]
        return buf

    for p, _, band in _iter_bands(arr, progress, convert):
        if p != current:
            if buffer is not None:
                yield from flush(buffer, True)
            buffer, current = band, p
        else:
            buffer = np.concatenate([buffer, band])
        rest = yield from flush(buffer, False)
        buffer = rest
    if buffer is not None:
        yield from flush(buffer, True)


def _tiff_kwargs(path: Path, shape, axes: str | None) -> dict:
    kwargs: dict = {}
    if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
        kwargs["ome"] = True
    if axes and len(axes) == len(shape):
        kwargs["metadata"] = {"axes": axes}
    return kwargs


def _write_tiff(tmp: str, path: Path, data, axes, progress, convert, dtype) -> None:
    import tifffile

    kwargs = _tiff_kwargs(path, data.shape, axes)
    big = int(np.prod(data.shape, dtype=np.int64)) * dtype.itemsize > 2**31
    if not hasattr(data, "dask"):
        tifffile.imwrite(tmp, _converted(data, convert), bigtiff=big, **kwargs)
        return
    tile = tuple(min(512, _align16(s)) for s in data.shape[-2:])
    tifffile.imwrite(
        tmp, _tiff_tiles(data, tile, progress, convert), shape=data.shape, dtype=dtype, tile=tile, bigtiff=big, **kwargs
    )


def _converted(data, convert) -> np.ndarray:
    data = np.asarray(data)
    return data if convert is None else convert(data)


def _align16(n: int) -> int:
    return max(16, -(-n // 16) * 16)


def _write_zarr(tmp: str, data, progress, convert, dtype) -> None:
    import zarr

    chunks = tuple(1 for _ in data.shape[:-2]) + tuple(min(1024, s) for s in data.shape[-2:])
    z = zarr.open_array(tmp, mode="w", shape=data.shape, dtype=dtype, chunks=chunks)
    if not hasattr(data, "dask"):
        z[...] = _converted(data, convert)
        return
    lead = data.shape[:-2]
    for p, y0, band in _iter_bands(data, progress, convert):
        index = np.unravel_index(p, lead) if lead else ()
        z[(*index, slice(y0, y0 + band.shape[0]))] = band


def _write_npy(tmp: str, data, progress, convert, dtype) -> None:
    if not hasattr(data, "dask"):
        with open(tmp, "wb") as fh:
            np.save(fh, _converted(data, convert), allow_pickle=False)
        return
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=data.shape)
    flat = out.reshape(-1, *data.shape[-2:])
    for p, y0, band in _iter_bands(data, progress, convert):
        flat[p, y0 : y0 + band.shape[0]] = band
    out.flush()
    del out


def write_image(
    path: str | os.PathLike,
    data,
    *,
    overwrite: bool = False,
    axes: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    convert=None,
) -> Path:
    """Write a NumPy or dask array as TIFF / OME-TIFF, Zarr or ``.npy``.

    A dask array is computed band by band while it is written. The file
    appears under ``path`` only once complete; an existing ``path`` is
    replaced only with ``overwrite=True``. ``progress(done, total)`` is called
    after each group of bands of a dask array. ``convert`` (e.g. an
    :class:`~napari_coordgate.inference.OutputCast`, which has a ``dtype``)
    maps the data, band by band, to the dtype written.
    """
    fmt = image_format(path)
    path = check_output(path, overwrite=overwrite)
    dtype = np.dtype(data.dtype if convert is None else convert.dtype)
    writers = {"tiff": lambda tmp: _write_tiff(tmp, path, data, axes, progress, convert, dtype),
               "zarr": lambda tmp: _write_zarr(tmp, data, progress, convert, dtype),
               "npy": lambda tmp: _write_npy(tmp, data, progress, convert, dtype)}
    atomic_write(path, writers[fmt], folder=fmt == "zarr")
    return path
