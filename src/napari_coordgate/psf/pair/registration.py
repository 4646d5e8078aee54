"""Registering a known sharp pattern to the instrument's blurred image of it.

The blurred image defines the frame (the field of the instrument). The sharp
pattern is resampled into that frame with a scale (optional, found by a
search over scales) and a sub-pixel shift (cross-correlation). A
registration is accepted when the aligned pattern and the blurred image agree
at low spatial frequencies, which blur leaves intact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from ...cancellation import check_cancelled

__all__ = ["Registration", "register_pattern", "estimate_scale", "taper_window", "MIN_REGISTRATION_SCORE"]

#: Smallest low-pass correlation between aligned pattern and blurred image accepted as a registration.
MIN_REGISTRATION_SCORE = 0.3
_SCORE_SMOOTHING = 4.0


@dataclass
class Registration:
    """Result of :func:`register_pattern`.

    Attributes
    ----------
    aligned : (H, W) ndarray
        The sharp pattern resampled into the blurred image's frame.
    valid : (H, W) ndarray of bool
        Pixels whose source lies inside the sharp pattern.
    scale : float
        Sharp-pattern pixels per blurred-image pixel.
    shift : (2,) ndarray
        Shift ``(y, x)`` in blurred-image pixels.
    score : float
        Correlation of the low-pass filtered images after alignment.
    """

    aligned: np.ndarray
    valid: np.ndarray
    scale: float
    shift: np.ndarray
    score: float


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    y0, x0 = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[y0 : y0 + size, x0 : x0 + size]


def taper_window(shape: tuple[int, int], alpha: float) -> np.ndarray:
    """2D Tukey window (flat centre, cosine edges over ``alpha`` of each side)."""
    # Imported here: scipy.signal is slow to import and only calibration needs it.
    from scipy.signal.windows import tukey

    return np.outer(tukey(shape[0], alpha), tukey(shape[1], alpha))


def _tapered(image: np.ndarray) -> np.ndarray:
    return (image - image.mean()) * taper_window(image.shape, 0.25)


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor x factor`` pixels (the edges that do not fill a block are dropped)."""
    if factor == 1:
        return image
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _correlation_peak(reference: np.ndarray, moving: np.ndarray) -> float:
    """Largest normalised circular cross-correlation of two tapered, zero-mean images."""
    product = np.fft.rfft2(reference) * np.conj(np.fft.rfft2(moving))
    peak = np.fft.irfft2(product, s=reference.shape).max()
    return float(peak / (np.linalg.norm(reference) * np.linalg.norm(moving) + 1e-30))


def estimate_scale(sharp: np.ndarray, blurred: np.ndarray, scale_range: tuple[float, float] = (0.85, 1.18)) -> float:
    """Sharp-pattern pixels per blurred-image pixel, by a search over scales.

    Both images are reduced to about 256 pixels across; for each scale in
    ``scale_range`` (steps of about 0.8 %) the pattern is resampled and the
    peak of its normalised cross-correlation with the blurred image
    recorded. The best scale is refined with a parabola through the peak.
    """
    factor = max(1, min(blurred.shape) // 256)
    small_blurred, small_sharp = _downsample(blurred, factor), _downsample(sharp, factor)
    reference = _tapered(ndimage.gaussian_filter(small_blurred, 1.0))
    log_scales = np.linspace(np.log(scale_range[0]), np.log(scale_range[1]), 41)
    peaks = []
    for log_scale in log_scales:
        check_cancelled()
        moving, _ = _resample(small_sharp, float(np.exp(log_scale)), (0.0, 0.0), small_blurred.shape)
        peaks.append(_correlation_peak(reference, _tapered(ndimage.gaussian_filter(moving, 1.0))))
    best = int(np.argmax(peaks))
    log_best = log_scales[best]
    if 0 < best < len(peaks) - 1:
        left, middle, right = peaks[best - 1 : best + 2]
        curvature = left - 2 * middle + right
        if curvature < 0:
            log_best += 0.5 * (left - right) / curvature * (log_scales[1] - log_scales[0])
    return float(np.exp(log_best))


def _resample(sharp: np.ndarray, scale: float, shift, shape) -> tuple[np.ndarray, np.ndarray]:
    """Sharp pattern in the blurred frame: ``out(o) = sharp(scale * (o - shift - c_out) + c_in)``."""
    c_in = (np.array(sharp.shape) - 1) / 2
    c_out = (np.array(shape) - 1) / 2
    offset = c_in - scale * (np.asarray(shift, dtype=float) + c_out)
    aligned = ndimage.affine_transform(sharp, np.full(2, scale), offset=offset, output_shape=shape, order=3, mode="reflect")
    source = np.stack(np.indices(shape), axis=-1) * scale + offset
    valid = np.all((source >= 0) & (source <= np.array(sharp.shape) - 1), axis=-1)
    return aligned, valid


def _score(aligned: np.ndarray, blurred: np.ndarray, valid: np.ndarray) -> float:
    a = ndimage.gaussian_filter(aligned, _SCORE_SMOOTHING)[valid]
    b = ndimage.gaussian_filter(blurred, _SCORE_SMOOTHING)[valid]
    if a.size < 16 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def register_pattern(
    sharp: np.ndarray, blurred: np.ndarray, *, allow_scale: bool = True, report: Callable[[str], None] | None = None
) -> Registration:
    """Align ``sharp`` to ``blurred`` (scale about the centres, then shift).

    Parameters
    ----------
    sharp, blurred : 2D ndarray of float
        The known pattern and the instrument's image of it.
    allow_scale : bool
        Also estimate a scale; kept only when it improves the alignment.
    report : callable, optional
        Called with progress messages.

    Returns
    -------
    Registration
        The best alignment found (check its ``score``).
    """
    say = report or (lambda message: None)
    scales = [1.0]
    if allow_scale:
        estimated = estimate_scale(sharp, blurred)
        if abs(estimated - 1.0) > 2e-3:
            scales.append(estimated)
    best = None
    reference = _tapered(ndimage.gaussian_filter(blurred, 1.0))
    for scale in scales:
        check_cancelled()
        moving, _ = _resample(sharp, scale, (0.0, 0.0), blurred.shape)
        shift = phase_cross_correlation(
            reference, _tapered(ndimage.gaussian_filter(moving, 1.0)), upsample_factor=20, normalization=None
        )[0]
        aligned, valid = _resample(sharp, scale, shift, blurred.shape)
        candidate = Registration(aligned, valid, float(scale), np.asarray(shift, dtype=float), _score(aligned, blurred, valid))
        say(f"registration: scale {scale:.4f}, shift ({shift[0]:.2f}, {shift[1]:.2f}) px, correlation {candidate.score:.3f}")
        if best is None or candidate.score > best.score + 1e-3:
            best = candidate
    return best
