"""The optical parameters a user gives a calibration: checked once, with messages that name the problem."""

from __future__ import annotations

import numpy as np

__all__ = ["check_optics"]


def check_optics(na, wavelength_nm, pixel_size_nm, immersion_index) -> dict | None:
    """The optics as a dict (``na``, ``wavelength_nm``, ``pixel_size_nm``, ``immersion_index``), or None.

    Raises
    ------
    ValueError
        For only some of the three, non-positive or NaN values, an NA of 1.6 or
        more, an immersion index below the NA, or pixels too large to sample the PSF.
    """
    given = [v is not None for v in (na, wavelength_nm, pixel_size_nm)]
    if not any(given):
        if immersion_index is not None:
            raise ValueError("immersion_index needs na, wavelength_nm and pixel_size_nm too")
        return None
    if not all(given):
        raise ValueError("give all three optical parameters (na, wavelength_nm, pixel_size_nm), or none")
    values = {"na": na, "wavelength_nm": wavelength_nm, "pixel_size_nm": pixel_size_nm}
    for key, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{key} must be a positive number; got {value}")
    if na >= 1.6:
        raise ValueError(f"na must be below 1.6; got {na}")
    if immersion_index is not None and not (np.isfinite(immersion_index) and immersion_index >= na):
        raise ValueError(f"immersion_index must be a number at least the NA ({na}); got {immersion_index}")
    cutoff = na * pixel_size_nm / wavelength_nm
    if cutoff > 0.5:
        raise ValueError(
            f"the pixels ({pixel_size_nm:g} nm) are too large for NA {na:g} at {wavelength_nm:g} nm: the PSF is "
            "undersampled; check the pixel size (object plane, in nm)"
        )
    return {**{k: float(v) for k, v in values.items()}, "immersion_index": immersion_index}
