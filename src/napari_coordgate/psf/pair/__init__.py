"""Calibration from a known sharp pattern and its blurred image: registration, then a PSF per grid node
(:func:`.calibrate.calibrate_from_pair`)."""

from .calibrate import calibrate_from_pair

__all__ = ["calibrate_from_pair"]
