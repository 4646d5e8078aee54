"""Deblurring images of any size and dimensionality with a trained model."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._generators import drive
from ..device import resolve_device
from ..models.unet import UNet
from ..precision import ComputeMode, compute_mode
from ..validation import check_image, check_intensity_range, check_offset, int_pair
from ..normalization import DEFAULT_PERCENTILES, IntensityScale
from .output_dtype import OutputCast
from .tiling import minimum_tile, plan_tiles

__all__ = ["deblur", "iter_deblur", "DeblurProgress", "check_image", "check_fits", "describe_source", "DEFAULT_TILE"]

#: Default tile side: large enough for any depth up to 6, small enough for a laptop.
DEFAULT_TILE = 1024
_RAMP = 16


@dataclass(frozen=True)
class DeblurProgress:
    """One step of :func:`iter_deblur`: ``done`` of ``total`` tiles, plus a message
    when something noteworthy happened (e.g. the tile size was halved)."""

    done: int
    total: int
    message: str = ""


def check_fits(model: UNet, plane_shape: Sequence[int], offset: Sequence[int]) -> tuple[int, int]:
    """Check that a plane of ``plane_shape`` placed at ``offset`` in the model's field lies inside it.

    Returns the offset as two ints; raises ValueError, naming the plane, the
    offset and the field, when it does not fit. A model without a field fits anything.
    """
    oy, ox = check_offset(offset)
    field = model.field_shape
    if field is None:
        return oy, ox
    h, w = plane_shape
    if oy < 0 or ox < 0 or oy + h > field[0] or ox + w > field[1]:
        raise ValueError(
            f"an image of shape ({h}, {w}) at offset ({oy}, {ox}) does not fit in the model's "
            f"calibrated field of shape {tuple(field)}"
        )
    return oy, ox


def _deblur_plane(
    model: UNet, plane: np.ndarray, scale: IntensityScale, offset: tuple[int, int],
    tile: tuple[int, int], mode: ComputeMode, done: int, total: int,
) -> Generator[DeblurProgress, None, np.ndarray]:
    """Deblur one 2D plane tile by tile, yielding progress after each tile."""
    a = model.alignment
    h, w = plane.shape
    ph, pw = (-h) % a, (-w) % a
    norm = scale.normalize(plane)
    if ph or pw:
        padding = "reflect" if ph < h and pw < w else "edge"
        norm = np.pad(norm, ((0, ph), (0, pw)), mode=padding)
    plan = plan_tiles(norm.shape, tile, model.receptive_radius, a, _RAMP)

    def run(tile_array: np.ndarray, at: tuple[int, int]) -> np.ndarray:
        with mode.autocast():
            y = model(mode.prepare_input(torch.from_numpy(tile_array)[None, None]), offset=at)
        return y[0, 0].float().cpu().numpy()

    with torch.inference_mode():
        if len(plan) == 1:  # one tile: no blending buffers
            blended = run(norm, offset)[:h, :w]
            yield DeblurProgress(done + 1, total)
        else:
            acc = np.zeros(norm.shape, np.float32)
            wsum = np.zeros(norm.shape, np.float32)
            for k, (sy, sx, weight) in enumerate(plan, start=1):
                acc[sy, sx] += weight * run(np.ascontiguousarray(norm[sy, sx]), (offset[0] + sy.start, offset[1] + sx.start))
                wsum[sy, sx] += weight
                yield DeblurProgress(done + k, total)
            blended = acc[:h, :w] / wsum[:h, :w]
    restored = scale.denormalize(blended)
    if not np.isfinite(restored).all():
        raise ValueError(f"{describe_source(model)} gave non-finite values (NaN or inf) for this image; its weights "
                         "may be damaged or the image far outside what it was trained on: retrain or reload the model")
    return restored


def describe_source(model: UNet) -> str:
    """``"the model <file>"`` for a loaded model, ``"the <arch> model"`` otherwise (for messages)."""
    path = getattr(model, "source_path", None)
    return f"the model {path}" if path else f"the {model.arch} model"


def iter_deblur(
    image,
    model: UNet,
    *,
    offset: Sequence[int] = (0, 0),
    tile_shape: Sequence[int] | None = None,
    device: str | torch.device = "auto",
    intensity_range: tuple[float, float] | None = None,
    precision: str = "auto",
    output_dtype=None,
) -> Generator[DeblurProgress, None, np.ndarray]:
    """Generator form of :func:`deblur`: yields :class:`DeblurProgress` after
    every tile and returns the result (``StopIteration.value``). Closing it
    stops the work. Same parameters as :func:`deblur`; with an
    ``output_dtype``, the last progress message reports the clipped pixels."""
    arr = check_image(image)
    cast = OutputCast.for_input(output_dtype, arr.dtype)
    if not isinstance(model, UNet):
        raise TypeError(f"model must be a napari_coordgate model (UNet, CGUNet, CoordConvUNet), got {type(model).__name__}")
    plane_shape = arr.shape[-2:]
    oy, ox = check_fits(model, plane_shape, offset)
    dev = resolve_device(device)
    mode = compute_mode(dev, precision)
    margin = model.receptive_radius
    min_tile = minimum_tile(margin, _RAMP, model.alignment)
    if tile_shape is None:
        tile = (max(DEFAULT_TILE, min_tile),) * 2
    else:
        tile = int_pair("tile_shape", tile_shape, low=1)
    aligned_plane = tuple(_align(s, model.alignment) for s in plane_shape)

    def count_tiles(tile):
        try:
            return len(plan_tiles(aligned_plane, tile, margin, model.alignment, _RAMP))
        except ValueError:
            raise ValueError(
                f"tile_shape {tile} is too small for this {model.arch}({model.depth}), whose receptive "
                f"radius is {margin} px; use at least ({min_tile}, {min_tile})"
            ) from None

    tiles_per_plane = count_tiles(tile)
    if intensity_range is not None:
        intensity_range = check_intensity_range(intensity_range)
    percentiles = getattr(model, "percentiles", DEFAULT_PERCENTILES)
    was_training = model.training
    mode.prepare_model(model).eval()
    planes = arr.reshape(-1, *plane_shape)
    out = np.empty(arr.shape, cast.dtype)
    out_planes = out.reshape(-1, *plane_shape)
    total, done = tiles_per_plane * len(planes), 0
    try:
        for i, plane in enumerate(planes):
            if intensity_range is not None:
                scale = IntensityScale(*intensity_range)
            else:
                scale = IntensityScale.from_percentiles(plane, percentiles)
            while True:
                try:
                    restored = yield from _deblur_plane(model, plane, scale, (oy, ox), tile, mode, done, total)
                    out_planes[i] = cast(restored)
                    done += tiles_per_plane
                    break
                except torch.OutOfMemoryError:
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    smaller = tuple(max(min_tile, t // 2) for t in tile)
                    if smaller == tile:
                        raise MemoryError(
                            f"out of memory on {dev} even with {tile[0]}x{tile[1]} tiles, the smallest this "
                            f"model allows; use the CPU or a smaller model"
                        ) from None
                    message = f"out of memory on {dev} with {tile[0]}x{tile[1]} tiles; retrying with {smaller[0]}x{smaller[1]}"
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    tile = smaller
                    tiles_per_plane = count_tiles(tile)
                    total = done + tiles_per_plane * (len(planes) - i)
                    yield DeblurProgress(done, total, message)
    finally:
        model.train(was_training)
    if output_dtype is not None:
        yield DeblurProgress(total, total, cast.report())
    return out


def _align(n: int, a: int) -> int:
    return int(math.ceil(n / a) * a)


def deblur(
    image,
    model: UNet,
    *,
    offset: Sequence[int] = (0, 0),
    tile_shape: Sequence[int] | None = None,
    device: str | torch.device = "auto",
    progress: Callable[[DeblurProgress], None] | None = None,
    intensity_range: tuple[float, float] | None = None,
    precision: str = "auto",
    output_dtype=None,
) -> np.ndarray:
    """Remove the instrument's blur from an image or a stack of images.

    Parameters
    ----------
    image : (..., Y, X) array_like
        A 2D image, or a stack (time, z, channels, ...) with Y and X last; each
        plane is deblurred on its own. Any real dtype. Never modified.
    model : UNet, CGUNet or CoordConvUNet
        A trained model (see :func:`load_model`).
    offset : (y, x)
        Position of the image's top-left pixel in the model's calibrated field,
        for images that are a crop of the field (a camera ROI).
    tile_shape : (ty, tx), optional
        Work in tiles of this size (default 1024 x 1024, or the whole plane if
        smaller). Tiles overlap by the network's receptive radius and are
        blended smoothly; the result equals the untiled one.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    progress : callable, optional
        Called with a :class:`DeblurProgress` after every tile.
    intensity_range : (low, high), optional
        Raw intensities mapped to 0 and 1 for the network. By default each
        plane's percentiles given by ``model.percentiles`` (1 and 99.8).
    precision : {"auto", "bf16", "fp32"}
        ``"auto"`` computes in bf16 (autocast, channels_last) where the device
        does so natively: CUDA, and CPUs with AVX-512 BF16 or AMX; otherwise
        float32. The network's output is float32 either way (see :mod:`..precision`).
    output_dtype : None, "input" or dtype-like
        dtype of the result: float32 by default; ``"input"`` for the input's
        dtype; or any real NumPy dtype. Integer results are rounded and
        saturated at the dtype's limits (never wrapped), and the final progress
        message says how many pixels were clipped (see :class:`.OutputCast`).

    Returns
    -------
    (..., Y, X) ndarray
        The deblurred image, in the input's intensity units: float32 unless
        ``output_dtype`` says otherwise.

    Notes
    -----
    Each plane is normalised with robust percentiles, passed through the
    network and mapped back with the inverse transform. On a CUDA out-of-memory
    error the tile size is halved and the plane retried, with a
    ``RuntimeWarning`` (and a progress message) saying so.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_coordgate import CGUNet, deblur
    >>> model = CGUNet(depth=3, field_shape=(64, 64), base_channels=4)
    >>> deblur(np.random.rand(2, 40, 50), model, offset=(8, 8), device="cpu").shape
    (2, 40, 50)
    """
    gen = iter_deblur(image, model, offset=offset, tile_shape=tile_shape, device=device,
                      intensity_range=intensity_range, precision=precision, output_dtype=output_dtype)
    return drive(gen, progress)
