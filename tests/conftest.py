"""Shared set-up for every test.

The folders under ``tests/`` mirror the package (``tests/psf/beads`` tests
``napari_coordgate.psf.beads``, ``tests/_qt`` the widgets); package-wide tests
sit at the top. The folders have no ``__init__.py``: pytest imports each test
file by its bare name, so every test file name must be unique in the whole tree.

Helper modules at the top of ``tests/`` (``_psf_checks``) are imported by bare
name from any folder, so this folder is put on ``sys.path`` here, whatever
``--import-mode`` is used.
"""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
