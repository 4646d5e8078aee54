"""Training as the quality benchmarks train: the settings of ``train_quality.py``, a wall-clock budget."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .scoring import evaluate


def training_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``train_quality.py``: the training settings the quality benchmarks share."""
    p = argparse.ArgumentParser(description=description)
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
    return p


def training_args(argv=None) -> argparse.Namespace:
    """The training settings of ``train_quality.py`` for the options in ``argv`` (the rest at their defaults)."""
    return training_parser().parse_args(argv)


def train_for(model, data, args, device) -> dict:
    """Train until the wall-clock budget is spent; the model keeps its best weights."""
    from napari_coordgate.training import train

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


def train_models(psf_field, field: tuple, args, train_args, device, test: tuple) -> dict:
    """Train each of ``args.models`` on data made with ``psf_field``; score on the held-out ``test``."""
    from napari_coordgate import CGUNet, UNet
    from napari_coordgate.data import make_training_set

    noise = {"photons": args.photons, "read_noise": args.read_noise}
    out = {}
    for arch in args.models:
        torch.manual_seed(train_args.seed)
        if arch == "CGUNet":
            model = CGUNet(3, field_shape=field, base_channels=train_args.base, gate_hidden=train_args.gate_hidden,
                           gate_layers=train_args.gate_layers)
        else:
            model = UNet(3, base_channels=train_args.base, field_shape=field)
        data = make_training_set(psf_field, patch_size=train_args.patch, n_val=train_args.n_val, noise=noise,
                                 seed=train_args.seed)
        run = train_for(model, data, train_args, device)
        r = evaluate(model, test[0], test[1], device)
        out[arch] = {**run, "parameters": model.n_parameters(), **r}
        print(f"  {arch}: {run['steps']} steps, PSNR {r['psnr']:.2f} (centre {r['psnr_centre']:.2f}, "
              f"edge {r['psnr_edge']:.2f})", flush=True)
    return out
