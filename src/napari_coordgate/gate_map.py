"""What a trained model has learned about the field: gate maps and local kernels.

A CG U-Net mixes its globally applied filters differently at every position:
each CoordGate block multiplies its ``n_gates`` feature channels by a gate map
computed from the coordinates alone (paper Eq. 3). :func:`gate_maps` returns
those maps for one block, on that block's pixel grid. :func:`local_response`
measures the network's effective deconvolution kernel at one position: its
response to a point source there, minus its response to the background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .models.unet import UNet
from .validation import integer

__all__ = ["gate_maps", "local_response"]


def _model_device(model: UNet) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def gate_maps(
    model: UNet,
    block: str,
    *,
    field_shape: Sequence[int] | None = None,
    offset: Sequence[int] = (0, 0),
    shape: Sequence[int] | None = None,
    stride: int = 1,
) -> np.ndarray:
    """The gate maps of one CoordGate block over a region of the field.

    Parameters
    ----------
    model : CGUNet
        A model with CoordGate blocks (see ``model.gated_blocks()``).
    block : str
        Name of the block: ``"down<level>"`` or ``"up<level>"``, e.g. ``"down0"``.
    field_shape : (H, W), optional
        The calibrated field the maps are drawn for. Defaults to
        ``model.field_shape``; any other value raises ``ValueError``, so gates
        are never drawn over a field the model was not trained for.
    offset : (y, x)
        Field position of the region's top-left pixel (a camera ROI's offset).
    shape : (h, w), optional
        Size of the region in full-resolution pixels. Defaults to the rest of
        the field from ``offset``.
    stride : int
        Sample every ``stride``-th coarse pixel in each direction (1: all).
        The gates are a smooth function of position, so a 2048 x 2048 field
        is drawn faithfully with a few hundred samples per side, at a
        fraction of the memory.

    Returns
    -------
    (n_gates, ceil(h / s), ceil(w / s)) ndarray of float32, with ``s = 2**level * stride``
        Gate ``a`` at map pixel ``(i, j)``; that pixel covers the
        full-resolution pixels ``[i * s, (i + 1) * s)`` of the region.

    Raises
    ------
    ValueError
        The model has no CoordGate blocks, ``block`` is not one of them, or the
        region does not lie inside the field.

    Examples
    --------
    >>> from napari_coordgate import CGUNet
    >>> model = CGUNet(depth=3, field_shape=(64, 48), base_channels=4)
    >>> gate_maps(model, "down1").shape
    (8, 32, 24)
    """
    blocks = {name: (level, module) for name, level, module in model.gated_blocks()}
    if not blocks:
        raise ValueError(f"a {model.arch} has no CoordGate blocks; gate maps exist for CG U-Nets only")
    if block not in blocks:
        raise ValueError(f"no CoordGate block {block!r} in this model; it has {', '.join(blocks)}")
    level, gate = blocks[block]
    field = tuple(int(s) for s in model.field_shape)
    if field_shape is not None and tuple(int(s) for s in field_shape) != field:
        raise ValueError(f"the model is calibrated for a field of shape {field}, not {tuple(field_shape)}")
    oy, ox = (int(o) for o in offset)
    h, w = (field[0] - oy, field[1] - ox) if shape is None else (int(s) for s in shape)
    if oy < 0 or ox < 0 or h < 1 or w < 1 or oy + h > field[0] or ox + w > field[1]:
        raise ValueError(f"a region of shape ({h}, {w}) at offset ({oy}, {ox}) is not inside the field {field}")
    stride = integer("stride", stride, low=1)
    scale = 2**level * stride
    grid = (-(-h // scale), -(-w // scale))
    offsets = torch.tensor([[oy, ox]], dtype=torch.float32, device=_model_device(model))
    with torch.no_grad():
        g = gate.gate_map(grid, offsets, scale=scale)
    return g[0].float().cpu().numpy()


def local_response(
    model: UNet,
    y: int,
    x: int,
    *,
    size: int = 33,
    offset: Sequence[int] = (0, 0),
    background: float = 0.1,
    amplitude: float = 1.0,
) -> np.ndarray:
    """The network's effective local kernel: its response to a point source.

    The model sees a flat ``background`` with one pixel raised by ``amplitude``
    at image pixel ``(y, x)``; the returned kernel is its output minus its
    output for the background alone, divided by ``amplitude``. For a deblurring
    model this is the position-dependent deconvolution kernel at that point
    (a sharpened spot with negative side lobes where the PSF was wide).

    Parameters
    ----------
    model : UNet, CGUNet or CoordConvUNet
        The model (on any device; left in the mode it was in).
    y, x : int
        Pixel of the image, whose top-left pixel sits at ``offset`` in the field.
    size : int
        Side of the returned kernel (odd, so that the point is its centre pixel).
    offset : (y, x)
        Field position of the image's top-left pixel.
    background, amplitude : float
        Background level and point height, in the model's normalised intensities
        (where 0 and 1 are the image's low and high percentiles).

    Returns
    -------
    (size, size) ndarray of float32
        The kernel centred on ``(y, x)``. Pixels that fall outside the field are 0.

    Notes
    -----
    Only a patch around the point is computed: it reaches ``model.receptive_radius``
    beyond the kernel, and its origin sits on the model's alignment grid, so
    the kernel is the one a whole-image pass would give.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number, got {size}")
    if amplitude == 0:
        raise ValueError("amplitude must not be 0")
    field = tuple(model.field_shape) if model.field_shape else None
    fy, fx = int(y) + int(offset[0]), int(x) + int(offset[1])
    if field is not None and not (0 <= fy < field[0] and 0 <= fx < field[1]):
        raise ValueError(f"pixel ({y}, {x}) at offset {tuple(offset)} is outside the field {field}")
    a = model.alignment
    side = -(-(size + 2 * model.receptive_radius + a) // a) * a  # + a: room to snap to the grid
    starts = []
    for centre, length in zip((fy, fx), field or (None, None), strict=True):
        start = centre - side // 2
        if length is not None:
            start = min(start, length - side)  # stay inside the field where it is large enough
        start = max(start, 0) if length is not None else start
        starts.append(start // a * a)
    sy, sx = starts
    patch = torch.full((2, 1, side, side), float(background))
    patch[0, 0, fy - sy, fx - sx] += float(amplitude)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(patch.to(_model_device(model)), offset=(sy, sx)).float().cpu().numpy()
    finally:
        model.train(was_training)
    response = (out[0, 0] - out[1, 0]) / float(amplitude)
    kernel = np.zeros((size, size), np.float32)
    r = size // 2
    # the kernel window in patch coordinates, clipped to the patch (and the field)
    y0, x0 = fy - sy - r, fx - sx - r
    lim_y = side if field is None else min(side, field[0] - sy)
    lim_x = side if field is None else min(side, field[1] - sx)
    ys, xs = slice(max(y0, 0), min(y0 + size, lim_y)), slice(max(x0, 0), min(x0 + size, lim_x))
    kernel[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = response[ys, xs]
    return kernel
