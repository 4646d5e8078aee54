"""The centroid self-check of a bead calibration: do the calibrated PSFs put each bead where its light is?

The package's convention (:mod:`~napari_coordgate.psf.centroid`) is that a PSF's intensity
centroid is where the point source is. A field model can break it without
its residuals showing: an empirical kernel that misses a comatic tail fits
the bead's core well, but is centred on the core's centroid, not on the
whole image's; a network trained with that field moves objects in the
corners by pixels.

So the finished field is checked against the slide itself. For each bright
bead, in a window wider than the fitted kernel:

- the data: the bead image with the other beads' light (rendered with the
  calibrated field at their fitted positions) and the local background (the
  median of the window's rim) removed;
- the model: the calibrated PSF at the bead's field position, placed at its
  fitted position with its fitted flux.

Their background-subtracted intensity centroids, over the same pixels, must
agree. A centroid over a wide window is noisy (the background's photons far
from the bead weigh by their distance), but a field model's error is
systematic and smooth over the field, so the differences are averaged,
weighted by their noise, over each ninth of the field (a 3 x 3 split): each
region's mean displacement must be below :data:`CENTROID_TOLERANCE_PX`, or
within three times its standard error of zero (``passed``).

Measured limits: on synthetic slides it finds a kernel that misses a comatic
tail; on dense slides of strongly aberrated lenses it also reports 3-7 px in
regions whose calibrated PSFs lie within 0.3-0.7 px of the truth (the
neighbours' modelled light and the noise of wide windows), so
:func:`.calibrate_from_beads` records it as a diagnostic and does not warn.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..psf_field import PSFField

__all__ = ["check_centroids", "describe_centroid_check", "CENTROID_TOLERANCE_PX"]

#: Mean centroid disagreement (px) of a field region above which the check does not pass (``passed``).
CENTROID_TOLERANCE_PX = 2.0
#: Beads whose flux is less significant than this are too noisy for a centroid over a wide window.
_MIN_SIGNIFICANCE = 30.0
#: Regions shown in the report.
_WORST = 3
#: Fewest beads a region needs to be judged.
_MIN_REGION_BEADS = 3


def _placed(kernel: np.ndarray, offset: np.ndarray, window: int) -> np.ndarray:
    """``kernel`` (centroid at its centre) in a ``window x window`` box, moved by a sub-pixel ``offset``."""
    k = kernel.shape[0]
    box = np.zeros((window, window))
    if k <= window:
        start = (window - k) // 2
        box[start : start + k, start : start + k] = kernel
    else:
        start = (k - window) // 2
        box[:] = kernel[start : start + window, start : start + window]
    return ndimage.shift(box, offset, order=3, mode="constant")


def _centroid(patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = patch * mask
    total = weights.sum()
    rows, cols = np.indices(patch.shape)
    return np.array([(weights * rows).sum(), (weights * cols).sum()]) / total


def check_centroids(
    data: np.ndarray,
    field: PSFField,
    positions: np.ndarray,
    fluxes: np.ndarray,
    significance: np.ndarray,
    *,
    read_variance: float,
    gain: float,
    window: int,
    unmodelled: np.ndarray | None = None,
) -> dict:
    """Compare every bright bead's own centroid with the calibrated field's, placed at its fitted position.

    Parameters
    ----------
    data : (H, W) ndarray
        The bead image.
    field : PSFField
        The calibrated field.
    positions : (n, 2) ndarray
        Fitted bead ``(y, x)`` (the model's centroids).
    fluxes, significance : (n,) ndarray
        Fitted fluxes and flux over its error.
    read_variance, gain : float
        Noise model: pixel variance ``read_variance + gain * signal``.
    window : int
        Odd side of the comparison window (wider than the fitted kernel, so
        that light a kernel misses counts).
    unmodelled : (m, 2) ndarray, optional
        Other light sources the fit left out (saturated, faint or rejected
        beads): a bead with one inside its window is not judged.

    Returns
    -------
    dict
        ``n_beads`` checked; ``regions``: per judged ninth of the field
        ``[y, x, dy, dx, displacement_px, standard_error_px, n_beads]`` (its
        centre, the noise-weighted mean of data minus model centroid);
        ``median_px`` and ``max_px`` of the regions' displacements;
        ``worst``: up to three regions ``[y, x, dy, dx, displacement_px]``
        whose displacement is significant, largest first; ``passed``.
    """
    H, W = data.shape
    half = window // 2
    anchors = np.round(positions).astype(int)
    kernels = [field.psf_at(float(y), float(x)) for y, x in positions]
    # Every bead's model light on the canvas, to remove the neighbours' light from each window. The canvas
    # has room for a window around any anchor up to ``margin - half`` pixels outside the image (clipped beads).
    margin = window
    anchors = np.clip(anchors, -(margin - half), [H - 1 + margin - half, W - 1 + margin - half])
    canvas = np.zeros((H + 2 * margin, W + 2 * margin))
    models = []
    for (iy, ix), (y, x), flux, kernel in zip(anchors, positions, fluxes, kernels):
        light = flux * _placed(kernel, np.array([y - iy, x - ix]), window)
        models.append(light)
        canvas[iy + margin - half : iy + margin + half + 1, ix + margin - half : ix + margin + half + 1] += light
    padded = np.pad(np.asarray(data, np.float64), margin, mode="constant", constant_values=np.nan)
    rim = np.ones((window, window), bool)
    rim[2:-2, 2:-2] = False
    rows = []
    unmodelled = np.zeros((0, 2)) if unmodelled is None else np.asarray(unmodelled, float).reshape(-1, 2)
    for i in np.flatnonzero(significance >= _MIN_SIGNIFICANCE):
        if len(unmodelled) and np.any(np.max(np.abs(unmodelled - positions[i]), axis=1) <= half + 2):
            continue  # light the model does not know of lies in the window
        iy, ix = anchors[i] + margin - half
        patch = padded[iy : iy + window, ix : ix + window]
        inside = np.isfinite(patch)
        if inside.mean() < 0.75:
            continue  # mostly outside the image: its centroid is cut either way
        own = models[i]
        others = canvas[iy : iy + window, ix : ix + window] - own
        residual = np.where(inside, patch, 0.0) - others
        level = float(np.median(residual[rim & inside]))
        signal = residual - level
        if own[inside].sum() < 0.5 * fluxes[i]:
            continue
        measured, predicted = _centroid(signal, inside), _centroid(own, inside)
        rr, cc = np.indices(signal.shape)
        variance = read_variance + gain * np.clip(own, 0, None)
        total = max(float((signal * inside).sum()), 1e-9)
        noise = np.sqrt(np.array([((rr - measured[0]) ** 2 * variance * inside).sum(),
                                  ((cc - measured[1]) ** 2 * variance * inside).sum()])) / total
        difference = measured - predicted
        rows.append((*positions[i], *difference, float(np.hypot(*difference)), float(np.hypot(*noise))))
    empty = {"n_beads": len(rows), "regions": [], "median_px": None, "max_px": None, "worst": [], "passed": True}
    if not rows:
        return empty
    table = np.array(rows)
    weights = 1.0 / np.maximum(table[:, 5], 1e-3) ** 2
    band_y = np.clip((table[:, 0] / H * 3).astype(int), 0, 2)
    band_x = np.clip((table[:, 1] / W * 3).astype(int), 0, 2)
    regions = []
    for by in range(3):
        for bx in range(3):
            inside = (band_y == by) & (band_x == bx)
            if inside.sum() < _MIN_REGION_BEADS:
                continue
            w = weights[inside]
            mean = (w[:, None] * table[inside, 2:4]).sum(0) / w.sum()
            error = float(np.sqrt(1.0 / w.sum()))
            regions.append([(by + 0.5) * H / 3, (bx + 0.5) * W / 3, *mean, float(np.hypot(*mean)), error,
                            int(inside.sum())])
    if not regions:
        return {**empty, "n_beads": len(rows)}
    regions_array = np.array(regions)
    displacement, error = regions_array[:, 4], regions_array[:, 5]
    failing = (displacement > CENTROID_TOLERANCE_PX) & (displacement > 3 * error)
    order = [j for j in np.argsort(-displacement) if failing[j]][:_WORST]
    return {
        "n_beads": int(len(table)),
        "regions": [[round(float(v), 3) for v in row[:6]] + [int(row[6])] for row in regions],
        "median_px": round(float(np.median(displacement)), 3),
        "max_px": round(float(displacement.max()), 3),
        "worst": [[round(float(v), 2) for v in regions_array[j, :5]] for j in order],
        "passed": not bool(failing.any()),
    }


def _where(y: float, x: float, shape: tuple[int, int] | None) -> str:
    """``(y, x)``, with the ninth of the field it lies in when the field's shape is known."""
    if not shape:
        return f"({y:.0f}, {x:.0f})"
    rows, cols = ("top", "middle", "bottom"), ("left", "centre", "right")
    row, col = rows[min(int(3 * y / shape[0]), 2)], cols[min(int(3 * x / shape[1]), 2)]
    name = "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"
    return f"{name} ({y:.0f}, {x:.0f})"


def describe_centroid_check(check: dict | None, field_shape: tuple[int, int] | None = None) -> str | None:
    """One line for a calibration report: the centroid self-check's figures and its worst regions.

    Parameters
    ----------
    check : dict or None
        ``metadata["centroid_check"]`` of a bead calibration (:func:`check_centroids`).
    field_shape : (H, W), optional
        Names the worst regions (``"top right"``) as well as giving their centres.

    Returns
    -------
    str or None
        None when there was no check or no region had enough bright beads.
    """
    if not check or check.get("median_px") is None:
        return None
    text = (f"Centroid self-check ({check['n_beads']} bright beads, by ninth of the field): the beads' own centroids "
            f"lie a median {check['median_px']:.2f} px, at most {check['max_px']:.2f} px, from the calibrated PSFs'")
    worst = check.get("worst") or []
    if worst:
        places = "; ".join(f"{_where(y, x, field_shape)} {d:.1f} px" for y, x, _, _, d in worst)
        text += (f"; beyond {CENTROID_TOLERANCE_PX:g} px: {places} (also seen where neighbours' light crowds "
                 "the windows, so check these regions with a sparser slide or give the optics)")
    return text + "."
