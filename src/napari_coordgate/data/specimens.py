"""Procedural, microscopy-like sharp specimens for training.

The networks are trained on pairs (blurred, sharp). For an instrument whose
PSF field is known, any sharp image can be blurred through it, so the sharp
side is drawn from a generator of fluorescence-like structure at many scales:

``cells``
    Ellipses with a textured cytoplasm, a brighter rim (membrane) and a
    nucleus of different brightness; sometimes sparse, sometimes packed.
``membranes``
    A tissue of packed cells (a Voronoi tessellation) seen through a membrane
    stain: thin bright boundaries around dim, textured interiors.
``filaments``
    Thin, smooth random curves (cytoskeleton-like), about one pixel wide.
``puncta``
    Sub-resolution dots (vesicles, single molecules) of varied brightness.
``texture``
    A diffuse, multi-scale stain: log-normal noise with the power-law
    spectrum of real images (power about 1/f^3), not a single frequency.
``mixed``
    One extended structure (cells, membranes or texture) with a random
    selection of cells, filaments, puncta and texture (the default).

Every specimen is ``float32`` with a slowly varying background (from nearly
dark to about a fifth of the peak, as in real widefield images), scaled so
that its brightest structures sit near 1. ``benchmarks/specimen_realism.py``
compares their histograms and spectra with real fluorescence images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse

__all__ = ["SPECIMEN_KINDS", "make_specimen", "check_sharp_images", "fit_to_field"]

#: Names accepted by :func:`make_specimen`.
SPECIMEN_KINDS = ("mixed", "cells", "membranes", "filaments", "puncta", "texture")


def _band_limited_noise(shape: tuple[int, int], rng: np.random.Generator, period: float) -> np.ndarray:
    """Zero-mean, unit-variance noise whose spectrum is a Gaussian ring at
    spatial period ``period`` pixels (relative bandwidth about 1/2)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    radius = np.hypot(fy, fx)
    f0 = 1.0 / period
    spectrum = np.exp(-0.5 * ((radius - f0) / (0.5 * f0)) ** 2)
    spectrum[0, 0] = 0.0
    white = np.fft.rfft2(rng.standard_normal(shape))
    field = np.fft.irfft2(white * spectrum, s=shape)
    std = field.std()
    return field / std if std > 0 else field


def _power_law_noise(shape: tuple[int, int], rng: np.random.Generator, slope: float = 3.0,
                     largest: float | None = None) -> np.ndarray:
    """Zero-mean, unit-variance noise whose power falls as ``1 / f**slope``.

    Frequencies below ``1 / largest`` (pixels; default the field's longer
    side) are flattened, so the largest structures are about that size.
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f_low = 1.0 / (largest or max(shape))
    radius = np.maximum(np.hypot(fy, fx), f_low)
    amplitude = radius ** (-0.5 * slope)
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * amplitude, s=shape)
    std = field.std()
    return field / std if std > 0 else field


def _stain(shape: tuple[int, int], rng: np.random.Generator, contrast: float) -> np.ndarray:
    """A positive multi-scale stain of mean about 1: log-normal power-law noise."""
    noise = _power_law_noise(shape, rng, slope=rng.uniform(2.5, 3.5), largest=rng.uniform(32.0, 160.0))
    return np.exp(contrast * noise - 0.5 * contrast**2)


def _splat(shape: tuple[int, int], y: np.ndarray, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Add point weights at sub-pixel positions with bilinear interpolation."""
    h, w = shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    out = np.zeros(h * w, np.float64)
    for dy, dx, share in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        out += np.bincount(yy[inside] * w + xx[inside], weights=(weight * share)[inside], minlength=h * w)
    return out.reshape(shape)


def _cells(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Textured cells with a membrane rim and a nucleus."""
    h, w = shape
    out = np.zeros(shape, np.float64)
    size = min(h, w, 256)  # cell sizes stop growing with the field: the work stays linear in its area
    packed = rng.random() < 0.5  # a confluent culture rather than scattered cells
    n_cells = int(rng.integers(3, 6 + (h * w) // (800 if packed else 3000)))
    texture = _stain(shape, rng, contrast=rng.uniform(0.15, 0.45))
    for _ in range(n_cells):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        radius = rng.uniform(0.03, 0.16) * size * (0.6 if packed else 1.0) + 4.0
        ry, rx = radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.6, 1.0)
        angle = rng.uniform(-np.pi, np.pi)
        brightness = rng.uniform(0.15, 0.6)
        rr, cc = ellipse(cy, cx, ry, rx, shape=shape, rotation=angle)
        out[rr, cc] += brightness * texture[rr, cc]
        # the membrane: a slightly larger ellipse minus the cell
        outer = np.ravel_multi_index(ellipse(cy, cx, ry + 1.5, rx + 1.5, shape=shape, rotation=angle), shape)
        rim = np.setdiff1d(outer, np.ravel_multi_index((rr, cc), shape), assume_unique=True)
        out.flat[rim] += brightness * rng.uniform(0.5, 1.5)
        # the nucleus: dimmer or brighter than the cytoplasm, off-centre
        scale = rng.uniform(0.3, 0.55)
        ny = cy + rng.uniform(-0.3, 0.3) * ry * (1 - scale)
        nx = cx + rng.uniform(-0.3, 0.3) * rx * (1 - scale)
        nr, nc = ellipse(ny, nx, ry * scale, rx * scale, shape=shape, rotation=angle + rng.uniform(-0.5, 0.5))
        out[nr, nc] += rng.uniform(-0.6, 1.0) * brightness * texture[nr, nc]
    return np.clip(out, 0.0, None)


def _filaments(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Thin smooth random curves, rendered with sub-pixel (anti-aliased) sampling."""
    h, w = shape
    n_fil = int(rng.integers(4, 10 + (h * w) // 4000))
    n_pts = 2 * min(h + w, 1024)  # points per filament, spaced half a pixel
    start_y = rng.uniform(0, h, n_fil)[:, None]
    start_x = rng.uniform(0, w, n_fil)[:, None]
    curvature = rng.uniform(0.01, 0.08, n_fil)[:, None]
    turns = np.cumsum(rng.normal(0.0, 1.0, (n_fil, n_pts)) * curvature, axis=1)
    angle = rng.uniform(-np.pi, np.pi, (n_fil, 1)) + turns
    y = start_y + 0.5 * np.cumsum(np.sin(angle), axis=1)
    x = start_x + 0.5 * np.cumsum(np.cos(angle), axis=1)
    brightness = rng.uniform(0.2, 1.0, (n_fil, 1))
    # each filament has a random length; beyond it, weight 0
    length = rng.uniform(0.2, 1.0, (n_fil, 1)) * n_pts
    weight = np.where(np.arange(n_pts)[None, :] < length, 0.5 * brightness, 0.0)
    return _splat(shape, y.ravel(), x.ravel(), weight.ravel())


def _puncta(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sub-resolution dots: most single-pixel, some slightly extended."""
    h, w = shape
    n = int(rng.integers(10, 20 + (h * w) // 400))
    y, x = rng.uniform(0, h - 1, n), rng.uniform(0, w - 1, n)
    brightness = rng.uniform(0.1, 1.0, n) ** 2 * 1.5
    dots = _splat(shape, y, x, brightness)
    if rng.random() < 0.5:
        dots = ndimage.gaussian_filter(dots, rng.uniform(0.4, 1.0))
    return dots


def _membranes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Packed cells outlined by a membrane stain: the edges of a Voronoi tessellation."""
    from scipy.spatial import cKDTree

    h, w = shape
    cell = rng.uniform(16.0, 64.0)  # typical cell diameter, pixels
    n = max(4, int(h * w / cell**2))
    seeds = np.column_stack([rng.uniform(-cell, h + cell, n), rng.uniform(-cell, w + cell, n)])
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.column_stack([yy.ravel(), xx.ravel()]).astype(np.float64)
    dist, nearest = cKDTree(seeds).query(pixels, k=2)
    # distance to the bisector of the two nearest seeds: (d2^2 - d1^2) / (2 |s2 - s1|)
    gap = np.linalg.norm(seeds[nearest[:, 1]] - seeds[nearest[:, 0]], axis=1)
    to_edge = (dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2.0 * np.maximum(gap, 1e-6))
    width = rng.uniform(0.5, 1.2)
    edges = np.exp(-0.5 * (to_edge / width) ** 2).reshape(shape)
    # each cell takes its own interior brightness; the stain varies along the membranes
    interior = rng.uniform(0.0, 0.35, n)[nearest[:, 0]].reshape(shape)
    stain = _stain(shape, rng, contrast=rng.uniform(0.2, 0.5))
    return (edges * rng.uniform(0.6, 1.0) + interior) * stain


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A diffuse multi-scale stain: log-normal noise with a power-law spectrum."""
    return _stain(shape, rng, contrast=rng.uniform(0.3, 0.8)) * rng.uniform(0.2, 0.5)


_GENERATORS = {"cells": _cells, "membranes": _membranes, "filaments": _filaments, "puncta": _puncta,
               "texture": _texture}
_EXTENDED = ("cells", "membranes", "texture")


def make_specimen(
    shape: Sequence[int], rng: np.random.Generator, kind: str = "mixed", *, pixel_sigma: float = 1.0
) -> np.ndarray:
    """Draw one procedural sharp specimen.

    Parameters
    ----------
    shape : (H, W)
        Size of the specimen in pixels (at least 8 x 8).
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same specimen.
    kind : {"mixed", "cells", "membranes", "filaments", "puncta", "texture"}
        The kind of structure. ``"mixed"`` combines one extended kind
        (cells, membranes or texture) with a random selection of cells,
        filaments, puncta and texture, at random relative brightness.
    pixel_sigma : float
        Standard deviation (pixels) of a final Gaussian smoothing that makes
        the specimen look like an ideal, Nyquist-sampled image rather than
        infinitely sharp (0 disables it). Structures stay sub-resolution for
        any real microscope PSF.

    Returns
    -------
    (H, W) ndarray of float32
        Non-negative intensities: structures mostly within ``[0, 1]`` (a few
        bright puncta may exceed 1), on a background of about 0.01-0.24
        (log-uniform) with a slow variation.

    Examples
    --------
    >>> import numpy as np
    >>> img = make_specimen((64, 64), np.random.default_rng(0))
    >>> img.shape, img.dtype
    ((64, 64), dtype('float32'))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"specimen shape must be (H, W) with sides of at least 8, got {shape}")
    if kind not in SPECIMEN_KINDS:
        raise ValueError(f"unknown specimen kind {kind!r}; choose one of {SPECIMEN_KINDS}")
    if kind == "mixed":
        # one extended structure always (real fields are rarely just dots or lines), others at random
        chosen = [str(rng.choice(_EXTENDED))]
        chosen += [k for k in _GENERATORS if k not in chosen and k != "membranes" and rng.random() < 0.5]
        image = sum(rng.uniform(0.3, 1.0) * _GENERATORS[k](shape, rng) for k in chosen)
    else:
        image = _GENERATORS[kind](shape, rng)
    if pixel_sigma > 0:
        image = ndimage.gaussian_filter(image, float(pixel_sigma))
    # sparse content (puncta) has a low 99.9th percentile: never amplify beyond 2x its peak
    top = max(float(np.percentile(image, 99.9)), 0.5 * float(image.max()))
    if top > 0:
        image = image * (rng.uniform(0.7, 1.0) / top)
    level = float(np.exp(rng.uniform(np.log(0.01), np.log(0.2))))  # log-uniform: dark to hazy
    background = level * (1.0 + 0.2 * _band_limited_noise(shape, rng, period=0.5 * max(shape) + 8.0))
    return np.clip(image + background, 0.0, 2.0).astype(np.float32)


def check_sharp_images(sharp_images) -> list[np.ndarray]:
    """Validate the user's sharp images and return them as a list of float32 arrays.

    Parameters
    ----------
    sharp_images : (Y, X) array, (N, Y, X) array, sequence of (Y, X) arrays, or None

    Raises
    ------
    ValueError
        An image that is not 2D, not real, not finite, or smaller than 8 x 8.
    """
    if sharp_images is None:
        return []
    if isinstance(sharp_images, np.ndarray):
        sharp_images = list(sharp_images) if sharp_images.ndim == 3 else [sharp_images]
    checked = []
    for i, image in enumerate(sharp_images):
        arr = np.asarray(image)
        if arr.ndim != 2:
            raise ValueError(f"sharp image {i} must be 2D (Y, X); got shape {arr.shape}")
        if arr.dtype.kind not in "biuf" or min(arr.shape) < 8 or not np.isfinite(arr).all():
            raise ValueError(f"sharp image {i} must be a finite real image of at least 8 x 8; "
                             f"got {arr.dtype} {arr.shape}")
        checked.append(arr.astype(np.float32))
    return checked


def fit_to_field(image: np.ndarray, field_shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Make a user's sharp image into a full-field specimen.

    The image is scaled so its 0.1 and 99.9 percentiles map to 0 and 1
    (negative values clipped), then randomly cropped where it is larger than
    the field and mirror-padded (at a random position) where it is smaller.

    Returns
    -------
    (H, W) ndarray of float32
    """
    low, high = np.percentile(image, (0.1, 99.9))
    image = np.clip((image - low) / (high - low if high > low else 1.0), 0.0, None)
    for axis, size in enumerate(int(s) for s in field_shape):
        n = image.shape[axis]
        if n > size:
            start = int(rng.integers(0, n - size + 1))
            image = np.take(image, np.arange(start, start + size), axis=axis)
        elif n < size:
            before = int(rng.integers(0, size - n + 1))
            pad = [(0, 0), (0, 0)]
            pad[axis] = (before, size - n - before)
            image = np.pad(image, pad, mode="symmetric")
    return image.astype(np.float32)
