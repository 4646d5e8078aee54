"""Image-quality metrics for validation: PSNR and SSIM (scikit-image), per field region.

All functions take normalised images and an explicit ``data_range`` (1.0 for
images normalised as the models see them), so the numbers do not depend on
each image's own minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["psnr", "ssim", "region_masks", "regional_psnr", "CENTRE_RADIUS", "EDGE_RADIUS"]

#: Normalised radius (1 at the field's corners) inside which a pixel is "centre".
CENTRE_RADIUS = 0.35
#: Normalised radius beyond which a pixel is "edge".
EDGE_RADIUS = 0.7


def _stack(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.ndim not in (2, 3):
        raise ValueError(f"pred and truth must have the same (Y, X) or (N, Y, X) shape; "
                         f"got {pred.shape} and {truth.shape}")
    return pred.reshape(-1, *pred.shape[-2:]), truth.reshape(-1, *truth.shape[-2:])


def psnr(pred: np.ndarray, truth: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; the mean over images for an ``(N, Y, X)`` stack.

    Parameters
    ----------
    pred, truth : (Y, X) or (N, Y, X) ndarray
    data_range : float
        The intensity span that counts as the peak (1.0 for normalised images).
    """
    pred, truth = _stack(pred, truth)
    return float(np.mean([peak_signal_noise_ratio(t, p, data_range=data_range) for p, t in zip(pred, truth)]))


def ssim(pred: np.ndarray, truth: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (7 x 7 windows); the mean over images for a stack."""
    pred, truth = _stack(pred, truth)
    return float(np.mean([structural_similarity(t, p, data_range=data_range) for p, t in zip(pred, truth)]))


def region_masks(field_shape: Sequence[int]) -> dict[str, np.ndarray]:
    """Boolean ``centre`` and ``edge`` masks of a field.

    The radius of a pixel is its distance from the field centre divided by
    the half-diagonal (so 1 at the corners). ``centre`` is ``r < 0.35``,
    ``edge`` is ``r > 0.7``.

    Returns
    -------
    dict of (H, W) bool ndarray
    """
    H, W = (int(s) for s in field_shape)
    y = np.arange(H) - (H - 1) / 2
    x = np.arange(W) - (W - 1) / 2
    r = np.hypot(y[:, None], x[None, :]) / max(np.hypot((H - 1) / 2, (W - 1) / 2), 1e-12)
    return {"centre": r < CENTRE_RADIUS, "edge": r > EDGE_RADIUS}


def regional_psnr(
    pred: np.ndarray, truth: np.ndarray, masks: dict[str, np.ndarray], data_range: float = 1.0
) -> dict[str, float]:
    """PSNR of the pixels inside each mask (the mean over images for a stack).

    Parameters
    ----------
    pred, truth : (Y, X) or (N, Y, X) ndarray
    masks : dict of (Y, X) bool ndarray
        E.g. from :func:`region_masks`.

    Returns
    -------
    dict
        Region name to PSNR in dB (NaN for an empty region).
    """
    pred, truth = _stack(pred, truth)
    out = {}
    for name, mask in masks.items():
        if mask.shape != pred.shape[-2:]:
            raise ValueError(f"mask {name!r} has shape {mask.shape}, images have {pred.shape[-2:]}")
        if not mask.any():
            out[name] = float("nan")
            continue
        out[name] = float(np.mean([peak_signal_noise_ratio(t[mask], p[mask], data_range=data_range)
                                   for p, t in zip(pred, truth)]))
    return out
