"""Old home of :mod:`napari_coordgate.normalization`, re-exported for one release."""

from ..normalization import DEFAULT_PERCENTILES, IntensityScale

__all__ = ["DEFAULT_PERCENTILES", "IntensityScale"]
