"""Do two fitted field models agree? When their held-out beads cannot tell them apart, they must.

A bead calibration without the optics fits a pupil model and empirical
models, and keeps one. If the two explain the held-out beads about equally
well but give different PSFs (moved, or of another shape), the slide does
not determine the PSF field, and the one kept is a guess: the calibration
says so, with the figures, and what would settle it.
"""

from __future__ import annotations

import numpy as np
from skimage.registration import phase_cross_correlation

__all__ = ["compare_fields", "disagreement_warning", "INDISTINGUISHABLE", "DISAGREEMENT_SHIFT_PX",
           "DISAGREEMENT_CORRELATION"]

#: Held-out unexplained fractions closer than this cannot tell two models apart (measured: a correct pupil leaves
#: 4-5 % of a strongly aberrated lens's held-out light unexplained where an empirical model leaves 0 %, and the
#: two then differ in the fitted window; that difference is the pupil's known limit, not an open question).
INDISTINGUISHABLE = 0.01
#: Median displacement (px) between two models' PSFs from which they disagree. Measured: where both models
#: left 0 % of the held-out light unexplained and the pupil matched the truth (0.05-0.07 px), an order-3
#: empirical model's kernels still sat 0.63-0.64 px off (docs/benchmarks.md, section 11); 1 px, the issue's
#: largest tolerated displacement, keeps that from reading as doubt.
DISAGREEMENT_SHIFT_PX = 1.0
#: Median correlation (after lining them up) below which two models' PSFs disagree in shape.
DISAGREEMENT_CORRELATION = 0.95


def _common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = max(a.shape[-1], b.shape[-1])
    return tuple(np.pad(p, (size - p.shape[-1]) // 2) for p in (a, b))


def compare_fields(first: np.ndarray, second: np.ndarray) -> dict:
    """Displacement and shape agreement of two sampled PSF fields, node by node.

    Parameters
    ----------
    first, second : (gy, gx, k1, k1) and (gy, gx, k2, k2) ndarray
        The same grid of nodes; odd kernel sizes, centred alike.

    Returns
    -------
    dict
        ``shift_px_median`` / ``shift_px_max`` (the cross-correlation shift that
        lines the PSFs up best, :func:`skimage.registration.phase_cross_correlation`
        without normalisation), ``correlation_median`` / ``correlation_min``
        (Pearson correlation after lining them up) and ``worst_node``
        (``(row, column)`` of the largest shift).
    """
    if first.shape[:2] != second.shape[:2]:
        raise ValueError(f"the fields' grids differ: {first.shape[:2]} and {second.shape[:2]}")
    shifts, correlations = [], []
    for a, b in zip(first.reshape(-1, *first.shape[2:]), second.reshape(-1, *second.shape[2:])):
        a, b = _common(a, b)
        shift, _, _ = phase_cross_correlation(a, b, upsample_factor=10, normalization=None)
        moved = np.roll(b, np.round(shift).astype(int), axis=(0, 1))
        shifts.append(float(np.hypot(*shift)))
        correlations.append(float(np.corrcoef(a.ravel(), moved.ravel())[0, 1]))
    shifts, correlations = np.array(shifts), np.array(correlations)
    worst = np.unravel_index(int(np.argmax(shifts)), first.shape[:2])
    return {
        "shift_px_median": round(float(np.median(shifts)), 3),
        "shift_px_max": round(float(shifts.max()), 3),
        "correlation_median": round(float(np.median(correlations)), 4),
        "correlation_min": round(float(correlations.min()), 4),
        "worst_node": [int(worst[0]), int(worst[1])],
    }


def disagreement_warning(agreement: dict, names: tuple[str, str], unexplained: tuple[float, float]) -> str | None:
    """A warning naming the figures when two models the held-out beads cannot separate disagree; else None."""
    if (agreement["shift_px_median"] <= DISAGREEMENT_SHIFT_PX
            and agreement["correlation_median"] >= DISAGREEMENT_CORRELATION):
        return None
    return (
        f"the calibration is unsure: the {names[0]} and {names[1]} models explain the held-out beads about as well "
        f"({100 * unexplained[0]:.1f}% and {100 * unexplained[1]:.1f}% of their light unexplained) but their PSFs "
        f"differ: moved by {agreement['shift_px_median']:.1f} px (median over the grid, up to "
        f"{agreement['shift_px_max']:.1f} px), shape correlation {agreement['correlation_median']:.2f} once lined up; "
        "give the optics (NA, emission wavelength, pixel size) or image a denser slide to settle it"
    )
