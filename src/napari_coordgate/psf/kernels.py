"""Single PSF kernels: normalising, measuring the width, cleaning a measured kernel's tails."""

from __future__ import annotations

import numpy as np

__all__ = ["unit_sum", "psf_fwhm", "clean_psf_tails"]


def unit_sum(kernel: np.ndarray) -> np.ndarray:
    """Return ``kernel`` scaled to sum to one; raise for a kernel with no signal."""
    total = float(kernel.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError("a PSF must have a positive, finite sum")
    return kernel / total


def psf_fwhm(psf: np.ndarray, subsample: int = 5, *, keep_negative: bool = False) -> float:
    """Width of a 2D PSF in pixels, as the FWHM of the Gaussian it is equivalent to.

    Measured as the diameter of the circle around the PSF's centroid that
    encloses half of its energy. For a Gaussian this equals the full width at
    half maximum; unlike a half-maximum threshold it stays meaningful for
    defocused PSFs (rings, discs with a bright central spot). Each pixel is
    treated as a uniform square split into ``subsample**2`` parts.

    Parameters
    ----------
    psf : (k, k) ndarray
        The PSF; negative values are ignored (unless ``keep_negative``).
    subsample : int
        Sub-pixel sampling used to measure the enclosed energy.
    keep_negative : bool
        Count negative values in the enclosed energy instead of ignoring them
        (the centroid still ignores them). For a measured, background-subtracted
        patch: its zero-mean noise then adds nothing on average, where ignoring
        the negative half of it inflates the width of a faint bead in a large patch.

    Returns
    -------
    float
        The width in pixels (NaN for a PSF with no positive values, or with
        ``keep_negative`` one whose values do not sum to more than zero).
    """
    values = np.asarray(psf, dtype=np.float64)
    weights = np.clip(values, 0, None)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    rows, cols = np.indices(weights.shape)
    cy, cx = (weights * rows).sum() / total, (weights * cols).sum() / total
    counted = values if keep_negative else weights
    if counted.sum() <= 0:
        return float("nan")
    fine = np.repeat(np.repeat(counted, subsample, axis=0), subsample, axis=1).ravel()
    sub_rows, sub_cols = ((np.arange(n * subsample) + 0.5) / subsample - 0.5 for n in weights.shape)
    fy, fx = np.meshgrid(sub_rows - cy, sub_cols - cx, indexing="ij")
    radius = np.hypot(fy, fx).ravel()
    order = np.argsort(radius)
    enclosed = np.cumsum(fine[order]) / fine.sum()
    if keep_negative:  # not monotonic: the first radius that encloses half
        first = int(np.argmax(enclosed >= 0.5))
        return float(2.0 * radius[order][first])
    return float(2.0 * np.interp(0.5, enclosed, radius[order]))


def clean_psf_tails(psfs: np.ndarray, noise_floor: float = 2.0) -> np.ndarray:
    """Remove leftover background and noise from measured PSFs.

    The median of the two outermost rings of each kernel (where a kernel of
    the right size is close to zero) is subtracted, and values below
    ``noise_floor`` times the noise measured there (robust standard
    deviation) are set to zero, which also clips negatives.

    Parameters
    ----------
    psfs : (..., k, k) ndarray
        Measured kernels.
    noise_floor : float
        Threshold in units of the border noise.

    Returns
    -------
    (..., k, k) ndarray
        Non-negative kernels (not renormalised). A kernel with nothing above
        the threshold is only clipped at zero.
    """
    ring = np.ones(psfs.shape[-2:], bool)
    ring[2:-2, 2:-2] = False
    border = psfs[..., ring]
    pedestal = np.median(border, axis=-1)
    noise = 1.4826 * np.median(np.abs(border - pedestal[..., None]), axis=-1)
    cleaned = psfs - pedestal[..., None, None]
    cleaned[cleaned < noise_floor * noise[..., None, None]] = 0.0
    # A kernel lost in its own noise keeps its clipped values rather than vanishing.
    empty = cleaned.sum(axis=(-2, -1)) <= 0
    cleaned[empty] = np.clip(psfs[empty], 0, None)
    return cleaned
