"""Calibration from a bead slide: detection, the joint fit of every bead, the choice of field model, the
per-node average, the report and its checks (:func:`.calibrate.calibrate_from_beads`)."""

from .calibrate import METHODS, calibrate_from_beads

__all__ = ["calibrate_from_beads", "METHODS"]
