"""Saving the current calibration from napari (File > Save Selected Layers...).

The PSF montage layer that the Calibration widget (or the reader) shows
carries its :class:`~napari_coordgate.PSFField` in its metadata; saving that
layer as ``.npz`` writes the field in the file format that ``coordgate``,
:meth:`PSFField.load` and the reader open.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._layers import PSF_FIELD_KEY

__all__ = ["write_psf_field"]


def write_psf_field(path: str, data, meta: dict) -> list[str]:
    """Write the PSF field behind a PSF montage layer to ``path`` (.npz)."""
    field = (meta.get("metadata") or {}).get(PSF_FIELD_KEY)
    if field is None:
        raise ValueError(f"napari-coordgate saves only its 'PSF field' layer as .npz; the layer "
                         f"{meta.get('name', '')!r} is not one (select the PSF field layer, or save this one as .tif)")
    path = Path(os.fspath(path))
    if path.suffix.lower() != ".npz":
        path = path.with_suffix(".npz")
    field.save(path)
    return [str(path)]
