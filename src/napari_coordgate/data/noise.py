"""Poisson-Gaussian camera noise: simulation and estimation.

Noise model
-----------
A pixel whose noise-free value is ``v`` (in units where 1.0 means ``photons``
expected photo-electrons) is recorded as::

    recorded = (Poisson(photons * v) + Normal(0, read_noise**2)) / photons

so its variance is ``v / photons + (read_noise / photons)**2``: shot noise that
grows with the signal plus a constant read-noise floor. ``read_noise`` is in
electrons (photons). A camera adds a gain (ADU per electron) and an offset
(the dark level); :func:`estimate_noise` measures both from one image and
expresses the result in the units above, with 1.0 at the image's bright level
(the upper normalisation percentile), so that the estimate can be used
directly for training data normalised the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.restoration import estimate_sigma

from ..normalization import DEFAULT_PERCENTILES
from ..validation import number

__all__ = ["add_poisson_gaussian", "add_poisson_gaussian_torch", "estimate_noise", "resolve_noise", "DEFAULT_NOISE"]

#: Noise used when nothing is known about the camera: a moderately bright
#: fluorescence image (200 photons at the bright level, 2 e- read noise).
DEFAULT_NOISE = {"photons": 200.0, "read_noise": 2.0}

#: Photon count reported when no shot noise can be detected.
_MAX_PHOTONS = 1e6


def add_poisson_gaussian(
    image: np.ndarray,
    photons: float,
    read_noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Add Poisson (shot) and Gaussian (read) noise to a noise-free image.

    Parameters
    ----------
    image : ndarray
        Noise-free intensities, scaled so that 1.0 means ``photons`` expected
        photons. Negative values are treated as 0 for the shot noise.
    photons : float
        Expected photo-electrons at intensity 1.0 (> 0). Higher is cleaner.
    read_noise : float
        Standard deviation of the Gaussian read noise, in electrons (>= 0).
    rng : numpy.random.Generator, optional
        Source of randomness (a fresh unseeded one if omitted).

    Returns
    -------
    ndarray of float32
        The noisy image, same shape and units as ``image``.
    """
    photons, read_noise = float(photons), float(read_noise)
    if not photons > 0 or not np.isfinite(photons):
        raise ValueError(f"photons must be a positive number, got {photons}")
    if not read_noise >= 0 or not np.isfinite(read_noise):
        raise ValueError(f"read_noise must be >= 0, got {read_noise}")
    rng = np.random.default_rng() if rng is None else rng
    expected = np.clip(np.asarray(image, dtype=np.float64), 0.0, None) * photons
    counts = rng.poisson(expected).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, counts.shape).astype(np.float32)
    counts *= np.float32(1.0 / photons)
    return counts


def add_poisson_gaussian_torch(
    image: torch.Tensor, photons: float, read_noise: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`add_poisson_gaussian` for a float tensor, on the tensor's device
    (much faster than NumPy on a GPU). ``generator`` must live on that device."""
    photons, read_noise = float(photons), float(read_noise)
    if not photons > 0 or not read_noise >= 0:
        raise ValueError(f"need photons > 0 and read_noise >= 0, got {photons} and {read_noise}")
    counts = torch.poisson(image.float().clamp(min=0.0) * photons, generator=generator)
    if read_noise > 0:
        counts += read_noise * torch.randn(counts.shape, generator=generator, device=counts.device)
    return counts * (1.0 / photons)


def _variance_curve(planes: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Local mean and robust noise variance per intensity bin.

    The noise is measured by the diagonal second difference of each 2 x 2
    block, ``(a - b - c + d) / 2``, whose variance is ``sigma**2`` for
    independent noise and which nearly cancels a smooth (blurred) signal.
    Pixels are grouped by their 7 x 7 local mean and each group's variance is
    taken from its median absolute deviation, which ignores the few pixels on
    sharp structure.
    """
    residuals, means = [], []
    for x in planes:
        r = 0.5 * (x[1:-1, 1:-1] - x[2:, 1:-1] - x[1:-1, 2:] + x[2:, 2:])
        m = ndimage.uniform_filter(x, 7, mode="reflect")[1:-1, 1:-1]
        residuals.append(r.ravel())
        means.append(m.ravel())
    r, m = np.concatenate(residuals), np.concatenate(means)
    edges = np.unique(np.percentile(m, np.linspace(0.5, 99.5, n_bins + 1)))
    which = np.digitize(m, edges[1:-1])
    level, variance = [], []
    for b in range(len(edges) - 1):
        rb = r[which == b]
        if rb.size < 50:
            continue
        mad = np.median(np.abs(rb - np.median(rb)))
        level.append(m[which == b].mean())
        variance.append((1.4826 * mad) ** 2)
    return np.asarray(level), np.asarray(variance)


def estimate_noise(
    image: np.ndarray,
    *,
    offset: float | None = None,
    percentile: float = DEFAULT_PERCENTILES[1],
    n_bins: int = 24,
) -> dict:
    """Estimate Poisson-Gaussian noise parameters from one (calibration) image.

    Parameters
    ----------
    image : (Y, X) or (N, Y, X) array_like
        A raw camera image (or a few) of a specimen, in any linear units (ADU).
        It should contain a range of intensities; a blurred image is ideal.
    offset : float, optional
        The camera's dark level (value at zero photons). If omitted, the mean
        of the darkest regions is used, so the reported ``read_noise`` then
        also holds their background shot noise (the noise floor).
    percentile : float
        The image's bright level, ``percentile`` of its 3 x 3 local mean, is
        what 1.0 means in the returned ``photons``; the default matches the
        upper percentile of the model normalisation.
    n_bins : int
        Number of intensity groups for the variance-mean fit.

    Returns
    -------
    dict
        ``photons``: photo-electrons at the bright level; ``read_noise``: in
        electrons; ``gain``: image units per electron; ``offset``: dark level
        used. ``photons`` and ``read_noise`` are ready for
        :func:`add_poisson_gaussian` and ``make_training_set(noise=...)``.

    Notes
    -----
    The variance of the noise grows linearly with the mean,
    ``var = gain * (mean - offset) + gain**2 * read_noise**2``. The line is
    fitted to (local mean, robust local variance) pairs (see Foi et al., IEEE
    TIP 17, 2008, for the idea). When no shot noise is detectable (slope
    <= 0), the noise is treated as Gaussian with the standard deviation from
    :func:`skimage.restoration.estimate_sigma`, and ``photons`` is capped at
    1e6.
    """
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim not in (2, 3) or min(arr.shape[-2:]) < 16:
        raise ValueError(f"calibration image must be (Y, X) or (N, Y, X) with sides >= 16, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("calibration image contains NaN or infinite values")
    planes = arr.reshape(-1, *arr.shape[-2:])
    level, variance = _variance_curve(planes, n_bins)
    bright = float(np.percentile(ndimage.uniform_filter(planes, (1, 3, 3)), percentile))
    if offset is None:
        offset = float(level.min()) if level.size else float(planes.min())
    gain, intercept = 0.0, 0.0
    if level.size >= 3 and np.ptp(level) > 0:
        weights = 1.0 / np.maximum(variance, 1e-12 * max(variance.max(), 1e-30))
        gain, intercept = np.polyfit(level, variance, 1, w=weights)
    span = bright - offset
    if not span > 0:
        raise ValueError("calibration image has no signal above its dark level; it cannot calibrate the noise")
    if gain > 0 and np.isfinite(gain):
        photons = span / gain
        floor = max(gain * offset + intercept, 0.0)  # variance at zero photons
        read_noise = np.sqrt(floor) / gain
        if photons > _MAX_PHOTONS:  # keep the relative noise, cap the count
            read_noise *= _MAX_PHOTONS / photons
            photons, gain = _MAX_PHOTONS, span / _MAX_PHOTONS
    else:
        sigma = float(np.mean([estimate_sigma(p) for p in planes]))
        photons = _MAX_PHOTONS
        gain = span / photons
        read_noise = sigma / gain
    return {"photons": float(photons), "read_noise": float(read_noise), "gain": float(gain), "offset": float(offset)}


def resolve_noise(noise, calibration_image: np.ndarray | None = None) -> dict | None:
    """Turn a ``noise`` setting into ``{"photons": ..., "read_noise": ...}`` (or None).

    Parameters
    ----------
    noise : "auto", float, dict or None
        ``"auto"``: :func:`estimate_noise` of ``calibration_image`` if given,
        else :data:`DEFAULT_NOISE`. A number: photons at 1.0, with the default
        read noise. A dict with ``photons`` and optionally ``read_noise``.
        None: no noise.
    calibration_image : ndarray, optional
        A raw image from the instrument (for ``"auto"``).
    """
    if noise is None:
        return None
    if isinstance(noise, str):
        if noise != "auto":
            raise ValueError(f"noise must be 'auto', a photon count, a dict or None; got {noise!r}")
        if calibration_image is None:
            return dict(DEFAULT_NOISE)
        found = estimate_noise(calibration_image)
        return {"photons": found["photons"], "read_noise": found["read_noise"]}
    if isinstance(noise, dict):
        if set(noise) - {"photons", "read_noise"} or "photons" not in noise:
            raise ValueError(f"noise dict needs 'photons' (and optionally 'read_noise'); got keys {sorted(noise)}")
        photons, read_noise = noise["photons"], noise.get("read_noise", 0.0)
    else:
        photons, read_noise = noise, DEFAULT_NOISE["read_noise"]
    # Below a thousandth of a photon at the bright level there is no signal, and 1 / photons overflows float32.
    return {"photons": number("noise photons", photons, low=1e-3, high=1e12),
            "read_noise": number("noise read_noise", read_noise, low=0, high=1e6)}
