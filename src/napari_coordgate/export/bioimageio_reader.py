"""Old home of :mod:`napari_coordgate.model_files.bioimageio_package`, re-exported for one release."""

from ..model_files.bioimageio_package import is_bioimageio_package, is_exported_package, load_bioimageio_package

__all__ = ["load_bioimageio_package", "is_bioimageio_package", "is_exported_package"]
