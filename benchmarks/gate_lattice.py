"""Gates on a lattice: does a CG U-Net keep its quality on real images? (issue #21, training speed)

The CG U-Net's gate MLPs can run on a lattice of field points ``gate_stride``
pixels apart and be interpolated linearly in between, instead of at every
pixel of every level (``gate_stride=1``, the paper's form). For each lens
(an independent library's true PSF field) this trains the product's
architecture, CG U-Net(3) width 16 with the default gate MLPs, once per
stride, from the same seed and data, for the same wall-clock budget (the
default cosine schedule over it), then deblurs held-out real specimens
blurred by that lens and reports each stride's PSNR, the paired difference
to stride 1 (mean and standard error over the images), and the steps and
samples/s the budget gave.

    python benchmarks/gate_lattice.py --lenses pyotf:coma psfmodels:strong --minutes 4 --strides 1 16

With ``--deblur-only`` it times instead ``deblur()`` of a whole sensor frame
(``--deblur-field``, 2048 by default; its gates do not all fit the gate cache)
for each stride, twice in turn, the first and a second frame each time.
Run it on an otherwise idle machine: the runs of one lens are not
interleaved.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from lib.calibration import true_field
from lib.common import append_jsonl, machine, results_dir
from lib.heldout import held_out
from lib.scoring import scores
from lib.stats import paired_difference

from napari_coordgate import CGUNet, deblur
from napari_coordgate.data import make_training_set
from napari_coordgate.training import run_training, train


def one_lens(spec: str, args) -> dict:
    library, lens = spec.split(":")
    truth = true_field(library, lens, (args.field, args.field))
    blurred, sharp = held_out(truth, args.n_test, 4242, args.photons, 2.0)
    row = {"lens": spec, "field": args.field, "minutes": args.minutes, "threads": args.threads,
           "machine": machine(), "strides": {}}
    per_image = {}
    for stride in args.strides:
        torch.manual_seed(args.seed)
        model = CGUNet(3, field_shape=truth.field_shape, base_channels=16, gate_stride=stride)
        data = make_training_set(truth, patch_size=64, n_val=4, noise={"photons": args.photons, "read_noise": 2.0},
                                 seed=args.seed)
        start = time.perf_counter()
        records = []
        run_training(train(model, data, time_budget_s=60 * args.minutes, val_every=100, device="cpu",
                           preview=False, seed=args.seed), records.append)
        seconds = time.perf_counter() - start
        last = records[-1]
        rates = [r.samples_per_s for r in records if r.val_loss is None and r.step > 20]
        # intensity_range=(0, 1): the held-out images are already normalised, as the network sees them
        pred = np.stack([deblur(b, model, device="cpu", intensity_range=(0.0, 1.0)) for b in blurred])
        s = scores(pred, sharp)
        per_image[stride] = s["per_image"]
        row["strides"][str(stride)] = {"steps": last.step, "seconds": seconds,
                                       "samples_per_s": float(np.median(rates)) if rates else None,
                                       "psnr": s["psnr"], "psnr_centre": s["psnr_centre"], "psnr_edge": s["psnr_edge"]}
        print(f"{spec} stride {stride:3d}: {last.step} steps in {seconds:.0f} s "
              f"({row['strides'][str(stride)]['samples_per_s']:.0f} samples/s), PSNR {s['psnr']:.3f} "
              f"(centre {s['psnr_centre']:.3f}, edge {s['psnr_edge']:.3f})", flush=True)
    reference = args.strides[0]
    for stride in args.strides[1:]:
        diff = {region: paired_difference(per_image[stride][region], per_image[reference][region])
                for region in ("whole", "centre", "edge")}
        row["strides"][str(stride)][f"minus_stride_{reference}_db"] = {
            region: {"mean": m, "se": se} for region, (m, se) in diff.items()}
        print(f"{spec} stride {stride} - stride {reference}: " + ", ".join(
            f"{region} {m:+.3f} +/- {se:.3f} dB" for region, (m, se) in diff.items()), flush=True)
    return row


def deblur_speed(args) -> dict:
    """Seconds and MP/s of ``deblur()`` of one sensor frame (cold gate cache) and a second one, per stride."""
    side = args.deblur_field
    image = (np.random.default_rng(0).random((side, side)) * 1000).astype(np.uint16)
    row = {"deblur_field": side, "threads": args.threads, "machine": machine(), "runs": []}
    for stride in args.strides * 2:
        torch.manual_seed(args.seed)
        model = CGUNet(3, field_shape=(side, side), base_channels=16, gate_stride=stride).eval()
        times = []
        for _ in range(2):
            start = time.perf_counter()
            deblur(image, model, device="cpu")
            times.append(time.perf_counter() - start)
        megapixels = side * side / 1e6
        row["runs"].append({"stride": stride, "first_s": times[0], "second_s": times[1],
                            "first_mp_s": megapixels / times[0], "second_mp_s": megapixels / times[1]})
        print(f"deblur {side}^2, stride {stride:3d}: first frame {times[0]:.2f} s ({megapixels / times[0]:.2f} MP/s), "
              f"second {times[1]:.2f} s ({megapixels / times[1]:.2f} MP/s)", flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lenses", nargs="+", default=["pyotf:coma", "psfmodels:strong"],
                   help="library:lens of lib/calibration.true_field")
    p.add_argument("--strides", type=int, nargs="+", default=[1, 16], help="the first is the reference")
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--field", type=int, default=384)
    p.add_argument("--n-test", type=int, default=12)
    p.add_argument("--photons", type=float, default=200.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deblur-only", action="store_true", help="time deblur() of a sensor frame instead")
    p.add_argument("--deblur-field", type=int, default=2048)
    p.add_argument("--out", default=str(results_dir("gate_lattice") / "gate_lattice.jsonl"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.deblur_only:
        append_jsonl(args.out, deblur_speed(args))
        return 0
    for spec in args.lenses:
        append_jsonl(args.out, one_lens(spec, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
