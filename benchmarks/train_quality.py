"""Acceptance experiment: does a CG U-Net(3) remove a simulated lens's edge blur?

A simulated lens (sharp on axis; defocus, astigmatism and coma growing towards
the corners, so the blur changes both its size and its orientation across the
field) is calibrated exactly (its PSF field is known). A CG U-Net(3) and a
plain U-Net(3) of the same width are trained on the same data for the same
wall-clock budget; both are then scored on held-out test specimens that
neither training nor model selection saw. Prints a markdown table of PSNR
(whole field, centre, edge) and SSIM, blurred input vs network output, and
the per-image paired difference CG - U-Net per region (mean +/- standard
error over the test images).

Usage::

    python benchmarks/train_quality.py            # 5 minutes per model
    python benchmarks/train_quality.py --minutes 1 --field 128 --json results.json
    python benchmarks/train_quality.py --defocus-edge 2 --astigmatism-edge 0 --coma-edge 0  # defocus only
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from napari_coordgate import CGUNet, UNet
from napari_coordgate.data import make_training_set
from napari_coordgate.device import describe_device, resolve_device
from napari_coordgate.psf.simulate import simulate_lens
from napari_coordgate.training import psnr, region_masks, regional_psnr, ssim, train


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock training budget per model")
    p.add_argument("--field", type=int, default=128, help="side of the square field (>= 128 for the acceptance test)")
    p.add_argument("--defocus-edge", type=float, default=1.5, help="defocus at the field corner, in waves")
    p.add_argument("--astigmatism-edge", type=float, default=1.0, help="astigmatism at the corner, in waves")
    p.add_argument("--coma-edge", type=float, default=0.5, help="coma at the corner, in waves")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--base", type=int, default=16, help="base channels of both networks")
    p.add_argument("--gate-hidden", type=int, default=16, help="width of the CoordGate MLPs")
    p.add_argument("--gate-layers", type=int, default=1, help="hidden layers of the CoordGate MLPs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--plateau-patience", type=int, default=6, help="validations without improvement before lr/2")
    p.add_argument("--schedule", choices=("cosine", "plateau"), default="cosine",
                   help="cosine: warm-up + cosine over the time budget (the default of train()); plateau: the "
                        "earlier lr/2 on plateaus with early stopping (how results before issue #10 were made)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 autocast where the CPU/GPU has native bf16 (results before issue #10: fp32)")
    p.add_argument("--n-val", type=int, default=8)
    p.add_argument("--n-test", type=int, default=24)
    p.add_argument("--photons", type=float, default=200.0, help="noise: photons at intensity 1.0")
    p.add_argument("--read-noise", type=float, default=2.0)
    p.add_argument("--models", nargs="+", default=["CGUNet", "UNet"], choices=["CGUNet", "UNet"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this JSON file")
    return p.parse_args(argv)


def evaluate(model, images: np.ndarray, truth: np.ndarray, device) -> dict:
    """Score a model on full-field normalised test images (offset (0, 0))."""
    model.eval()
    with torch.inference_mode():
        pred = np.stack([model(torch.from_numpy(x[None, None]).to(device), (0, 0))[0, 0].float().cpu().numpy()
                         for x in images])
    return scores(pred, truth)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Mean scores, plus the per-image PSNR per region (for paired comparisons)."""
    masks = region_masks(truth.shape[-2:])
    per_image = {name: [regional_psnr(p, t, masks)[name] for p, t in zip(pred, truth)] for name in masks}
    per_image["whole"] = [psnr(p, t) for p, t in zip(pred, truth)]
    return {"psnr": psnr(pred, truth), "psnr_centre": float(np.mean(per_image["centre"])),
            "psnr_edge": float(np.mean(per_image["edge"])), "ssim": ssim(pred, truth), "per_image": per_image}


def paired_difference(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and standard error of the per-image difference ``a - b``."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def train_for(model, data, args, device) -> dict:
    """Train until the wall-clock budget is spent; the model keeps its best weights."""
    if args.schedule == "cosine":
        how = dict(time_budget_s=args.minutes * 60, schedule="cosine")
    else:
        how = dict(steps=10**7, schedule="plateau", plateau_patience=args.plateau_patience,
                   early_stop_patience=3 * args.plateau_patience)
    gen = train(model, data, lr=args.lr, batch_size=args.batch, device=device, val_every=args.val_every,
                precision=args.precision, seed=args.seed, preview=False, **how)
    start, last, stopped_early = time.perf_counter(), None, False
    try:
        for record in gen:
            last = record
            if record.val_loss is not None:
                print(f"  {model.arch} step {record.step:5d}  t={record.elapsed_s:6.1f}s"
                      f"  train {record.train_loss or 0:.4f}  val {record.val_loss:.4f}  psnr {record.val_psnr:.2f} (edge {record.val_psnr_edge:.2f})"
                      f"  lr {record.lr:.2g}  {record.samples_per_s:.0f} samples/s {record.message}", file=sys.stderr)
            if record.message.startswith("stopped early"):
                stopped_early = True
            if time.perf_counter() - start > args.minutes * 60:
                break
    finally:
        gen.close()  # restores the best weights
    return {"steps": last.step, "seconds": time.perf_counter() - start, "stopped_early": stopped_early,
            "samples_per_s": last.samples_per_s}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    field = (args.field, args.field)
    lens = simulate_lens(field, defocus_edge=args.defocus_edge, astigmatism_edge=args.astigmatism_edge,
                         coma_edge=args.coma_edge)
    noise = {"photons": args.photons, "read_noise": args.read_noise}
    # held-out test specimens: a different seed from the training/validation data
    test = make_training_set(lens, patch_size=args.patch, n_specimens=1, n_val=args.n_test, noise=noise,
                             seed=args.seed + 1000).validation
    baseline = scores(test.blurred, test.sharp)
    summary = lens.summary()
    print(f"lens: field {field}, PSF {lens.psf_size} px, FWHM centre {summary['fwhm_centre_px']:.1f} px, "
          f"corners {summary['fwhm_corners_mean_px']:.1f} px; device {describe_device(device)}")
    print(f"blurred input on test: centre {baseline['psnr_centre']:.2f} dB, edge {baseline['psnr_edge']:.2f} dB "
          f"(edge - centre = {baseline['psnr_edge'] - baseline['psnr_centre']:+.2f} dB)")
    results = {"args": vars(args), "lens": summary, "input": baseline, "models": {}}
    for name in args.models:
        torch.manual_seed(args.seed)
        if name == "CGUNet":
            model = CGUNet(3, field_shape=field, base_channels=args.base, gate_hidden=args.gate_hidden, gate_layers=args.gate_layers)
        else:
            model = UNet(3, base_channels=args.base, field_shape=field)
        data = make_training_set(lens, patch_size=args.patch, n_val=args.n_val, noise=noise, seed=args.seed)
        run = train_for(model, data, args, device)
        results["models"][name] = {**run, "parameters": model.n_parameters(),
                                   **evaluate(model, test.blurred, test.sharp, device)}
    print()
    print("| | params | steps | PSNR | PSNR centre | PSNR edge | SSIM |")
    print("|---|---|---|---|---|---|---|")
    print(f"| blurred input | | | {baseline['psnr']:.2f} | {baseline['psnr_centre']:.2f} | "
          f"{baseline['psnr_edge']:.2f} | {baseline['ssim']:.3f} |")
    for name, r in results["models"].items():
        label = "CG U-Net(3)" if name == "CGUNet" else "U-Net(3)"
        print(f"| {label} | {r['parameters']:,} | {r['steps']} | {r['psnr']:.2f} | {r['psnr_centre']:.2f} | "
              f"{r['psnr_edge']:.2f} | {r['ssim']:.3f} |")
    if set(results["models"]) == {"CGUNet", "UNet"}:
        cg, un = results["models"]["CGUNet"]["per_image"], results["models"]["UNet"]["per_image"]
        results["cg_minus_unet"] = {}
        print(f"\nCG U-Net(3) - U-Net(3), paired over {args.n_test} test images (mean +/- standard error):")
        for region in ("whole", "centre", "edge"):
            mean, se = paired_difference(cg[region], un[region])
            results["cg_minus_unet"][region] = {"mean_db": mean, "se_db": se}
            print(f"  {region:6s} {mean:+.2f} +/- {se:.2f} dB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
