"""PSF fields and calibration (Qt-free)."""
