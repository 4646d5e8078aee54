"""Pupil-function PSFs of an aberrated, incoherent imaging system.

The pupil is a disc of radius ``NA / wavelength`` in spatial frequency. Its
phase is a sum of low-order aberrations written over the normalised pupil
radius ``rho`` (0 at the centre, 1 at the rim) and angle ``phi`` measured as
``atan2(f_y, f_x)``, all in waves:

- defocus ``d * rho**2`` (``d`` is the peak wavefront error at the rim);
- astigmatism ``a_cos * rho**2 cos(2 phi) + a_sin * rho**2 sin(2 phi)``;
- coma ``(3 rho**3 - 3 rho) * (c_x cos(phi) + c_y sin(phi))``. The linear
  term is chosen so the mean wavefront slope is zero, which keeps the PSF's
  centroid at the kernel centre (the centroid of an aberrated PSF follows the
  mean wavefront slope). Bead calibration centres beads on their centroids,
  so simulated and measured PSFs share this convention.

The PSF is ``|FFT(pupil)|**2`` computed on a grid finer than the pixels and
summed over each pixel's area, then normalised to unit sum.

References
----------
.. [1] J. W. Goodman, *Introduction to Fourier Optics*, 3rd ed., ch. 6.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

__all__ = ["pupil_psf", "geometric_blur_radius_px"]


def geometric_blur_radius_px(
    *, na: float, wavelength_nm: float, pixel_size_nm: float, defocus: float, astigmatism: float = 0.0, coma: float = 0.0,
    spherical: float = 0.0,
) -> float:
    """Rough radius in pixels of the geometric blur spot of the given aberrations (in waves).

    The transverse ray error is ``(wavelength / NA) * dW/drho``: the largest
    wavefront slope at the rim, in waves per unit pupil radius, times
    ``wavelength / NA``.
    """
    slope = 2 * abs(defocus) + 2 * abs(astigmatism) + 6 * abs(coma) + 12 * abs(spherical)
    return slope * wavelength_nm / (na * pixel_size_nm)


def pupil_psf(
    psf_size: int,
    *,
    na: float,
    wavelength_nm: float,
    pixel_size_nm: float,
    defocus: float = 0.0,
    astigmatism: tuple[float, float] = (0.0, 0.0),
    coma: tuple[float, float] = (0.0, 0.0),
    spherical: float = 0.0,
) -> np.ndarray:
    """PSF of a circular pupil with defocus, astigmatism, coma and spherical aberration, sampled on pixels.

    Parameters
    ----------
    psf_size : int
        Odd side length ``k`` of the returned kernel.
    na : float
        Numerical aperture.
    wavelength_nm, pixel_size_nm : float
        Emission wavelength and pixel size in the object plane, in nm.
    defocus : float
        Peak defocus wavefront error at the pupil rim, in waves.
    astigmatism : (a_cos, a_sin)
        Astigmatism coefficients in waves (``rho**2 cos 2phi`` and ``rho**2 sin 2phi``).
    coma : (c_y, c_x)
        Coma coefficients in waves along y and x.
    spherical : float
        Primary spherical aberration in waves (``6 rho**4 - 6 rho**2 + 1``).

    Returns
    -------
    (k, k) ndarray of float64
        The PSF, unit sum, centred at ``(k // 2, k // 2)``.
    """
    if psf_size < 1 or psf_size % 2 == 0:
        raise ValueError(f"psf_size must be a positive odd integer; got {psf_size}")
    if na <= 0 or wavelength_nm <= 0 or pixel_size_nm <= 0:
        raise ValueError("na, wavelength_nm and pixel_size_nm must be positive")
    cutoff = na / wavelength_nm  # cycles per nm
    # Sub-pixel sampling fine enough for the intensity's band limit (2 NA / lambda).
    oversample = 3
    while pixel_size_nm / oversample > 0.45 / cutoff:
        oversample += 2
    step = pixel_size_nm / oversample
    # Enough pupil samples to follow the phase, enough image samples to hold the PSF.
    slope = 2 * abs(defocus) + 2 * np.hypot(*astigmatism) + 6 * np.hypot(*coma) + 12 * abs(spherical)
    pupil_radius_samples = max(16.0, 4.0 * slope)
    n_fft = sp_fft.next_fast_len(int(max(2 * psf_size * oversample, np.ceil(pupil_radius_samples / (cutoff * step)), 128)))
    freqs = sp_fft.fftfreq(n_fft, d=step)
    fy, fx = np.meshgrid(freqs, freqs, indexing="ij")
    rho = np.hypot(fy, fx) / cutoff
    phi = np.arctan2(fy, fx)
    waves = (
        defocus * rho**2
        + astigmatism[0] * rho**2 * np.cos(2 * phi)
        + astigmatism[1] * rho**2 * np.sin(2 * phi)
        + (3 * rho**3 - 3 * rho) * (coma[1] * np.cos(phi) + coma[0] * np.sin(phi))
        + spherical * (6 * rho**4 - 6 * rho**2 + 1)
    )
    pupil = np.where(rho <= 1.0, np.exp(2j * np.pi * waves), 0.0)
    intensity = np.abs(sp_fft.fftshift(sp_fft.fft2(pupil))) ** 2
    fine = psf_size * oversample
    start = n_fft // 2 - fine // 2
    window = intensity[start : start + fine, start : start + fine]
    binned = window.reshape(psf_size, oversample, psf_size, oversample).sum(axis=(1, 3))
    return binned / binned.sum()
