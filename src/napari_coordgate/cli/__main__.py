"""``python -m napari_coordgate.cli`` runs the ``coordgate`` command."""

import sys

from .main import main

sys.exit(main())
