"""Train a base model on :mod:`.lens_family`: the starting point of every fine-tune.

Usage (the shipped base was made with these defaults; see docs/training.md)::

    python -m napari_coordgate.pretrained.train_base --minutes 40 --threads 1 \\
        -o src/napari_coordgate/pretrained/cgunet3_w16.safetensors

The lenses, specimens, noise and patches follow from ``--seed``, so a rerun on
the same machine and torch build makes the same model up to the number of steps
the time budget allows (give ``--steps`` for an exact rerun). The script writes
the model and updates :data:`~napari_coordgate.pretrained.base_models.REGISTRY_FILE` with its
configuration, checksum, training time and machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..data.lens_mixture import LensMixture
from ..files.atomic import atomic_write
from ..data.training_set import make_training_set
from ..model_files import save_model
from ..models.unet import CGUNet
from ..training.train import train
from .base_models import REGISTRY_FILE, registry
from .lens_family import LENS_FAMILY, random_lens

#: Photons at the bright level of the training images: log-uniform over this range.
PHOTON_RANGE = (30.0, 3000.0)


def build_data(n_lenses: int, field: int, seed: int, patch: int) -> LensMixture:
    """``n_lenses`` lenses of the family, each with its own specimens and noise level."""
    rng = np.random.default_rng(seed)
    sets = []
    for i in range(n_lenses):
        lens = random_lens(rng, (field, field))
        photons = float(np.exp(rng.uniform(*np.log(PHOTON_RANGE))))
        sets.append(make_training_set(lens, patch_size=patch, n_specimens=6, n_val=1, seed=seed * 1000 + i,
                                      noise={"photons": photons, "read_noise": 2.0}, intensity_range=2.0))
    return LensMixture(sets)


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m napari_coordgate.pretrained.train_base", description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--name", default="cgunet3-w16", help="registry name of the base (default cgunet3-w16)")
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--lenses", type=int, default=48, help="lenses drawn from the family (default 48)")
    p.add_argument("--field", type=int, default=256, help="side of each lens's square field (default 256)")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minutes", type=float, default=40.0)
    p.add_argument("--steps", type=int, default=None, help="an exact number of steps instead of the budget")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    data = build_data(args.lenses, args.field, args.seed, args.patch)
    build_s = time.perf_counter() - t0
    print(f"{args.lenses} lenses built in {build_s:.0f} s", flush=True)
    model = CGUNet(args.depth, field_shape=(args.field, args.field), base_channels=args.width)
    how = {"steps": args.steps} if args.steps else {"time_budget_s": 60.0 * args.minutes}
    gen = train(model, data, lr=args.lr, batch_size=args.batch_size, val_every=500, preview=False, seed=args.seed,
                device="cpu", **how)
    t1 = time.perf_counter()
    last = None
    for record in gen:
        last = record
        if record.val_psnr is not None:
            print(f"step {record.step}: val PSNR {record.val_psnr:.2f} dB (input {record.input_psnr:.2f}), "
                  f"{record.samples_per_s:.0f} samples/s, {record.elapsed_s:.0f} s", flush=True)
    train_s = time.perf_counter() - t1
    out = Path(args.output)
    info = {"name": args.name, "arch": model.arch, "depth": args.depth, "base_channels": args.width,
            "seed": args.seed, "steps": last.step, "batch_size": args.batch_size, "lr": args.lr,
            "lenses": args.lenses, "field": args.field, "photon_range": list(PHOTON_RANGE),
            "lens_family": {k: list(v) for k, v in LENS_FAMILY.items()},
            "val_psnr": last.val_psnr, "input_psnr": last.input_psnr,
            "build_seconds": round(build_s), "train_seconds": round(train_s),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"}
    save_model(model, out, base_model=info)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    entries = registry()
    entries[args.name] = {**info, "file": out.name, "sha256": digest, "bytes": out.stat().st_size}
    text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
    atomic_write(REGISTRY_FILE, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}…) in {train_s:.0f} s of training")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
