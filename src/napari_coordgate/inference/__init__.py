"""Applying trained models to images: normalisation, tiling, deblurring."""

from .deblur import DeblurProgress, check_image, deblur, iter_deblur
from .normalization import DEFAULT_PERCENTILES, IntensityScale

__all__ = ["deblur", "iter_deblur", "DeblurProgress", "check_image", "IntensityScale", "DEFAULT_PERCENTILES"]
