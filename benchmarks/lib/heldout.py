"""Held-out test images: never the seeds of training or validation data.

- :func:`paper_lens` and :func:`test_set`: the bundled simulated lens of the
  paper benchmarks and its held-out procedural specimens (noise-free by default);
- :func:`noisy_specimens` and :func:`held_out`: real specimens
  (:func:`lib.independent_lens.specimens`) blurred by a true lens, with
  Poisson-Gaussian camera noise, each normalised by its noisy image's
  percentiles, as inference normalises.
"""

from __future__ import annotations

import numpy as np

from .common import TEST_SEED


def paper_lens(field: int, grid: int = 8, defocus_edge: float = 2.0):
    """The bundled simulated lens (as in ``coordgate demo``): sharp on axis, defocus growing to the corners."""
    from napari_coordgate.psf.optics.simulate import simulate_lens

    return simulate_lens((field, field), grid=(grid, grid), defocus_edge=defocus_edge)


def test_set(lens, n: int, noise=None):
    """``n`` held-out full-field (blurred, sharp) pairs, normalised by the blurred image's
    percentiles (as inference does). Built like validation data but from another seed."""
    from napari_coordgate.data import make_training_set

    ts = make_training_set(lens, patch_size=min(lens.field_shape), n_specimens=1, n_val=n, noise=noise, seed=TEST_SEED)
    return ts.validation.blurred, ts.validation.sharp


def mosaic_specimens(field_shape: tuple[int, int], n: int, seed: int, tile: int) -> np.ndarray:
    """``n`` fields, each a mosaic of real specimens of ``tile x tile`` (a large field's detail at the
    sources' own scale, where :func:`lib.independent_lens.specimens` would enlarge one source to the field)."""
    from .independent_lens import specimens

    H, W = field_shape
    rows, cols = -(-H // tile), -(-W // tile)
    pieces = specimens((tile, tile), n * rows * cols, seed=seed).reshape(n, rows, cols, tile, tile)
    return np.ascontiguousarray(pieces.transpose(0, 1, 3, 2, 4).reshape(n, rows * tile, cols * tile)[:, :H, :W])


def noisy_specimens(truth, n: int, seed: int, photons: float, read_noise: float, tile: int | None = None) -> dict:
    """Real specimens blurred by the true lens, with Poisson-Gaussian noise.

    With ``tile``, each field is a mosaic of specimens of that size (:func:`mosaic_specimens`).
    Returns ``{"raw": noisy images, "x": each normalised by its percentiles,
    "y": the sharp specimens under the same normalisation}`` (as
    :class:`napari_coordgate.data.ValidationSet` normalises).
    """
    from napari_coordgate.data.noise import add_poisson_gaussian
    from napari_coordgate.normalization import IntensityScale

    from .independent_lens import specimens

    if tile:
        sharp = mosaic_specimens(truth.field_shape, n, seed, tile)
    else:
        sharp = specimens(truth.field_shape, n, seed=seed)
    blurred = np.asarray(truth.blur(sharp))
    rng = np.random.default_rng(seed + 1)
    raw, xs, ys = [], [], []
    for b, s in zip(blurred, sharp):
        noisy = add_poisson_gaussian(b, photons, read_noise, rng)
        scale = IntensityScale.from_percentiles(noisy)
        raw.append(noisy)
        xs.append(scale.normalize(noisy))
        ys.append(scale.normalize(s))
    return {"raw": np.stack(raw), "x": np.stack(xs), "y": np.stack(ys)}


def held_out(truth, n: int, seed: int, photons: float, read_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (noisy blurred, sharp) pairs of :func:`noisy_specimens`."""
    images = noisy_specimens(truth, n, seed, photons, read_noise)
    return images["x"], images["y"]
