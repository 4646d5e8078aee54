"""Classical deconvolution baselines, given a PSF field (the true one or a calibration).

- Wiener deconvolution with the PSF at the field centre (``skimage.restoration.wiener``),
- Richardson-Lucy with the centre PSF (``skimage.restoration.richardson_lucy``),
- patch-wise Richardson-Lucy: every grid node's PSF deconvolves the region where
  that node has interpolation weight, and the results are blended with the
  same bilinear weights that define the PSF field (a spatially varying RL
  that knows the local PSFs).

Images are reflect-padded by the PSF radius (as the lens simulation pads).
:func:`run` applies one method with one parameter; :func:`run_tuned` chooses
each method's parameter on separate tuning images and scores it on test
images (as ``bead_calibration_independent.py`` and
``downstream_without_optics.py`` report them); ``classical.py`` is the script
that scores them on the paper_2d test set.
"""

from __future__ import annotations

import time

import numpy as np
from skimage.restoration import richardson_lucy, wiener

from .scoring import mean_scores, scores


def _padded(fn, image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    r = psf.shape[0] // 2
    big = np.pad(image, r, mode="reflect")
    return fn(big, psf)[r:-r, r:-r]


def wiener_centre(image, lens, balance):
    psf = lens.psf_at((lens.field_shape[0] - 1) / 2, (lens.field_shape[1] - 1) / 2)
    return _padded(lambda im, p: wiener(im, p, balance, clip=False), image, psf)


def _rl(image, psf, n_iter):
    return richardson_lucy(np.clip(image, 1e-6, None), psf, num_iter=n_iter, clip=False)


def rl_centre(image, lens, n_iter):
    psf = lens.psf_at((lens.field_shape[0] - 1) / 2, (lens.field_shape[1] - 1) / 2)
    return _padded(lambda im, p: _rl(im, p, n_iter), image, psf)


def rl_patchwise(image, lens, n_iter):
    """Spatially varying RL: each node PSF on its own region, blended with the field's tent weights."""
    from napari_coordgate.psf.field_grid import tent_weights

    H, W = image.shape
    gy, gx = lens.grid_shape
    r = lens.psf_size // 2
    wy = tent_weights(np.arange(H), H, gy)
    wx = tent_weights(np.arange(W), W, gx)
    out = np.zeros((H, W))
    for i in range(gy):
        ys = np.flatnonzero(wy[i] > 0)
        y0, y1 = max(ys[0] - 2 * r, 0), min(ys[-1] + 1 + 2 * r, H)
        for j in range(gx):
            xs = np.flatnonzero(wx[j] > 0)
            x0, x1 = max(xs[0] - 2 * r, 0), min(xs[-1] + 1 + 2 * r, W)
            crop = image[y0:y1, x0:x1]
            psf = lens.psfs[i, j].astype(np.float64)
            pad = min(r, crop.shape[0] - 1, crop.shape[1] - 1)
            big = np.pad(crop, pad, mode="reflect")
            part = _rl(big, psf, n_iter)[pad:pad + crop.shape[0], pad:pad + crop.shape[1]]
            out[y0:y1, x0:x1] += np.outer(wy[i, y0:y1], wx[j, x0:x1]) * part
    return out


METHODS = {
    "Wiener (centre PSF)": (wiener_centre, [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1]),
    "Richardson-Lucy (centre PSF)": (rl_centre, [5, 10, 20, 40, 80]),
    "patch-wise Richardson-Lucy (local PSFs)": (rl_patchwise, [5, 10, 20, 40, 80]),
}


def run(method, images, lens, param):
    fn = METHODS[method][0]
    t0 = time.perf_counter()
    pred = np.stack([fn(im.astype(np.float64), lens, param) for im in images])
    return pred, (time.perf_counter() - t0) / len(images)


#: Parameters tried by :func:`run_tuned` (Wiener balance, Richardson-Lucy iterations); noisy images with
#: strong blur favour heavy regularisation, so the grids reach further than :data:`METHODS`' own.
CALIBRATED_GRIDS = {"wiener": [1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0], "rl": [2, 3, 5, 10, 20]}


def run_tuned(field, test: tuple, tune: tuple) -> dict:
    """Every method with the PSFs of ``field``, its parameter tuned on ``tune``, scored on ``test``.

    ``test`` and ``tune`` are ``(blurred, sharp)`` pairs of normalised images.
    Returns ``{method: {"param", "tuning_psnr", "s_per_image", **scores}}``
    (:func:`lib.scoring.mean_scores`); prints one line per method.
    """
    out = {}
    for method in METHODS:
        grid = CALIBRATED_GRIDS["wiener" if method.startswith("Wiener") else "rl"]
        tuned = {p: scores(run(method, tune[0], field, p)[0], tune[1])["psnr"] for p in grid}
        best = max(tuned, key=tuned.get)
        pred, seconds = run(method, test[0], field, best)
        r = mean_scores(pred, test[1])
        out[method] = {"param": best, "tuning_psnr": tuned, "s_per_image": seconds, **r}
        print(f"  classical {method}: param {best}, PSNR {r['psnr']:.2f} (edge {r['psnr_edge']:.2f})", flush=True)
    return out
