"""Old home of :mod:`napari_coordgate.model_files`, re-exported for one release."""

from .model_files import FORMAT_VERSION, is_model_file, load_model, read_model_info, save_model

__all__ = ["save_model", "load_model", "read_model_info", "is_model_file", "FORMAT_VERSION"]
