"""What a bead calibration can vouch for: held-out residuals, coverage, and the slides it refuses.

A calibration is only as good as the beads behind it. These checks turn the
numbers of a fit into a report and into clear refusals, each naming what is
wrong and what slide would fix it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from .field_polynomials import field_uv

__all__ = [
    "MIN_BEADS",
    "MAX_UNEXPLAINED",
    "unexplained_fraction",
    "held_out_report",
    "field_coverage",
    "check_bead_count",
    "check_spread",
]

#: Fewest usable beads a calibration rests on.
MIN_BEADS = 8
#: Largest fraction of the held-out beads' light the model may leave unexplained.
MAX_UNEXPLAINED = 0.5
#: Smallest fraction of the field the beads' convex hull must cover.
MIN_HULL_FRACTION = 0.1
#: Below this hull fraction the report warns that the field is extrapolated.
WARN_HULL_FRACTION = 0.6
#: Region limits in normalised field radius (as the training metrics use).
_REGIONS = (("centre", 0.0, 0.35), ("middle", 0.35, 0.7), ("edge", 0.7, np.inf))


def unexplained_fraction(chi2: np.ndarray, chi2_null: np.ndarray, n_pixels: np.ndarray) -> float | None:
    """Share of the beads' signal the model leaves unexplained, beyond the noise.

    ``(sum chi2 - sum n) / (sum chi2_null - sum n)``: 0 when the residuals
    are pure noise, 1 when the model explains none of the beads' light
    (``chi2_null`` is the weighted residual without the bead). None for no beads.
    """
    signal = float(np.sum(chi2_null) - np.sum(n_pixels))
    if len(chi2) == 0 or signal <= 0:
        return None
    return float(np.clip((np.sum(chi2) - np.sum(n_pixels)) / signal, 0.0, None))


def held_out_report(positions, chi2, chi2_null, n_pixels, field_shape) -> dict:
    """Held-out unexplained fraction over all held-out beads and by field region."""
    radius = np.hypot(*field_uv(positions, field_shape).T) if len(positions) else np.zeros(0)
    by_region = {}
    for name, low, high in _REGIONS:
        inside = (radius >= low) & (radius < high)
        value = unexplained_fraction(chi2[inside], chi2_null[inside], n_pixels[inside]) if inside.any() else None
        by_region[name] = value
    return {
        "n_beads": int(len(positions)),
        "unexplained_fraction": unexplained_fraction(chi2, chi2_null, n_pixels),
        "by_region": by_region,
    }


def field_coverage(positions: np.ndarray, field_shape) -> float:
    """Fraction of the field inside the convex hull of the beads."""
    if len(positions) < 3:
        return 0.0
    try:
        hull = ConvexHull(np.asarray(positions, dtype=float))
    except QhullError:
        return 0.0  # collinear beads
    return float(hull.volume / (field_shape[0] * field_shape[1]))


def check_bead_count(n_used: int, rejected: dict) -> None:
    """Refuse a calibration that rests on fewer than :data:`MIN_BEADS` beads."""
    if n_used >= MIN_BEADS:
        return
    reasons = ", ".join(f"{count} {reason}" for reason, count in rejected.items() if count)
    rejected_text = f" (rejected: {reasons})" if reasons else ""
    raise ValueError(
        f"only {n_used} usable bead{'s' if n_used != 1 else ''} found{rejected_text}; a bead slide needs at least "
        f"{MIN_BEADS} beads spread over the field: image a denser slide, or a longer exposure if the beads are faint"
    )


def check_spread(positions: np.ndarray, field_shape) -> tuple[float, list[str]]:
    """Refuse beads bunched in a small part of the field; warn when they leave much of it uncovered.

    Returns
    -------
    coverage : float
        Fraction of the field inside the beads' convex hull.
    warnings : list of str
    """
    coverage = field_coverage(positions, field_shape)
    if coverage < MIN_HULL_FRACTION:
        raise ValueError(
            f"the {len(positions)} usable beads cover only {100 * coverage:.0f}% of the field (their convex hull): "
            "the PSF elsewhere cannot be measured from them; image a slide with beads spread over the whole field"
        )
    warnings = []
    if coverage < WARN_HULL_FRACTION:
        warnings.append(
            f"beads cover only {100 * coverage:.0f}% of the field (their convex hull); "
            "the PSF elsewhere is extrapolated by the field model"
        )
    return coverage, warnings
