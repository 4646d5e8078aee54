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

import torch

from lib.scoring import evaluate, scores
from lib.stats import paired_difference
from lib.training import train_for, training_parser

from napari_coordgate import CGUNet, UNet
from napari_coordgate.data import make_training_set
from napari_coordgate.device import describe_device, resolve_device
from napari_coordgate.psf.optics.simulate import simulate_lens


def parse_args(argv=None) -> argparse.Namespace:
    """This script's options: the training settings of :func:`lib.training.training_parser`."""
    return training_parser(description=__doc__.split("\n\n")[0]).parse_args(argv)


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
