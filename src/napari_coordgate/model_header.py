"""Old home of :mod:`napari_coordgate.model_files.header`, re-exported for one release."""

from .model_files.header import FORMAT_VERSION, MAX_PARAMETERS, check_header

__all__ = ["check_header", "MAX_PARAMETERS", "FORMAT_VERSION"]
