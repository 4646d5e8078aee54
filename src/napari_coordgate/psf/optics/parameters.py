"""The optical parameters a user gives a calibration: checked once, with messages that name the problem."""

from __future__ import annotations

from ...validation import number

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
    na = number("na", na, low=0, high=1.6, low_open=True, high_open=True)
    values = {"na": na, "wavelength_nm": number("wavelength_nm", wavelength_nm, low=0, low_open=True),
              "pixel_size_nm": number("pixel_size_nm", pixel_size_nm, low=0, low_open=True)}
    if immersion_index is not None:
        immersion_index = number("immersion_index", immersion_index, low=1.0, high=2.0)
        if immersion_index < na:
            raise ValueError(f"immersion_index must be at least the NA ({na:g}); got {immersion_index:g}")
    cutoff = na * pixel_size_nm / wavelength_nm
    if cutoff > 0.5:
        raise ValueError(
            f"the pixels ({pixel_size_nm:g} nm) are too large for NA {na:g} at {wavelength_nm:g} nm: the PSF is "
            "undersampled; check the pixel size (object plane, in nm)"
        )
    return {**{k: float(v) for k, v in values.items()}, "immersion_index": immersion_index}
