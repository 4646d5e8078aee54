"""Classical deconvolution baselines on the paper_2d test set (same lens, same images).

- Wiener deconvolution with the PSF at the field centre (``skimage.restoration.wiener``),
- Richardson-Lucy with the centre PSF (``skimage.restoration.richardson_lucy``),
- patch-wise Richardson-Lucy: every grid node's PSF deconvolves the region where
  that node has interpolation weight, and the results are blended with the
  same bilinear weights that define the PSF field (a spatially varying RL
  that knows the true local PSFs).

Each method's one parameter (Wiener balance, RL iterations) is chosen on a
separate tuning set and then applied to the test set. Images are reflect-padded
by the PSF radius (as the lens simulation pads) and scored like the networks.

Usage::

    python benchmarks/classical.py --field 128 --test-images 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.restoration import richardson_lucy, wiener

from _common import TEST_SEED, machine, paper_lens, psnr_map, scores, test_set, write_results


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
    from napari_coordgate.psf.field_interp import tent_weights

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--field", type=int, default=128)
    ap.add_argument("--test-images", type=int, default=8)
    ap.add_argument("--tune-images", type=int, default=2)
    ap.add_argument("--noise", choices=("none", "auto"), default="none")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    noise = None if args.noise == "none" else "auto"
    lens = paper_lens(args.field)
    test_blurred, test_sharp = test_set(lens, args.test_images, noise=noise)
    from napari_coordgate.data import make_training_set

    tune = make_training_set(lens, patch_size=args.field, n_specimens=1, n_val=args.tune_images, noise=noise,
                             seed=TEST_SEED + 1).validation
    before = scores(test_blurred, test_sharp)
    print(f"field {args.field}; blurred input PSNR {before['psnr']:.2f} dB (centre {before['psnr_centre']:.2f}, "
          f"edge {before['psnr_edge']:.2f})", flush=True)
    rows = []
    for method, (_, grid) in METHODS.items():
        tuned = {p: scores(run(method, tune.blurred, lens, p)[0], tune.sharp)["psnr"] for p in grid}
        best = max(tuned, key=tuned.get)
        pred, seconds = run(method, test_blurred, lens, best)
        row = {"method": method, "param": best, "tuning_psnr": tuned, **scores(pred, test_sharp),
               "psnr_map": psnr_map(pred, test_sharp), "s_per_image": seconds,
               "ms_per_mp": seconds * 1e3 / (test_blurred[0].size / 1e6)}
        rows.append(row)
        print(f"  {method:42s} param {best:<6} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.3f}  centre "
              f"{row['psnr_centre']:6.2f}  edge {row['psnr_edge']:6.2f}  {row['ms_per_mp']:8.0f} ms/MP", flush=True)
    print("\n| method | parameter | PSNR (dB) | SSIM | PSNR centre | PSNR edge | time (ms / MP) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['param']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['psnr_centre']:.2f} | "
              f"{r['psnr_edge']:.2f} | {r['ms_per_mp']:.0f} |")
    path = write_results(f"classical_{args.field}", {"args": vars(args), "machine": machine(), "input": before,
                                                     "rows": rows}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
