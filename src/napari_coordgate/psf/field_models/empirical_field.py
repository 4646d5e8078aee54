"""An empirical PSF field model for unknown optics: PSF pixels that are low-order polynomials of the field position.

Each PSF pixel value is a polynomial of the normalised field position
``(u, v)`` (see :mod:`~napari_coordgate.psf.field_models.polynomials`), fitted jointly to all beads:
the approach astronomy's PSFEx takes for stars across a detector. The
polynomial order is chosen by the caller (by held-out-bead likelihood in
:func:`.calibrate_from_beads`).

Kernels are rendered with their intensity centroid at the window centre
plus a sub-pixel shift (Fourier shift), so the bead positions fitted with
this model are the centroids of the bead images (see :mod:`~napari_coordgate.psf.centroid`).
"""

from __future__ import annotations

import numpy as np
import torch

from .polynomials import monomials, n_monomials

__all__ = ["EmpiricalFieldModel", "fourier_shift"]


def fourier_shift(kernels: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each ``(k, k)`` kernel by a sub-pixel ``(dy, dx)`` (circularly, by a Fourier phase ramp).

    Parameters
    ----------
    kernels : (n, k, k) tensor
        Kernels with room around the PSF (the shifted content wraps around).
    shift : (n, 2) tensor
        Shifts in pixels.

    Returns
    -------
    (n, k, k) tensor
    """
    k = kernels.shape[-1]
    fy = torch.fft.fftfreq(k, dtype=kernels.dtype)[:, None]
    fx = torch.fft.rfftfreq(k, dtype=kernels.dtype)[None, :]
    ramp = torch.exp(-2j * torch.pi * (fy[None] * shift[:, 0, None, None] + fx[None] * shift[:, 1, None, None]))
    return torch.fft.irfft2(torch.fft.rfft2(kernels) * ramp, s=(k, k))


class EmpiricalFieldModel(torch.nn.Module):
    """PSFs whose pixels are polynomials of the field position.

    Parameters
    ----------
    window : int
        Odd side of the rendered windows.
    psf_size : int
        Odd side of the PSF itself (``<= window``; the rest is room to shift).
    order : int
        Polynomial order (0: one PSF for the whole field).
    start : (psf_size, psf_size) ndarray
        Starting PSF (e.g. the mean of centred bead patches).
    """

    def __init__(self, window: int, psf_size: int, order: int, start: np.ndarray) -> None:
        super().__init__()
        if psf_size > window or psf_size % 2 == 0 or window % 2 == 0:
            raise ValueError(f"psf_size and window must be odd with psf_size <= window; got {psf_size}, {window}")
        self.window, self.psf_size, self.order = int(window), int(psf_size), int(order)
        coefficients = torch.zeros((n_monomials(order), psf_size, psf_size), dtype=torch.float64)
        coefficients[0] = torch.as_tensor(start / max(float(start.sum()), 1e-12))
        self.coefficients = torch.nn.Parameter(coefficients)

    def grow(self, order: int) -> EmpiricalFieldModel:
        """A model of a higher order that starts where this one is (new terms zero)."""
        bigger = EmpiricalFieldModel(self.window, self.psf_size, order, np.ones((self.psf_size, self.psf_size)))
        with torch.no_grad():
            bigger.coefficients.zero_()
            n = min(self.coefficients.shape[0], bigger.coefficients.shape[0])
            bigger.coefficients[:n] = self.coefficients[:n]
        return bigger

    def centred_kernels(self, uv: torch.Tensor) -> torch.Tensor:
        """Unit-sum PSFs at ``uv`` as fitted, not yet re-centred: ``(n, k, k)``.

        The model is linear, as in PSFEx: small negative pixels (noise) are
        allowed while fitting and clipped when the field is sampled.
        """
        raw = torch.einsum("nm,myx->nyx", monomials(uv, self.order), self.coefficients)
        return raw / raw.sum(dim=(-2, -1), keepdim=True)

    def kernels(self, uv: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """PSFs at ``uv`` in windows, their centroids at the window centre plus ``shift``: ``(n, window, window)``
        float64, each summing to one (the arguments as for :meth:`.PupilFieldModel.kernels`)."""
        psfs = self.centred_kernels(uv)
        k, pad = self.psf_size, (self.window - self.psf_size) // 2
        grid = torch.arange(k, dtype=psfs.dtype) - k // 2
        centroid = torch.stack(
            [(psfs * grid[None, :, None]).sum(dim=(1, 2)), (psfs * grid[None, None, :]).sum(dim=(1, 2))], dim=1
        )
        padded = torch.nn.functional.pad(psfs, (pad, pad, pad, pad))
        return fourier_shift(padded, shift - centroid)

    def roughness(self) -> torch.Tensor:
        """Sum of squared higher-order coefficients (a small ridge keeps empty corners from running away)."""
        return (self.coefficients[1:] ** 2).sum()
