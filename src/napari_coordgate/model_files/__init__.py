"""Model files: the header schema, our ``.safetensors`` files, and reading back the BioImage.IO packages we export.

- :mod:`.header`: ``FORMAT_VERSION`` and the schema every header is checked against;
- :mod:`.state`: building the described model and loading its weights (strict, finite);
- :mod:`.safetensors_file`: saving and reading our own files;
- :mod:`.bioimageio_package`: reading a package written by :func:`napari_coordgate.export.export_bioimageio`;
- :mod:`.load`: :func:`load_model` for either.
"""

from .bioimageio_package import (
    INSTALL_EXTRA,
    WRAPPER_IMPORT,
    is_bioimageio_package,
    is_exported_package,
    load_bioimageio_package,
)
from .header import FORMAT_VERSION, MAX_PARAMETERS, check_header
from .load import load_model
from .safetensors_file import is_model_file, read_model_info, save_model
from .state import model_from_state

__all__ = ["save_model", "load_model", "read_model_info", "is_model_file", "FORMAT_VERSION", "MAX_PARAMETERS",
           "check_header", "model_from_state", "load_bioimageio_package", "is_bioimageio_package",
           "is_exported_package", "WRAPPER_IMPORT", "INSTALL_EXTRA"]
