"""Exports of trained models to other ecosystems.

:func:`export_bioimageio` writes a BioImage.IO model package (spec 0.5.x) and
:func:`load_bioimageio_package` (from :mod:`napari_coordgate.model_files`, re-exported here) reads one
back (``load_model("pkg.zip")`` calls it). Importing this package does not import bioimageio: only the export does,
and it needs the ``[bioimageio]`` extra.
"""

from .bioimageio import PackageExistsError, export_bioimageio
from ..model_files.bioimageio_package import is_bioimageio_package, is_exported_package, load_bioimageio_package

__all__ = ["export_bioimageio", "load_bioimageio_package", "is_bioimageio_package", "is_exported_package",
           "PackageExistsError"]
