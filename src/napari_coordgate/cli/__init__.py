"""The ``coordgate`` command line: calibrate, train, deblur, demo, info.

Run ``coordgate --help``; :func:`main` is the entry point.
"""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
