"""Deblurring data larger than memory, chunk by chunk, with dask.

Needs the ``scale`` extra (``dask[array]``, ``distributed``, ``zarr``); nothing
here is imported by ``import napari_coordgate``.
"""

from .dask_deblur import deblur_dask, plan_chunks
from .intensity import plane_intensity_ranges

__all__ = ["deblur_dask", "plan_chunks", "plane_intensity_ranges"]
