"""What a bead calibration can vouch for: held-out residuals, coverage, and the slides it refuses.

A calibration is only as good as the beads behind it. These checks turn the
numbers of a fit into a report and into clear refusals, each naming what is
wrong and what slide would fix it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from ..field_models.polynomials import field_uv

__all__ = [
    "MIN_BEADS",
    "MAX_UNEXPLAINED",
    "unexplained_fraction",
    "held_out_report",
    "field_coverage",
    "mean_offset",
    "centre_reach",
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
#: Largest distance of the beads' mean position from the field centre, as a fraction of the way to the
#: corners (:func:`mean_offset`), for a slide to be accepted. Beads filling a strip along one edge narrower
#: than 43 % of the field, or a corner block smaller than 60 % x 60 %, lie beyond it; beads filling the left
#: half of the field give 0.35 (accepted, with the coverage warning), the left 55 % 0.32; beads spread over
#: the whole field 0.08 (median of 40 random beads; 0.19 for 1 in 100), but more than 0.4 for 1.6 % of slides of 8.
MAX_MEAN_OFFSET = 0.4
#: How far past the field centre, in half-widths of the field, the beads must reach on both sides along at
#: least one axis (:func:`centre_reach`): beads confined to one corner quarter (up to 5 % of the width past
#: its centre lines) are refused however they fall.
MIN_CENTRE_REACH = 0.1
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


def _axis_coordinates(positions: np.ndarray, field_shape) -> np.ndarray:
    """Positions along each axis relative to the field centre: -1 at the top (left) edge, +1 at the bottom (right)."""
    centre = (np.asarray(field_shape[:2], dtype=float) - 1) / 2
    return (np.asarray(positions, dtype=float).reshape(-1, 2) - centre) / np.maximum(centre, 0.5)


def mean_offset(positions: np.ndarray, field_shape) -> float:
    """Distance of the beads' mean position from the field centre, as a fraction of the way to the corners.

    Each axis is measured in half-widths of the field (so a wide sensor is
    judged as a square one): 0 when the beads are balanced around the centre
    (spread over the whole field, or in a ring around it), 0.35 when they
    fill one half of the field, 0.5 one corner quarter, 1 when they all sit
    in one corner.

    Parameters
    ----------
    positions : (n, 2) array_like
        ``(y, x)`` bead positions in pixels.
    field_shape : (H, W)

    Returns
    -------
    float
        1.0 for no beads.
    """
    if len(positions) == 0:
        return 1.0
    return float(np.hypot(*_axis_coordinates(positions, field_shape).mean(axis=0)) / np.sqrt(2))


def centre_reach(positions: np.ndarray, field_shape) -> float:
    """How far the beads extend past the field centre on both sides, along the better of the two axes.

    Along an axis, the reach is the smaller of the distances from the
    centre line to the outermost bead on either side, in half-widths of the
    field: 1 when beads reach both edges, 0 or less when they all lie on
    one side of the centre line. Beads that fill the left half of the field
    reach 1 (along the rows); beads in one corner quarter reach at most 0.
    Arguments as for :func:`mean_offset`; -1.0 for no beads.
    """
    if len(positions) == 0:
        return -1.0
    coordinates = _axis_coordinates(positions, field_shape)
    return float(np.max(np.minimum(coordinates.max(axis=0), -coordinates.min(axis=0))))


def _side(positions: np.ndarray, field_shape) -> str:
    """The part of the field the beads' mean position points to: ``"top-left"``, ``"right"``, ... or ``"centre"``."""
    dy, dx = _axis_coordinates(positions, field_shape).mean(axis=0)
    radius = float(np.hypot(dy, dx))
    if radius < 0.05:
        return "centre"
    # Eight sectors: a component counts when the direction is within 67.5 degrees of its axis.
    vertical = "top" if dy < -0.38 * radius else "bottom" if dy > 0.38 * radius else ""
    horizontal = "left" if dx < -0.38 * radius else "right" if dx > 0.38 * radius else ""
    return "-".join(part for part in (vertical, horizontal) if part)


def _extent(positions: np.ndarray, field_shape) -> str:
    """The rows and columns the beads span, e.g. ``"rows 15-85 and columns 12-90 of the 192 x 192 image"``."""
    (y0, x0), (y1, x1) = np.rint(np.min(positions, axis=0)), np.rint(np.max(positions, axis=0))
    return f"rows {y0:.0f}-{y1:.0f} and columns {x0:.0f}-{x1:.0f} of the {field_shape[0]} x {field_shape[1]} image"


#: What fixes a slide whose beads leave part of the field unsampled.
_SPREAD_FIX = (
    "image a slide with beads spread over the whole field of view, or crop the image to the region the beads cover"
)


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
    """Refuse beads that leave most of the field unsampled; warn when they leave much of it uncovered.

    A field model (a pupil whose aberrations are polynomials of the field
    position, or PSF pixels that are) is measured where the beads are and
    extrapolated elsewhere, and a polynomial extrapolated far beyond its data
    can take any value: the beads must surround the field centre and spread
    over the field. The slide is refused when

    - the beads' convex hull covers less than :data:`MIN_HULL_FRACTION` of
      the field (a small cluster, or beads along a line), or
    - the beads are bunched on one side of the field: they do not extend
      :data:`MIN_CENTRE_REACH` of the half-width past the centre on both
      sides along either axis (:func:`centre_reach`; beads in one corner
      quarter), or their mean position lies more than
      :data:`MAX_MEAN_OFFSET` of the way from the field centre to its
      corners (:func:`mean_offset`; a corner quarter 0.5, the left third
      0.47, the left half 0.35 passes).

    It is warned about when the hull covers less than
    :data:`WARN_HULL_FRACTION` of the field (e.g. beads in half the field).

    Parameters
    ----------
    positions : (n, 2) ndarray
        ``(y, x)`` positions of the usable beads, in pixels.
    field_shape : (H, W)
        Shape of the bead image.

    Returns
    -------
    coverage : float
        Fraction of the field inside the beads' convex hull.
    warnings : list of str

    Raises
    ------
    ValueError
        Naming the number of beads, the part of the field they lie in, and
        the slide (or crop) that fixes it.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    n = len(positions)
    coverage = field_coverage(positions, field_shape)
    if coverage < MIN_HULL_FRACTION:
        where = f"; they lie in {_extent(positions, field_shape)}" if n else ""
        raise ValueError(
            f"the {n} usable beads cover only {100 * coverage:.0f}% of the field (their convex hull{where}): "
            f"the PSF elsewhere cannot be measured from them; {_SPREAD_FIX}"
        )
    offset = mean_offset(positions, field_shape)
    if centre_reach(positions, field_shape) < MIN_CENTRE_REACH or offset > MAX_MEAN_OFFSET:
        raise ValueError(
            f"the {n} usable beads are bunched towards the {_side(positions, field_shape)} of the field: they lie "
            f"in {_extent(positions, field_shape)}, their convex hull covers {100 * coverage:.0f}% of the field and "
            f"their mean position is {100 * offset:.0f}% of the way from the field centre to its corners (accepted: "
            f"beads on both sides of the centre, their mean position at most {100 * MAX_MEAN_OFFSET:.0f}% of the way), "
            f"so the PSF over the rest of the field would be extrapolated by the field model, not measured; "
            f"{_SPREAD_FIX}"
        )
    warnings = []
    if coverage < WARN_HULL_FRACTION:
        warnings.append(
            f"beads cover only {100 * coverage:.0f}% of the field (their convex hull); "
            "the PSF elsewhere is extrapolated by the field model"
        )
    return coverage, warnings
