"""Paper Sec. IV-B: deblurring a simulated lens with U-Nets, CG U-Nets and a CoordConv U-Net.

Every model is trained on the same data stream (the same seed) for the same
number of steps, optionally capped by wall-clock minutes, then scored on a
held-out test set blurred by the same lens: PSNR, SSIM, PSNR at the field
centre and edge (and an 8 x 8 PSNR map), parameter count, and inference time
per megapixel.

As in the paper, models see whole fields (``--patch`` defaults to the field
size), so a plain U-Net can locate itself from the image border (the paper's
zero-padding argument). With smaller patches it cannot: try ``--patch 64``.

Scales (``--scale``), each overridable by the options below it:

- ``tiny``: field 64, 4 base channels, 60 steps: a smoke test (about a minute).
- ``small``: field 128, 8 base channels, 400 steps, 6 min cap per model: meaningful on 2 CPU cores.
- ``full``: field 256, 32 base channels, 5000 steps: for a GPU (``--device cuda``).

Usage::

    python benchmarks/paper_2d.py --scale small --threads 1
    python benchmarks/paper_2d.py --scale full --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lib.common import machine, write_results
from lib.heldout import paper_lens, test_set
from lib.scoring import pooled_scores, psnr_map
from lib.timing import median_time

SCALES = {
    "tiny": dict(field=64, channels=4, steps=60, minutes=None, batch=4, test_images=4),
    "small": dict(field=128, channels=8, steps=400, minutes=6.0, batch=8, test_images=8),
    "full": dict(field=256, channels=32, steps=5000, minutes=None, batch=8, test_images=16),
}
MODELS = ["UNet(3)", "UNet(4)", "UNet(5)", "UNet(6)", "CGUNet(3)", "CGUNet(6)", "CoordConvUNet(6)"]


def build(name: str, field: int, channels: int):
    from napari_coordgate.models.unet import build_model

    arch, depth = name.rstrip(")").split("(")
    return build_model({"arch": arch, "depth": int(depth), "base_channels": channels, "field_shape": [field, field]})


def infer_ms_per_mp(model, image: np.ndarray, device: str, reps: int = 5) -> float:
    """Warm inference through ``deblur`` (gate cache filled by a first call); median of ``reps``."""
    from napari_coordgate import deblur

    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    seconds = median_time(lambda: deblur(image, model, device=device, intensity_range=(0.0, 1.0)), reps, sync=sync)
    return seconds * 1e3 / (image.size / 1e6)


def run_model(name, args, lens, test_blurred, test_sharp):
    from napari_coordgate import deblur
    from napari_coordgate.cli.training import train_model
    from napari_coordgate.data import make_training_set

    torch.manual_seed(args.seed)
    model = build(name, args.field, args.channels)
    data = make_training_set(lens, patch_size=args.patch, n_specimens=args.specimens, n_val=4,
                             noise=args.noise, seed=args.seed)
    trained = train_model(lens, model=model, training_set=data, steps=args.steps, minutes=args.minutes,
                          batch_size=args.batch, lr=args.lr, device=args.device, seed=args.seed,
                          val_every=args.val_every, quiet=True, early_stop_patience=args.patience)
    tm = trained.metadata["training"]
    pred = np.stack([deblur(b, model, device=args.device, intensity_range=(0.0, 1.0)) for b in test_blurred])
    row = {"model": name, "params": model.n_parameters(), **pooled_scores(pred, test_sharp),
           "psnr_map": psnr_map(pred, test_sharp), "infer_ms_per_mp": infer_ms_per_mp(model, test_blurred[0], args.device),
           "steps": tm["steps"], "best_step": tm["best_step"], "train_s": tm["elapsed_s"], "stopped_by": tm["stopped_by"],
           "val_psnr": tm["val_psnr"]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=SCALES, default="small")
    ap.add_argument("--field", type=int)
    ap.add_argument("--channels", type=int, help="base channels of every model")
    ap.add_argument("--steps", type=int, help="training steps per model (the same for all)")
    ap.add_argument("--minutes", type=float, help="wall-clock cap per model (training stops at whichever comes first)")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--test-images", type=int)
    ap.add_argument("--patch", type=int, help="training patch side (default: the whole field, as in the paper)")
    ap.add_argument("--specimens", type=int, default=16)
    ap.add_argument("--noise", choices=("none", "auto"), default="none",
                    help="camera noise on training and test images (the paper's data had none)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--patience", type=int, default=10**6,
                    help="stop after this many validations without improvement (default: never; every model gets all its steps)")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    for key, value in SCALES[args.scale].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.patch = args.patch or args.field
    args.noise = None if args.noise == "none" else "auto"
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    lens = paper_lens(args.field)
    s = lens.summary()
    test_blurred, test_sharp = test_set(lens, args.test_images, noise=args.noise)
    before = pooled_scores(test_blurred, test_sharp)
    print(f"lens: field {args.field}, FWHM {s['fwhm_centre_px']:.2f} px centre / {s['fwhm_corners_mean_px']:.2f} px corners; "
          f"{args.test_images} test images; blurred input PSNR {before['psnr']:.2f} dB (centre {before['psnr_centre']:.2f}, "
          f"edge {before['psnr_edge']:.2f}); base channels {args.channels}, {args.steps} steps x batch {args.batch} "
          f"of {args.patch}px patches, cap {args.minutes} min; {info['torch_threads']} threads", flush=True)
    rows = []
    for name in args.models:
        row = run_model(name, args, lens, test_blurred, test_sharp)
        rows.append(row)
        print(f"  {name:17s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.3f}  centre {row['psnr_centre']:6.2f}  "
              f"edge {row['psnr_edge']:6.2f}  params {row['params']:>9,}  {row['infer_ms_per_mp']:8.0f} ms/MP  "
              f"{row['steps']} steps ({row['stopped_by']}) in {row['train_s']:.0f} s", flush=True)
    print("\n| model | params | PSNR (dB) | SSIM | PSNR centre | PSNR edge | inference (ms / MP) | steps | train (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| blurred input | - | {before['psnr']:.2f} | {before['ssim']:.3f} | {before['psnr_centre']:.2f} | {before['psnr_edge']:.2f} | - | - | - |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['psnr_centre']:.2f} | "
              f"{r['psnr_edge']:.2f} | {r['infer_ms_per_mp']:.0f} | {r['steps']} | {r['train_s']:.0f} |")
    byname = {r["model"]: r for r in rows}
    if "CGUNet(3)" in byname and "UNet(6)" in byname:
        cg, un = byname["CGUNet(3)"], byname["UNet(6)"]
        print(f"\nCG U-Net(3) vs U-Net(6): {cg['psnr'] - un['psnr']:+.2f} dB PSNR with "
              f"{un['params'] / cg['params']:.0f}x fewer parameters")
    args.noise = args.noise or "none"
    payload = {"args": vars(args), "machine": info, "input": before, "rows": rows}
    path = write_results("paper_2d", f"paper_2d_{args.scale}", payload, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
