"""Chunked deblurring with ``dask.array.map_overlap``.

The image is cut into chunks whose sides are multiples of the model's
``alignment`` (``2**(depth-1)``). Each chunk is extended by an overlap ``depth``
of at least the network's receptive radius, also a multiple of the alignment,
and deblurred with :func:`napari_coordgate.deblur` at its *global* position in
the calibrated field, so its CoordGate gates and pooling grid are those of an
undivided pass. The overlap is then trimmed away. With one intensity range per
plane shared by all its chunks (see :mod:`.intensity`), the result equals the
single-process ``deblur(image, model, intensity_range=...)`` up to float
rounding, whatever the chunking, scheduler or cluster.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..inference.deblur import check_fits
from ..validation import check_image, check_intensity_range, int_pair
from ..inference.deblur import deblur as deblur_array
from ..models.unet import UNet, build_model
from .intensity import plane_intensity_ranges

__all__ = ["deblur_dask", "plan_chunks", "overlap_depth", "DEFAULT_CHUNK", "DEFAULT_CHUNK_TILE", "MAX_CHUNKS_IN_FLIGHT"]

#: Default chunk side in pixels (before alignment).
DEFAULT_CHUNK = 1024
#: Default tile side inside a chunk: the network's activations for one tile are
#: what dominates memory (docs/benchmarks.md, "Peak memory"), so a chunk is
#: deblurred in tiles of this size rather than in one piece.
DEFAULT_CHUNK_TILE = 512
#: Chunks deblurred at the same time in one process, whatever the number of dask
#: threads: torch already spreads one chunk over the cores, and each chunk in
#: flight holds its tile's activations.
MAX_CHUNKS_IN_FLIGHT = 2


def _align_up(n: int, a: int) -> int:
    return -(-int(n) // a) * a


def overlap_depth(model: UNet) -> int:
    """Overlap added on each side of a chunk: the receptive radius, aligned up."""
    return _align_up(model.receptive_radius, model.alignment)


def plan_chunks(length: int, chunk: int, depth: int, alignment: int) -> tuple[int, ...]:
    """Chunk sizes along one axis.

    Every chunk starts at a multiple of ``alignment``. A short remainder (less
    than ``depth``) is merged into the previous chunk, because
    ``map_overlap`` cannot take a ``depth``-wide overlap from a smaller chunk
    (and would silently re-chunk).
    """
    chunk = _align_up(max(int(chunk), alignment), alignment)
    if length <= chunk:
        return (int(length),)
    sizes = [chunk] * (length // chunk)
    rest = length - chunk * len(sizes)
    if rest >= depth:
        sizes.append(rest)
    elif rest:
        sizes[-1] += rest
    return tuple(sizes)


@dataclass(frozen=True)
class ModelSpec:
    """A model as plain data (config + safetensors bytes) that ships cheaply to
    dask workers and is rebuilt there, into a small pool (see :meth:`borrow`)."""

    config: dict
    percentiles: tuple[float, float]
    weights: bytes = field(repr=False)
    token: str = ""
    source_path: str | None = None

    @classmethod
    def from_model(cls, model: UNet) -> ModelSpec:
        from safetensors.torch import save

        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        weights = save(tensors)
        token = hashlib.sha1(weights + repr(sorted(model.config.items())).encode()).hexdigest()
        return cls(dict(model.config), tuple(model.percentiles), weights, token, getattr(model, "source_path", None))

    def __dask_tokenize__(self):
        return ("napari-coordgate-model", self.token)

    def _build(self) -> UNet:
        from safetensors.torch import load

        model = build_model(self.config)
        model.load_state_dict(load(self.weights), strict=True)
        model.percentiles = tuple(self.percentiles)
        model.source_path = self.source_path
        return model.eval()

    @contextmanager
    def borrow(self) -> Iterator[UNet]:
        """A model of this spec for the calling thread's exclusive use.

        Models come from a pool of at most :data:`MAX_CHUNKS_IN_FLIGHT` per
        process (built on first use, then reused): a thread waits for a free
        one, so at most that many chunks are deblurred at once and memory does
        not grow with the number of dask threads. Torch modules are not shared
        between concurrent threads (inference toggles eval mode and fills the
        gate cache).
        """
        with _POOL_LOCK:
            pool = _POOLS.get(self.token)
            if pool is None:
                while len(_POOLS) >= _MAX_SPECS:  # forget the least recently used model spec
                    _POOLS.popitem(last=False)
                pool = _POOLS[self.token] = _ModelPool()
            _POOLS.move_to_end(self.token)
        model = pool.take(self._build)
        try:
            yield model
        finally:
            pool.give_back(model)


class _ModelPool:
    """Up to :data:`MAX_CHUNKS_IN_FLIGHT` built models of one spec."""

    def __init__(self) -> None:
        self._free: list[UNet] = []
        self._slots = threading.BoundedSemaphore(MAX_CHUNKS_IN_FLIGHT)
        self._lock = threading.Lock()

    def take(self, build) -> UNet:
        self._slots.acquire()
        try:
            with self._lock:
                if self._free:
                    return self._free.pop()
            return build()
        except BaseException:
            self._slots.release()
            raise

    def give_back(self, model: UNet) -> None:
        with self._lock:
            self._free.append(model)
        self._slots.release()


_POOLS: OrderedDict[str, _ModelPool] = OrderedDict()
_POOL_LOCK = threading.Lock()
_MAX_SPECS = 4


def _deblur_block(
    block: np.ndarray,
    *,
    spec: ModelSpec,
    ranges: np.ndarray,
    grid: tuple[tuple[int, ...], ...],
    depths: tuple[int, int],
    offset: tuple[int, int],
    tile_shape,
    device: str,
    block_info=None,
) -> np.ndarray:
    """Deblur one overlapped chunk at its global field position.

    ``block_info[0]["array-location"]`` of ``map_overlap`` refers to the
    overlapped array, so the global position is rebuilt from the chunk index
    and the chunk sizes ``grid`` (each chunk grows by ``depth`` on every side that has a
    neighbour; ``boundary="none"`` adds nothing at the image edges).
    """
    loc = block_info[0]["chunk-location"]
    lead = loc[:-2]
    n_lead = tuple(len(c) for c in grid[:-2])
    plane = int(np.ravel_multi_index(lead, n_lead)) if lead else 0
    start = []
    for axis, depth in zip((-2, -1), depths):
        i = loc[axis]
        sizes = grid[axis]
        begin = sum(sizes[:i]) - (depth if i > 0 else 0)
        expected = sizes[i] + depth * (i > 0) + depth * (i < len(sizes) - 1)
        if block.shape[axis] != expected:
            raise RuntimeError(
                f"dask re-chunked the overlap (block of {block.shape[axis]} px where {expected} were planned); "
                "use larger chunks"
            )
        start.append(begin)
    with spec.borrow() as model:
        return deblur_array(
            block,
            model,
            offset=(offset[0] + start[0], offset[1] + start[1]),
            tile_shape=tile_shape or (DEFAULT_CHUNK_TILE, DEFAULT_CHUNK_TILE),
            device=device,
            intensity_range=tuple(ranges[plane]),
        )


def deblur_dask(
    image,
    model: UNet,
    *,
    offset: Sequence[int] = (0, 0),
    intensity_range=None,
    chunk_size: int = DEFAULT_CHUNK,
    tile_shape: Sequence[int] | None = None,
    device: str = "auto",
):
    """Deblur an image of any size lazily, chunk by chunk, with dask.

    Parameters
    ----------
    image : (..., Y, X) ndarray or dask array
        The image; a Zarr or TIFF opened as a dask array is never loaded whole.
    model : UNet, CGUNet or CoordConvUNet
        A trained model.
    offset : (y, x)
        Field position of the image's top-left pixel (as for :func:`~napari_coordgate.deblur`).
    intensity_range : None, (low, high) or (n_planes, 2) array_like
        Raw intensities mapped to 0 and 1, one range for all planes or one per
        plane. ``None`` computes each plane's ``model.percentiles`` once, with
        :func:`~napari_coordgate.scale.plane_intensity_ranges` (this reads the
        data once, immediately). It must be global per plane: per-chunk
        normalisation would make chunks disagree at their seams.
    chunk_size : int
        Chunk side in pixels, rounded up to ``model.alignment``. Each chunk is
        computed with an extra :func:`overlap_depth` on every side, so larger
        chunks waste less work; memory per task grows with its square.
    tile_shape : (ty, tx), optional
        Tile size inside a chunk (default :data:`DEFAULT_CHUNK_TILE`, 512 px;
        see :func:`~napari_coordgate.deblur`). At most
        :data:`MAX_CHUNKS_IN_FLIGHT` chunks are deblurred at once per process,
        so peak memory does not grow with the image size or the core count.
    device : str
        Device used by each task (``"auto"`` picks a worker's GPU if it has one).

    Returns
    -------
    (..., Y, X) dask array of float32
        Lazy; ``.compute()``, ``.to_zarr()`` or ``dask.array.store`` it. Runs on
        the active scheduler, including a ``dask.distributed`` cluster.

    Notes
    -----
    With the same ``intensity_range`` the result equals
    ``napari_coordgate.deblur(image, model, offset=offset, intensity_range=...)``
    within float rounding.
    """
    import dask.array as da

    if not isinstance(model, UNet):
        raise TypeError(f"model must be a napari_coordgate model, got {type(model).__name__}")
    if hasattr(image, "dask"):
        arr = image
        if arr.ndim < 2 or 0 in arr.shape:
            raise ValueError(f"image must be a non-empty array of at least 2D (Y, X), got shape {arr.shape}")
        if np.dtype(arr.dtype).kind not in "biuf":
            raise TypeError(f"image must hold real numbers, got dtype {arr.dtype}")
    else:
        arr = da.from_array(check_image(image), chunks=-1)
    oy, ox = check_fits(model, arr.shape[-2:], offset)
    n_planes = int(np.prod(arr.shape[:-2], dtype=np.int64))
    if intensity_range is None:
        ranges = plane_intensity_ranges(arr, model.percentiles)
    else:
        ranges = np.asarray(intensity_range, dtype=np.float64)
        if ranges.shape == (2,):
            ranges = np.broadcast_to(ranges, (n_planes, 2)).copy()
        if ranges.shape != (n_planes, 2):
            raise ValueError(f"intensity_range must be (low, high) or one row per plane ({n_planes}, 2), got shape {ranges.shape}")
        for i, row in enumerate(ranges):
            check_intensity_range(tuple(row), name="intensity_range" if len(ranges) == 1 else f"intensity_range of plane {i}")
    depth = overlap_depth(model)
    spatial = [plan_chunks(n, chunk_size, depth, model.alignment) for n in arr.shape[-2:]]
    arr = arr.rechunk((1,) * (arr.ndim - 2) + tuple(spatial))
    depths = tuple(depth if len(c) > 1 else 0 for c in spatial)
    axis_depth = {arr.ndim - 2: depths[0], arr.ndim - 1: depths[1]}
    return arr.map_overlap(
        _deblur_block,
        depth=axis_depth,
        boundary="none",
        trim=True,
        dtype=np.float32,
        meta=np.empty((0,) * arr.ndim, np.float32),
        spec=ModelSpec.from_model(model),
        ranges=ranges,
        grid=arr.chunks,
        depths=depths,
        offset=(oy, ox),
        tile_shape=None if tile_shape is None else int_pair("tile_shape", tile_shape, low=1),
        device=str(device),
    )
