"""Training and data-generation throughput.

Measures, at one patch size:

- data generation: samples/s of ``TrainingSet.sample_batch`` (NumPy noise, and
  torch noise on the device when it is a GPU), including the bank refreshes;
- training: samples/s of full Adam steps of CG U-Net(3) and U-Net(3), with the
  same settings as :func:`napari_coordgate.training.train` (bf16 autocast and
  channels_last on CUDA).

Prints a markdown table. Works on CPU and CUDA::

    python benchmarks/bench_training.py --device cpu --threads 1
    python benchmarks/bench_training.py --device cuda --batch 32 --base 32
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from napari_coordgate import CGUNet, UNet
from napari_coordgate.data import make_training_set
from napari_coordgate.device import describe_device, resolve_device
from napari_coordgate.psf.optics.simulate import simulate_lens


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="training and data-generation throughput")
    p.add_argument("--device", default="auto")
    p.add_argument("--field", type=int, default=256)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--base", type=int, default=16, help="base channels")
    p.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_rate(data, batch: int, seconds: float, device=None) -> float:
    """Samples per second of sample_batch (optionally with noise on ``device``)."""
    rng = np.random.default_rng(0)
    data.sample_batch(batch, rng, device=device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        data.sample_batch(batch, rng, device=device)
        n += batch
    if device is not None:
        _sync(torch.device(device))
    return n / (time.perf_counter() - start)


def train_rate(model, data, batch: int, seconds: float, device: torch.device) -> float:
    """Samples per second of Adam steps on pre-made batches (the network alone)."""
    cuda = device.type == "cuda"
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [tuple(t.to(device) for t in data.sample_batch(batch, rng)) for _ in range(4)]

    def step(i):
        blurred, sharp, offsets = batches[i % len(batches)]
        with autocast():
            pred = model(blurred, offsets)
        loss = F.mse_loss(pred.float(), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):  # warm-up (cuDNN autotuning, allocator)
        step(i)
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(n)
        n += 1
        if n % 10 == 0:
            _sync(device)
    _sync(device)
    return n * batch / (time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    field = (args.field, args.field)
    lens = simulate_lens(field)
    data = make_training_set(lens, patch_size=args.patch, n_val=1, seed=0)
    rows = [("data: sample_batch, NumPy noise", data_rate(data, args.batch, args.seconds))]
    if device.type == "cuda":
        rows.append((f"data: sample_batch, noise on {device.type}", data_rate(data, args.batch, args.seconds, device)))
    for name, model in (("CG U-Net(3)", CGUNet(3, field_shape=field, base_channels=args.base)), ("U-Net(3)", UNet(3, base_channels=args.base, field_shape=field))):
        rows.append((f"train: {name}, {model.n_parameters():,} parameters", train_rate(model, data, args.batch,
                                                                                        args.seconds, device)))
    print(f"device: {describe_device(device)}; field {args.field}x{args.field}, patch {args.patch}, "
          f"batch {args.batch}, base channels {args.base}")
    print()
    print("| what | samples/s |")
    print("|---|---|")
    for what, rate in rows:
        print(f"| {what} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
