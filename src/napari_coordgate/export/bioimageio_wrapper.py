"""The torch module a BioImage.IO package of a napari-coordgate model runs.

BioImage.IO consumers (bioimageio.core, deepImageJ, ilastik, ...) hand a model
the raw image and expect the result in the same units. A napari-coordgate
network works on normalised intensities, so :class:`CoordGateBioImageIO` wraps
it with the exact normalisation :func:`napari_coordgate.deblur` applies
(:meth:`~napari_coordgate.inference.normalization.IntensityScale.from_percentiles`):
the input's low and high percentiles go to 0 and 1 (a flat image gets a unit
range), the network runs with the image's top-left pixel at field position
``(0, 0)``, and its output is mapped back with the inverse transform.

The module imports torch and this package only (not bioimageio), so the
package's ``pytorch_state_dict`` weights can name it as their architecture:
``from napari_coordgate.export.bioimageio_wrapper import CoordGateBioImageIO``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..normalization import DEFAULT_PERCENTILES
from ..models.unet import UNet, build_model
from ..validation import check_percentiles

__all__ = ["CoordGateBioImageIO"]


def _linear_index(q: float, n: int) -> tuple[int, int, float]:
    """NumPy's ``method="linear"`` percentile position among ``n`` sorted values:
    the two neighbouring indices and the interpolation weight of the second."""
    virtual = (q / 100.0) * (n - 1)
    below = min(max(int(math.floor(virtual)), 0), n - 1)
    above = min(below + 1, n - 1)
    return below, above, float(virtual - below)


class CoordGateBioImageIO(nn.Module):
    """A napari-coordgate model that takes and returns raw intensities.

    Parameters
    ----------
    config : dict
        The model's architecture, :attr:`UNet.config` (``arch``, ``depth``,
        ``base_channels``, ``field_shape``, ...). ``field_shape`` is required:
        the input must be exactly one full field.
    percentiles : (low, high)
        Percentiles of the input mapped to 0 and 1 (``model.percentiles``).

    Notes
    -----
    ``forward(x)`` takes a ``(B, 1, H, W)`` tensor with ``(H, W)`` equal to
    ``field_shape`` and returns a float32 tensor of the same shape. Each sample
    is normalised with its own percentiles, as :func:`napari_coordgate.deblur`
    does per plane. The computation is float32 (percentile interpolation in
    float64, as NumPy does), and the network's gate cache is off, so the
    module can be traced with :func:`torch.jit.trace`.
    """

    def __init__(self, config: Mapping, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> None:
        super().__init__()
        self.net: UNet = build_model(dict(config))
        if self.net.field_shape is None:
            raise ValueError("a BioImage.IO model needs the field_shape (H, W) of its calibrated field in its config")
        if hasattr(self.net, "set_gate_cache"):
            self.net.set_gate_cache(0)
        low, high = check_percentiles(percentiles)
        self.percentiles = (float(low), float(high))
        self.net.percentiles = self.percentiles
        self.field_shape = tuple(int(s) for s in self.net.field_shape)
        n = self.field_shape[0] * self.field_shape[1]
        self._low_at = _linear_index(self.percentiles[0], n)
        self._high_at = _linear_index(self.percentiles[1], n)
        self.eval()

    @staticmethod
    def _percentile(values: torch.Tensor, at: tuple[int, int, float]) -> torch.Tensor:
        """Per-row percentile of sorted float32 ``values`` (``(B, n)``), as float64
        ``(B, 1, 1, 1)``, interpolated like NumPy's ``_lerp``."""
        below, above, gamma = at
        a = values[:, below].to(torch.float64)
        b = values[:, above].to(torch.float64)
        diff = b - a
        out = a + diff * gamma if gamma < 0.5 else b - diff * (1.0 - gamma)
        return out.reshape(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != self.field_shape:
            raise ValueError(f"expected a (B, 1, {self.field_shape[0]}, {self.field_shape[1]}) tensor (one full "
                             f"calibrated field), got shape {tuple(x.shape)}")
        x = x.to(torch.float32)
        ordered = torch.sort(x.reshape(x.shape[0], -1), dim=1).values
        low = self._percentile(ordered, self._low_at)
        high = self._percentile(ordered, self._high_at)
        high = torch.where(high > low, high, low + 1.0)  # flat image: unit range
        low32 = low.to(torch.float32)
        span32 = (high - low).to(torch.float32)
        y = self.net((x - low32) / span32)
        return (y.to(torch.float32) * span32 + low32).to(torch.float32)
