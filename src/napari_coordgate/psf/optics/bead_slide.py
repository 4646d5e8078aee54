"""Synthetic bead slides: sub-resolution beads imaged through a PSF field."""

from __future__ import annotations

import numpy as np

from ..psf_field import PSFField

__all__ = ["render_bead_target", "scatter_points"]

_SUPERSAMPLE = 8


def scatter_points(
    shape: tuple[int, int], n_points: int, min_spacing: float, rng: np.random.Generator, *, margin: float = 0.0
) -> np.ndarray:
    """Random positions at least ``min_spacing`` apart (dart throwing).

    When ``n_points`` do not fit at ``min_spacing``, the remaining points are
    placed at half that spacing, so the slide still holds ``n_points`` beads
    but some of them have close neighbours.

    Returns
    -------
    (n_points, 2) ndarray
        ``(y, x)`` positions inside ``[margin, size - 1 - margin]``.
    """
    low = np.array([margin, margin], dtype=float)
    high = np.array([shape[0] - 1 - margin, shape[1] - 1 - margin], dtype=float)
    if np.any(high < low):
        low, high = np.zeros(2), np.array(shape, dtype=float) - 1
    points = np.empty((0, 2))
    for spacing in (min_spacing, min_spacing / 2, 0.0):
        for _ in range(40):
            needed = n_points - len(points)
            if needed == 0:
                return points
            placed_before = len(points)
            for candidate in rng.uniform(low, high, size=(4 * needed, 2)):
                if len(points) == n_points:
                    break
                if len(points) == 0 or np.min(np.hypot(*(points - candidate).T)) >= spacing:
                    points = np.vstack([points, candidate])
            if len(points) == placed_before:
                break  # this spacing is full: relax it
    return points


def _splat_beads(shape, positions, fluxes, radius_px: float) -> np.ndarray:
    """Object image: each bead a uniform disc integrated over the pixel area."""
    obj = np.zeros(shape, dtype=np.float64)
    reach = int(np.ceil(radius_px + 1))
    sub = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5  # sub-pixel sample offsets
    for (y, x), flux in zip(positions, fluxes):
        iy, ix = int(round(y)), int(round(x))
        rows = np.arange(iy - reach, iy + reach + 1)
        cols = np.arange(ix - reach, ix + reach + 1)
        sy = (rows[:, None] + sub[None, :]).ravel() - y
        sx = (cols[:, None] + sub[None, :]).ravel() - x
        inside = (sy[:, None] ** 2 + sx[None, :] ** 2) <= max(radius_px, 0.5 / _SUPERSAMPLE) ** 2
        counts = inside.reshape(rows.size, _SUPERSAMPLE, cols.size, _SUPERSAMPLE).sum(axis=(1, 3)).astype(float)
        if counts.sum() == 0:
            continue
        keep_r = (rows >= 0) & (rows < shape[0])
        keep_c = (cols >= 0) & (cols < shape[1])
        obj[np.ix_(rows[keep_r], cols[keep_c])] += flux * counts[np.ix_(keep_r, keep_c)] / counts.sum()
    return obj


def render_bead_target(
    psf_field: PSFField,
    *,
    n_beads: int = 200,
    bead_radius_px: float = 0.5,
    brightness: tuple[float, float] = (200, 2000),
    background: float = 100.0,
    read_noise: float = 2.0,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Image of a bead slide taken through ``psf_field``.

    Beads are placed at random sub-pixel positions at least three times the
    widest PSF's width (:meth:`PSFField.fwhm_map`, at most the PSF size)
    apart where they fit (see :func:`scatter_points`), rendered as small
    discs, blurred by the field, and recorded with Poisson photon noise on
    top of a uniform background plus Gaussian read noise.

    Parameters
    ----------
    psf_field : PSFField
        The instrument; the slide covers its whole field.
    n_beads : int
        Number of beads.
    bead_radius_px : float
        Bead radius in pixels (0.5 is a sub-resolution bead).
    brightness : (low, high)
        Total photons per bead, drawn uniformly in this range.
    background : float
        Background photons per pixel.
    read_noise : float
        Standard deviation of the Gaussian read noise, in photons.
    seed : int, optional
        Seed for positions, brightness and noise.

    Returns
    -------
    image : (H, W) ndarray of float32
        The noisy bead image, in photons.
    true_positions : (n, 2) ndarray
        ``(y, x)`` of each bead's centre, in pixels.
    """
    if n_beads < 0 or brightness[0] < 0 or brightness[1] < brightness[0] or background < 0 or read_noise < 0:
        raise ValueError("n_beads, brightness, background and read_noise must be non-negative (brightness low <= high)")
    rng = np.random.default_rng(seed)
    shape = psf_field.field_shape
    # Beads this far apart do not overlap visibly: about three widths of the widest PSF.
    spacing = min(psf_field.psf_size, 3.0 * float(np.nanmax(psf_field.fwhm_map())) + 2 * bead_radius_px)
    positions = scatter_points(shape, n_beads, spacing, rng, margin=bead_radius_px)
    fluxes = rng.uniform(brightness[0], brightness[1], size=len(positions))
    obj = _splat_beads(shape, positions, fluxes, bead_radius_px)
    expected = np.clip(psf_field.blur(obj).astype(np.float64), 0, None) + background
    image = rng.poisson(expected) + rng.normal(0.0, read_noise, size=shape) if read_noise > 0 else rng.poisson(expected)
    return image.astype(np.float32), positions
