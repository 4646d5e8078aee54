"""The plugin runs on the Qt binding napari recommends (Qt 6): no deprecation notice at start."""

import qtpy


def test_the_qt_binding_is_qt6():
    assert qtpy.QT6, f"napari deprecates Qt 5 bindings; the napari extra installs PyQt6, found {qtpy.API_NAME}"
