"""Classical deconvolution baselines on the paper_2d test set (same lens, same images).

The methods of :mod:`lib.classical`, with the true local PSFs of the lens:

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

from lib.classical import METHODS, run
from lib.common import TEST_SEED, machine, write_results
from lib.heldout import paper_lens, test_set
from lib.scoring import pooled_scores, psnr_map


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
    before = pooled_scores(test_blurred, test_sharp)
    print(f"field {args.field}; blurred input PSNR {before['psnr']:.2f} dB (centre {before['psnr_centre']:.2f}, "
          f"edge {before['psnr_edge']:.2f})", flush=True)
    rows = []
    for method, (_, grid) in METHODS.items():
        tuned = {p: pooled_scores(run(method, tune.blurred, lens, p)[0], tune.sharp)["psnr"] for p in grid}
        best = max(tuned, key=tuned.get)
        pred, seconds = run(method, test_blurred, lens, best)
        row = {"method": method, "param": best, "tuning_psnr": tuned, **pooled_scores(pred, test_sharp),
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
    payload = {"args": vars(args), "machine": machine(), "input": before, "rows": rows}
    path = write_results("classical", f"classical_{args.field}", payload, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
