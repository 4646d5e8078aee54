"""How deblurring changed an image, in terms a user can judge without ground truth.

There is no sharp truth for a user's own image, so :func:`describe_change`
reports what can be measured on the two images alone:

- **blur**: scikit-image's no-reference blur metric (``blur_effect``, Crété-Roffet
  et al. 2007): 0 for a sharp image, towards 1 for a blurred one, measured after
  a 1 px Gaussian smoothing so that pixel noise does not count as sharpness;
- **detail**: the image's power at structures of 5 to 20 px (0.05 to 0.2
  cycles per pixel) relative to its power at coarser scales, after / before: a
  lens's blur removes exactly this band, deblurring restores it (on the napari
  sample: 0.051 blurred, 0.130 deblurred, 0.136 for the ground truth);
- **noise**: the Gaussian noise level by Immerkær's estimator (1996: the mean
  absolute response to a mask that cancels smooth structure), as a fraction
  of the source's range;
- **out of range**: the share of output pixels below the source's minimum or
  above its maximum (ringing or amplified noise; they clip if the result is
  stored in the source's range or integer type).

Large images are measured on a central crop of one plane, which is enough for
these statistics and keeps the measurement under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve, gaussian_filter
from skimage.measure import blur_effect

__all__ = ["ImageChange", "describe_change", "detail_ratio", "noise_sigma"]

#: Side of the central crop the statistics are measured on.
_CROP = 512
#: Immerkær's mask: the difference of two Laplacians, blind to linear and most smooth structure.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)


def noise_sigma(image: np.ndarray) -> float:
    """Standard deviation of white Gaussian noise in a 2D image (Immerkær 1996)."""
    h, w = image.shape
    if h < 3 or w < 3:
        return float("nan")
    response = convolve(np.asarray(image, np.float64), _NOISE_MASK, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.mean(np.abs(response)) / 6)


@dataclass(frozen=True)
class ImageChange:
    """Before/after figures of one deblurring (see the module notes)."""

    blur_before: float
    blur_after: float
    detail_gain: float
    noise_before: float
    noise_after: float
    out_of_range: float

    def sentence(self) -> str:
        """One line for a status bar."""
        return (f"sharpness: blur metric {self.blur_before:.2f} -> {self.blur_after:.2f} (0 = sharp), "
                f"fine detail (5-20 px) x{self.detail_gain:.2f}; noise {100 * self.noise_before:.1f}% -> {100 * self.noise_after:.1f}% of the range; "
                f"{100 * self.out_of_range:.2f}% of pixels outside the source's range (clipped if saved in it)")


def _sample(image: np.ndarray) -> np.ndarray:
    """The middle plane's central crop, as float64."""
    plane = np.asarray(image)
    while plane.ndim > 2:
        plane = plane[plane.shape[0] // 2]
    h, w = plane.shape
    y0, x0 = max(0, (h - _CROP) // 2), max(0, (w - _CROP) // 2)
    return np.asarray(plane[y0 : y0 + _CROP, x0 : x0 + _CROP], np.float64)


def describe_change(before: np.ndarray, after: np.ndarray) -> ImageChange:
    """Measure how ``after`` (the deblurred image) differs from ``before``.

    Parameters
    ----------
    before, after : (..., Y, X) arrays of the same shape
        The source and its deblurred result.

    Returns
    -------
    ImageChange
    """
    if np.shape(before) != np.shape(after):
        raise ValueError(f"the images differ in shape: {np.shape(before)} and {np.shape(after)}")
    a, b = _sample(before), _sample(after)
    low, high = float(a.min()), float(a.max())
    span = high - low if high > low else 1.0

    def blur(x):
        if min(x.shape) < 16:
            return float("nan")
        smooth = gaussian_filter(x, 1.0)
        return float(blur_effect((smooth - smooth.min()) / max(float(smooth.max() - smooth.min()), 1e-12)))

    def noise(x):
        return noise_sigma(x) / span

    outside = float(np.mean((b < low) | (b > high)))
    before_detail = detail_ratio(a)
    gain = detail_ratio(b) / before_detail if before_detail > 0 else float("nan")
    return ImageChange(blur(a), blur(b), gain, noise(a), noise(b), outside)


def detail_ratio(image: np.ndarray, band: tuple[float, float] = (0.05, 0.2)) -> float:
    """Power at spatial frequencies in ``band`` (cycles per pixel) over the power below it (DC excluded)."""
    x = np.asarray(image, np.float64)
    power = np.abs(np.fft.rfft2(x - x.mean())) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.rfftfreq(x.shape[1])[None, :]
    radius = np.hypot(fy, fx)
    coarse = power[(radius > 0) & (radius < band[0])].sum()
    return float(power[(radius >= band[0]) & (radius < band[1])].sum() / coarse) if coarse > 0 else float("nan")
