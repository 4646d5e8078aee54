"""Global per-plane intensity ranges for chunked deblurring.

A network sees normalised intensities (see ``inference/normalization.py``).
When an image is deblurred chunk by chunk, every chunk of a plane must use the
same normalisation, or chunks disagree at their seams. This module computes the
robust range of each whole plane once, in one pass over the data, and
:func:`~napari_coordgate.scale.deblur_dask` passes it to every chunk as
``intensity_range``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..normalization import DEFAULT_PERCENTILES

__all__ = ["plane_intensity_ranges", "percentiles_from_histogram"]

#: Number of histogram bins used for float data and integers wider than 16 bits.
DEFAULT_BINS = 2**16


def _as_range(low: float, high: float) -> tuple[float, float]:
    low, high = float(low), float(high)
    if not high > low:  # a flat plane: same rule as IntensityScale.from_percentiles
        high = low + 1.0
    return low, high


def percentiles_from_histogram(
    counts: np.ndarray, edges: np.ndarray | None, values: np.ndarray | None, percentiles: Sequence[float]
) -> list[float]:
    """Percentiles (NumPy's default ``linear`` method) of data given as a histogram.

    Parameters
    ----------
    counts : (n,) ndarray of int
        Number of samples in each bin.
    edges : (n + 1,) ndarray, optional
        Bin edges, for data binned in intervals; a sample's value is then
        interpolated inside its bin (approximate).
    values : (n,) ndarray, optional
        The exact value of each bin, for integer data (exact result).
    percentiles : sequence of float
        In ``[0, 100]``.
    """
    cum = np.cumsum(counts)
    n = int(cum[-1])

    def order_statistic(k: int) -> float:
        j = int(np.searchsorted(cum, k, side="right"))
        if values is not None:
            return float(values[j])
        before = cum[j - 1] if j else 0
        frac = (k - before + 0.5) / counts[j]
        return float(edges[j] + frac * (edges[j + 1] - edges[j]))

    out = []
    for q in percentiles:
        v = q / 100.0 * (n - 1)
        lo = int(np.floor(v))
        hi = min(lo + 1, n - 1)
        a, b = order_statistic(lo), order_statistic(hi)
        out.append(a + (v - lo) * (b - a))
    return out


def _integer_bins(dtype: np.dtype) -> tuple[int, int] | None:
    """(offset, n_bins) for integer types small enough for an exact bincount."""
    if dtype.kind == "b":
        return 0, 2
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        return -int(info.min), int(info.max) - int(info.min) + 1
    return None


def _bincount(block: np.ndarray, offset: int, n_bins: int) -> np.ndarray:
    return np.bincount((block.astype(np.int64).ravel() + offset), minlength=n_bins)


def _histogram(block: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    return np.histogram(block.ravel(), bins=bins, range=(low, high))[0]


def _check_finite(low: float, high: float) -> None:
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("image contains NaN or infinite values")


def plane_intensity_ranges(
    image,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    bins: int = DEFAULT_BINS,
) -> np.ndarray:
    """The ``percentiles`` of every ``(Y, X)`` plane of an image, as ``(low, high)`` rows.

    Parameters
    ----------
    image : (..., Y, X) ndarray or dask array
        The data. A NumPy array is processed in memory; a dask array in one
        chunked pass (on whatever dask scheduler is active).
    percentiles : (low, high)
        Percentiles mapped to 0 and 1; normally ``model.percentiles``.
    bins : int
        Histogram resolution for float data and integers wider than 16 bits.

    Returns
    -------
    (n_planes, 2) ndarray of float64
        Planes in C order of the leading axes. A flat plane gets ``high = low + 1``.

    Notes
    -----
    For NumPy input the result is exactly ``np.percentile`` of each plane, as
    :func:`~napari_coordgate.deblur` computes it by default. For dask input,
    8- and 16-bit integer (and boolean) data are counted exactly, so the result
    is again exact. Float data and wider integers are binned into ``bins`` bins
    between the plane's minimum and maximum, which bounds the error by
    ``(max - min) / bins`` (1.5e-5 of the full range by default).
    """
    if not hasattr(image, "dask"):
        arr = np.asarray(image)
        planes = arr.reshape(-1, *arr.shape[-2:])
        ranges = []
        for plane in planes:
            low, high = np.percentile(plane, list(percentiles))
            _check_finite(low, high)
            ranges.append(_as_range(low, high))
        return np.array(ranges, dtype=np.float64)

    import dask
    from dask import delayed

    arr = image
    planes = arr.reshape(-1, *arr.shape[-2:]).rechunk({0: 1})
    n_planes = planes.shape[0]
    int_bins = _integer_bins(np.dtype(arr.dtype))
    blocks = [planes[p].to_delayed().ravel() for p in range(n_planes)]
    if int_bins is not None:
        offset, n_bins = int_bins
        counts = dask.compute(*[delayed(sum)([delayed(_bincount)(b, offset, n_bins) for b in bl]) for bl in blocks])
        values = np.arange(n_bins, dtype=np.float64) - offset
        return np.array(
            [_as_range(*percentiles_from_histogram(c, None, values, percentiles)) for c in counts], dtype=np.float64
        )
    extrema = dask.compute(*[(planes[p].min(), planes[p].max()) for p in range(n_planes)])
    extrema = [(float(lo), float(hi)) for lo, hi in extrema]
    for lo, hi in extrema:
        _check_finite(lo, hi)
    hists = dask.compute(
        *[
            delayed(sum)([delayed(_histogram)(b, lo, hi if hi > lo else lo + 1.0, bins) for b in bl])
            for bl, (lo, hi) in zip(blocks, extrema)
        ]
    )
    ranges = []
    for h, (lo, hi) in zip(hists, extrema):
        if not hi > lo:
            ranges.append(_as_range(lo, lo))
            continue
        edges = np.linspace(lo, hi, bins + 1)
        ranges.append(_as_range(*percentiles_from_histogram(h, edges, None, percentiles)))
    return np.array(ranges, dtype=np.float64)
