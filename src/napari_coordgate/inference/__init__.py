"""Applying trained models to images: normalisation, tiling, deblurring."""

from .deblur import DeblurProgress, check_image, deblur, iter_deblur
from ..normalization import DEFAULT_PERCENTILES, IntensityScale
from .output_dtype import OUTPUT_DTYPES, OutputCast, output_dtype_for

__all__ = ["deblur", "iter_deblur", "DeblurProgress", "check_image", "IntensityScale", "DEFAULT_PERCENTILES",
           "OutputCast", "output_dtype_for", "OUTPUT_DTYPES"]
