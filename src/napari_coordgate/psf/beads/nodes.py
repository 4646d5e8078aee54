"""The per-node bead average: the first calibration method (``calibrate_from_beads(method="nodes")``).

Each usable, isolated bead is cut out, centred and normalised; the PSF at
each grid node is a distance-weighted local-linear average of the beads
around it. It needs no optics and no fitting, but it discards clipped and
crowded beads and holds the outermost measured PSFs towards the corners;
the fitted models of :mod:`.calibrate` replace it by default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .detection import BeadCandidates, detect_beads
from ..centroid import centre_on_centroid
from ..field_grid import node_coordinates
from ..kernels import clean_psf_tails, psf_fwhm
from ..image_checks import as_real_image
from ..psf_field import PSFField

__all__ = ["calibrate_nodes", "bead_widths", "bead_width_measures", "saturation_level"]

#: Pixels around a patch used for the local background and the sub-pixel shift.
_MARGIN = 3
#: Effective number of beads (sum of Gaussian weights) wanted at each grid node.
_BEADS_PER_NODE = 4.0
#: Beads within one grid spacing of a node below which its cell is "poorly covered".
_MIN_COVERAGE = 3
#: Finest automatic grid: cells along the longer side of the image.
_MAX_AUTO_GRID = 8
#: Bead significance above which a bead gets no more weight in the node averages.
_SNR_WEIGHT_CAP = 50.0
#: Reach (Gaussian sigma) of the bead weights at a node, in grid spacings, before it grows.
_START_REACH = 0.5
#: Default patch size, in widths (FWHM) of the widest beads (95th percentile): an
#: aberrated or diffraction-limited PSF keeps a good part of its energy in rings
#: and tails well beyond its FWHM.
_SIZE_PER_WIDTH = 3.5
#: Smallest default patch size, in typical (80th-percentile) bead widths.
_MIN_SIZE_PER_WIDTH = 2.5
#: A larger default patch must keep this fraction of the beads usable at the smallest size.
_KEEP_FRACTION = 0.6
#: Typical ratio of the beads' widths to their noise-unbiased widths above which the noise is taken to
#: have inflated them (:func:`bead_widths`). Measured: 1.15 (90th percentile 1.24) on 384 x 384 slides;
#: 2.2 and 3.0 on sparse 2048 x 2048 slides, whose 31-35 px detection footprints hold 4-13 px beads.
_NOISE_INFLATION = 1.5


def calibrate_nodes(
    image: np.ndarray,
    *,
    psf_size: int | None = None,
    bead_size_px: float = 1.0,
    grid: tuple[int, int] | None = None,
    min_snr: float = 10.0,
    saturation: float | None = None,
    min_separation: float | None = None,
    report: Callable[[str], None] | None = None,
) -> PSFField:
    """Measure a PSF field from an image of sub-resolution beads.

    Beads are detected at several scales (:func:`.detection.detect_beads`),
    then rejected when saturated, closer than ``min_separation`` to another
    detection, too close to the image edge for a full patch, or fainter
    than ``min_snr``. Each kept bead gives a ``k x k`` patch: local background
    (median of a ring around the patch) removed, re-centred on the bead's
    centroid with a cubic-spline sub-pixel shift, normalised to unit sum.
    The PSF at each grid node is the average of the bead patches weighted by
    ``exp(-d**2 / (2 s**2)) * min(snr, 50)**2``, where ``d`` is the distance to
    the node and ``s`` starts at half the grid spacing and grows until the
    weights add up to about four beads (so empty corners are extrapolated
    from the nearest beads). Beads whose patch disagrees with the resulting
    field (doublets, debris) are dropped and the average is recomputed.

    Parameters
    ----------
    image : (H, W) array_like
        Bead-slide image (raw camera values; any real dtype).
    psf_size : int, optional
        Odd patch size. By default up to 3.5 times the 95th percentile of the
        widths (:func:`.psf_fwhm`) of bright, isolated beads (so it holds
        the tails of the most aberrated PSFs), but no larger than keeps 60 %
        of the beads usable compared with 2.5 times their 80th-percentile
        width; at least 7 and at most half the image size.
    bead_size_px : float
        Bead diameter in pixels. Sets the finest detection scale; beads
        larger than about one pixel broaden the measured PSF (not corrected).
    grid : (gy, gx), optional
        Grid of the returned field. By default the finest grid of up to 8
        cells along the longer side (cells about square) in which every node
        has at least 3 usable beads within one grid spacing.
    min_snr : float
        Smallest accepted bead significance (see :class:`.BeadCandidates`).
    saturation : float, optional
        Pixel value at or above which a bead counts as saturated. By default
        the maximum of an integer dtype, or, for float images, the image
        maximum when several pixels share it (a clipped plateau).
    min_separation : float, optional
        Smallest distance to the nearest other detection, in pixels. By
        default half the patch size plus the 80th-percentile bead width, so
        that a neighbour's core lies outside the patch (its faint tail is
        removed with the background and averaged out over many beads).
    report : callable, optional
        Called with progress messages.

    Returns
    -------
    PSFField
        ``kind="beads"``. ``metadata`` holds ``n_detected``, ``n_used``,
        ``rejected`` (counts by reason), ``beads`` (used ``(y, x)`` positions),
        ``coverage`` (beads within one grid spacing of each node),
        ``poorly_covered_cells`` and the settings used.

    Raises
    ------
    ValueError
        For an image that is not 2D, with no beads, with only saturated beads,
        or with no usable bead left.
    """
    say = report or (lambda message: None)
    raw = np.asarray(image)
    data = as_real_image(raw, "bead")
    level = saturation_level(raw, saturation)
    if grid is not None:
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"grid must be two positive numbers of cells (gy, gx); got {grid}")
        grid = (int(grid[0]), int(grid[1]))

    say("detecting beads")
    found = detect_beads(data, bead_size_px=bead_size_px)
    if len(found) == 0:
        raise ValueError("no beads found in the image: nothing stands out of the background noise")
    saturated = found.peak_values >= level if level is not None else np.zeros(len(found), bool)
    if saturated.all():
        raise ValueError(
            f"all {len(found)} beads found are saturated (pixel values at or above {level:g}); "
            "image the slide with a shorter exposure or less light"
        )
    k, typical_width = _choose_psf_size(psf_size, found, saturated, min_snr, min_separation, data)
    separation = _separation(k, typical_width, min_separation)
    say(f"{len(found)} beads detected; PSF size {k} px, minimum separation {separation:.1f} px")

    reasons = _rejection_reasons(found, saturated, k, separation, min_snr, data.shape)
    keep = np.flatnonzero(reasons == "")
    patches, kept = [], []
    for index in keep:
        patch = _extract_patch(data, found.centres[index], k)
        if patch is None:
            reasons[index] = "faint"
        else:
            patches.append(patch)
            kept.append(index)
    if not kept:
        counts = {r: int(np.sum(reasons == r)) for r in np.unique(reasons)}
        raise ValueError(f"no usable beads among the {len(found)} found (rejected: {counts})")
    patches = np.array(patches)
    kept = np.array(kept)
    positions = found.centres[kept]
    grid_given = grid is not None
    if not grid_given:
        grid = _auto_grid(positions, data.shape)
        say(f"grid {grid[0]}x{grid[1]}: the finest with {_MIN_COVERAGE} or more beads near every node")
    weights = np.minimum(found.snr[kept], _SNR_WEIGHT_CAP) ** 2

    psfs, reach, coverage = _grid_average(patches, positions, weights, data.shape, grid)
    consistent = _consistent_beads(patches, positions, psfs, data.shape)
    if not consistent.all() and consistent.sum() >= 1:
        reasons[kept[~consistent]] = "inconsistent"
        say(f"dropping {int((~consistent).sum())} beads whose shape disagrees with their neighbours")
        patches, positions, weights = patches[consistent], positions[consistent], weights[consistent]
        psfs, reach, coverage = _grid_average(patches, positions, weights, data.shape, grid)
    psfs = np.array([[centre_on_centroid(p) for p in row] for row in clean_psf_tails(psfs)])

    rejected = {r: int(np.sum(reasons == r)) for r in ("saturated", "edge", "overlapping", "faint", "inconsistent")}
    poorly = [[int(i), int(j)] for i, j in zip(*np.nonzero(coverage < _MIN_COVERAGE))]
    say(f"{len(positions)} beads used; {len(poorly)} of {coverage.size} grid cells poorly covered")
    metadata = {
        "n_detected": len(found),
        "n_used": len(positions),
        "rejected": rejected,
        "beads": positions.tolist(),
        "coverage": coverage.tolist(),
        "poorly_covered_cells": poorly,
        "reach_px": reach.tolist(),
        "grid": "given" if grid_given else "automatic",
        "psf_size": k,
        "min_separation": separation,
        "min_snr": float(min_snr),
        "bead_size_px": float(bead_size_px),
        "saturation_level": level,
        "noise_sigma": found.noise_sigma,
    }
    return PSFField(psfs, data.shape, kind="beads", metadata=metadata)


def saturation_level(raw: np.ndarray, saturation: float | None) -> float | None:
    """The pixel value at or above which a bead counts as saturated: ``saturation`` if given, else the
    maximum of an integer dtype, or a clipped plateau of a float image (None when there is none)."""
    if saturation is not None:
        return float(saturation)
    if np.issubdtype(raw.dtype, np.integer):
        return float(np.iinfo(raw.dtype).max)
    top = raw.max()
    return float(top) if np.count_nonzero(raw == top) > 1 else None


def _choose_psf_size(
    psf_size: int | None,
    found: BeadCandidates,
    saturated: np.ndarray,
    min_snr: float,
    min_separation: float | None,
    data: np.ndarray,
) -> tuple[int, float]:
    """The patch size (given and checked, or chosen from the bead widths) and the typical bead width.

    The default is the largest odd size up to ``_SIZE_PER_WIDTH`` times the
    95th-percentile width of bright, isolated beads (outliers such as blended
    pairs removed) that still leaves ``_KEEP_FRACTION`` of the beads usable
    (not crowded or clipped by the image edge) compared with the smallest
    size, ``_MIN_SIZE_PER_WIDTH`` times the typical (80th-percentile) width.
    """
    shape = data.shape
    if psf_size is not None:
        psf_size = int(psf_size)
        if psf_size < 1 or psf_size % 2 == 0:
            raise ValueError(f"psf_size must be a positive odd integer; got {psf_size}")
        if psf_size + 2 * _MARGIN >= min(shape):
            raise ValueError(f"image of shape {tuple(shape)} is too small for PSF patches of size {psf_size}")
    cap = min(shape) // 2
    cap = max(cap - 1 + cap % 2, 3)
    widths = bead_widths(found, ~saturated & (found.snr >= min_snr), data, cap)
    spread = 1.4826 * np.median(np.abs(widths - np.median(widths)))
    widths = widths[widths <= np.median(widths) + 5 * max(spread, 0.1 * np.median(widths))]
    typical = float(np.percentile(widths, 80))
    if psf_size is not None:
        return psf_size, typical

    def odd(size: float) -> int:
        size = int(np.ceil(size))
        return int(np.clip(size + 1 - size % 2, 7, cap))

    smallest, largest = odd(_MIN_SIZE_PER_WIDTH * typical), odd(_SIZE_PER_WIDTH * np.percentile(widths, 95))

    def usable(k: int) -> int:
        reasons = _rejection_reasons(found, saturated, k, _separation(k, typical, min_separation), min_snr, shape)
        return int(np.sum(reasons == ""))

    floor = _KEEP_FRACTION * usable(smallest)
    for k in range(largest, smallest, -2):
        if usable(k) >= floor:
            return k, typical
    return smallest, typical


def _separation(k: int, typical_width: float, min_separation: float | None) -> float:
    """The given minimum separation, or half the patch plus a typical bead width."""
    return float(min_separation) if min_separation is not None else k / 2 + typical_width


def bead_widths(found: BeadCandidates, good: np.ndarray, data: np.ndarray, cap: int) -> np.ndarray:
    """FWHM of the good beads that are isolated and far enough from the edge (detection sizes otherwise).

    Each width is one of the two measures of :func:`bead_width_measures`. Where the usual one is
    typically (median) more than ``_NOISE_INFLATION`` times the one that counts negative pixels too,
    the patches hold more noise than bead, and the second is used.
    """
    _, widths = bead_width_measures(found, good, data, cap)
    if not widths.size:
        return np.asarray(found.diameters, dtype=float) / 2
    noisy = np.median(widths[:, 0] / widths[:, 1]) > _NOISE_INFLATION
    return widths[:, 1] if noisy else widths[:, 0]


def bead_width_measures(found: BeadCandidates, good: np.ndarray, data: np.ndarray,
                        cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Two measures of the width of each good bead that is isolated and far enough from the edge.

    Each is a bead's half-energy diameter (:func:`.kernels.psf_fwhm`) in a patch sized from its
    detection footprint, up to ``cap`` px. The usual measure ignores negative pixels, so the noise
    left in a patch much larger than the bead inflates it; the one that counts them too is unbiased
    by the noise, but a little low (the patch's border ring sets the background).

    Returns
    -------
    centres : (n, 2) ndarray
        The measured beads' ``(y, x)``.
    widths : (n, 2) ndarray
        Their widths: ignoring, then counting, the negative pixels (finite only).
    """
    shape = data.shape
    tree = cKDTree(found.centres)
    centres, widths = [], []
    for index in np.flatnonzero(good if good.any() else np.ones(len(found), bool)):
        trial = int(np.clip(2 * np.ceil(0.75 * found.diameters[index] + 2) + 1, 7, cap))
        isolated = len(tree.query_ball_point(found.centres[index], 0.75 * trial)) == 1
        if isolated and _fits(found.centres[index], trial, shape):
            patch = _extract_patch(data, found.centres[index], trial)
            if patch is not None:
                centres.append(found.centres[index])
                widths.append((psf_fwhm(patch), psf_fwhm(patch, keep_negative=True)))
    centres = np.array(centres, dtype=float).reshape(-1, 2)
    widths = np.array(widths, dtype=float).reshape(-1, 2)
    finite = np.isfinite(widths).all(axis=1)
    return centres[finite], widths[finite]


def _fits(centre: np.ndarray, k: int, shape) -> bool:
    """Whether a patch of size ``k`` (plus the margin) around ``centre`` lies inside the image."""
    half = k // 2 + _MARGIN
    iy, ix = np.round(centre)
    return half <= iy <= shape[0] - 1 - half and half <= ix <= shape[1] - 1 - half


def _rejection_reasons(found: BeadCandidates, saturated, k: int, separation: float, min_snr: float, shape) -> np.ndarray:
    """One reason per candidate ("" for beads that pass), first failing test wins."""
    reasons = np.full(len(found), "", dtype=object)
    clipped = np.array([not _fits(centre, k, shape) for centre in found.centres], dtype=bool)
    # A neighbour matters when it is at least a quarter as significant as the bead.
    crowded = np.zeros(len(found), bool)
    for i, j in cKDTree(found.centres).query_pairs(separation):
        crowded[i] |= found.snr[j] >= 0.25 * found.snr[i]
        crowded[j] |= found.snr[i] >= 0.25 * found.snr[j]
    for reason, hit in (("faint", found.snr < min_snr), ("overlapping", crowded), ("edge", clipped), ("saturated", saturated)):
        reasons[hit] = reason  # later tests overwrite earlier ones: saturation is reported first
    return reasons


def _extract_patch(data: np.ndarray, centre: np.ndarray, k: int) -> np.ndarray | None:
    """Background-subtracted, re-centred, unit-sum ``(k, k)`` patch (None without signal)."""
    half = k // 2 + _MARGIN
    iy, ix = (int(v) for v in np.round(centre))
    window = data[iy - half : iy + half + 1, ix - half : ix + half + 1]
    ring = np.ones(window.shape, bool)
    ring[2:-2, 2:-2] = False
    window = window - np.median(window[ring])
    shifted = ndimage.shift(window, (iy - centre[0], ix - centre[1]), order=3, mode="nearest")
    patch = shifted[_MARGIN : _MARGIN + k, _MARGIN : _MARGIN + k]
    flux = patch.sum()
    return patch / flux if flux > 0 else None


def _coverage(positions: np.ndarray, shape, grid) -> np.ndarray:
    """Number of beads within one grid spacing of each node, ``(gy, gx)``."""
    ys, xs = node_coordinates(shape[0], grid[0]), node_coordinates(shape[1], grid[1])
    spacing = max(shape[0] / grid[0], shape[1] / grid[1])
    distance = np.hypot(positions[:, 0, None, None] - ys[:, None], positions[:, 1, None, None] - xs[None, :])
    return np.sum(distance <= spacing, axis=0)


def _auto_grid(positions: np.ndarray, shape) -> tuple[int, int]:
    """The finest grid, up to ``_MAX_AUTO_GRID`` cells along the longer side, with every node covered."""
    longer = max(shape)
    for n in range(_MAX_AUTO_GRID, 1, -1):
        grid = (max(1, round(n * shape[0] / longer)), max(1, round(n * shape[1] / longer)))
        if _coverage(positions, shape, grid).min() >= _MIN_COVERAGE:
            return grid
    return (1, 1)


def _grid_average(patches, positions, weights, shape, grid):
    """Node PSFs as distance-weighted bead averages; also the reach and coverage maps."""
    gy, gx = grid
    ys, xs = node_coordinates(shape[0], gy), node_coordinates(shape[1], gx)
    spacing = max(shape[0] / gy, shape[1] / gx)
    diagonal = float(np.hypot(*shape))
    psfs = np.empty((gy, gx) + patches.shape[1:])
    reach = np.empty((gy, gx))
    coverage = _coverage(positions, shape, grid)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            distance = np.hypot(positions[:, 0] - y, positions[:, 1] - x)
            scale = _START_REACH * spacing
            while True:
                closeness = np.exp(-0.5 * (distance / scale) ** 2)
                if closeness.sum() >= _BEADS_PER_NODE or scale >= diagonal:
                    break
                scale *= 1.5
            # Far beads can underflow to zero weight: fall back to the nearest one.
            w = closeness * weights if closeness.sum() > 0 else (distance == distance.min()).astype(float)
            psfs[i, j] = np.tensordot(_local_linear_weights(positions - (y, x), w, scale), patches, axes=1)
            reach[i, j] = scale
    return psfs, reach, coverage


def _local_linear_weights(offsets: np.ndarray, weights: np.ndarray, scale: float, ridge: float = 0.02) -> np.ndarray:
    """Weights that estimate a value at offset 0 by ridge-regularised local linear regression.

    Fitting ``value ~ a + b . offset`` (weighted) and taking ``a`` corrects the
    bias of a plain weighted mean when the beads lie mostly on one side of a
    node (field edges and corners). The ridge on ``b`` keeps the fit from
    extrapolating wildly when the beads barely span a direction.
    """
    design = np.column_stack([np.ones(len(offsets)), offsets / scale])
    normal = design.T @ (weights[:, None] * design)
    normal += ridge * weights.sum() * np.diag([0.0, 1.0, 1.0])
    coefficients = np.linalg.solve(normal, design.T * weights)  # (3, n)
    return coefficients[0]


def _consistent_beads(patches, positions, psfs, shape) -> np.ndarray:
    """True for beads whose patch correlates with the field's PSF at their position about as well as most do."""
    if len(patches) < 5:
        return np.ones(len(patches), bool)
    model = PSFField(np.clip(psfs, 0, None) + 1e-12, shape)
    predicted = np.array([model.psf_at(y, x) for y, x in positions]).reshape(len(patches), -1)
    measured = patches.reshape(len(patches), -1)
    predicted = predicted - predicted.mean(axis=1, keepdims=True)
    measured = measured - measured.mean(axis=1, keepdims=True)
    corr = (predicted * measured).sum(1) / np.sqrt((predicted**2).sum(1) * (measured**2).sum(1) + 1e-30)
    spread = max(1.4826 * np.median(np.abs(corr - np.median(corr))), 0.02)
    # Noisy faint beads scatter below the median too; only clear outliers go.
    return corr >= min(np.median(corr) - 4 * spread, 0.6)
