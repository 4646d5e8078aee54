"""Where a training step's time goes (issue #10: why training is not 2x faster).

Times the phases of the step ``train()`` runs (the batch from
``TrainingSet.sample_batch``, the forward pass under the default compute mode,
the backward pass, the Adam step) for CG U-Net(3) width 16 and for the same
U-Net(3) without gates, then profiles the CG U-Net's step with
``torch.profiler`` and sums the operator self-times into groups:

- ``convolution``: every convolution forward and backward (3x3 backbone and
  the gate MLPs' 1x1 layers);
- ``bilinear up-sampling``: the decoder's ``F.interpolate`` and its backward;
- ``SiLU``: the gate MLPs' activations, forward and backward;
- ``ReLU``, ``element-wise``, ``casts and copies``, ``optimizer``, ``other``.

Each CG U-Net is timed with the gate lattice strides given (``--gate-strides``;
1 runs the gate MLPs at every pixel, as before issue #21).

Last, it times two exact rewrites of the decoder's bilinear 2x up-sampling
(forward and backward, on the decoder's tensor sizes, bf16 and fp32 channels_last)
against ``F.interpolate``: shifted sums, and a fixed depthwise transposed convolution.

Usage::

    python benchmarks/training_profile.py --threads 1 --steps 60
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from lib.common import machine, write_results

from napari_coordgate import CGUNet, UNet
from napari_coordgate.data import make_training_set
from napari_coordgate.precision import compute_mode
from napari_coordgate.psf import simulate_lens

GROUPS = {
    "convolution": ("convolution", "conv2d", "mkldnn_conv"),
    "bilinear up-sampling": ("upsample",),
    "SiLU": ("silu",),
    "ReLU": ("relu", "threshold", "clamp_min"),
    "casts and copies": ("copy_", "_to_copy", "to", "contiguous", "clone", "empty", "resize_"),
    "element-wise": ("add", "mul", "sub", "div", "cat", "max_pool", "mse", "pow", "sum", "mean"),
    "optimizer": ("adam", "lerp", "addcdiv", "sqrt", "_foreach", "zero_grad"),
}


def _group(name: str) -> str:
    name = name.lower().removeprefix("aten::")
    for group, keys in GROUPS.items():
        if any(name.startswith(k) or k in name for k in keys):
            return group
    return "other"


def _upsample_shifted(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x (align_corners=False) as sums of shifted copies: 0.75 x[i] + 0.25 x[i -/+ 1], edges clamped."""
    for dim in (2, 3):
        n = x.shape[dim]
        prev = torch.cat((x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)), dim)
        nxt = torch.cat((x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)), dim)
        shape = list(x.shape)
        shape[dim] = 2 * n
        x = torch.stack((0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt), dim + 1).reshape(shape)
    return x


def _upsample_transposed(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x as a depthwise transposed convolution with the kernel [1, 3, 3, 1] / 4 on each axis."""
    k = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=x.dtype)
    weight = (k[:, None] * k[None, :])[None, None].expand(x.shape[1], 1, 4, 4)
    y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, stride=2, groups=x.shape[1])
    return y[..., 3:3 + 2 * x.shape[2], 3:3 + 2 * x.shape[3]]


def upsampling_variants(batch: int, repeats: int = 30) -> list[dict]:
    """Forward + backward time (ms) of each up-sampling, and its largest difference from ``F.interpolate``."""
    def reference(x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        for channels, side in ((32, 32), (64, 16)):  # the decoder's inputs, width 16, 64 px patches
            x = torch.randn(batch, channels, side, side).to(dtype).contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            row = {"dtype": str(dtype).removeprefix("torch."), "shape": list(x.shape)}
            for name, fn in (("interpolate", reference), ("shifted sums", _upsample_shifted),
                             ("transposed conv", _upsample_transposed)):
                row[f"{name} max diff"] = float((fn(x) - reference(x)).detach().abs().max())
                for _ in range(5):
                    fn(x).float().sum().backward()
                t = time.perf_counter()
                for _ in range(repeats):
                    fn(x).float().sum().backward()
                row[f"{name} ms"] = (time.perf_counter() - t) / repeats * 1000
            rows.append(row)
            print("  up-sampling " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in row.items()), flush=True)
    return rows


def make_step(model, data, mode, batch, rng):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mode.prepare_model(model)
    model.train()

    def step() -> list[float]:
        t = [time.perf_counter()]
        blurred, sharp, offsets = data.sample_batch(batch, rng)
        blurred = mode.prepare_input(blurred)
        t.append(time.perf_counter())
        with mode.autocast():
            pred = model(blurred, offsets)
        loss = F.mse_loss(pred.float(), sharp)
        t.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.append(time.perf_counter())
        optimizer.step()
        loss.item()
        t.append(time.perf_counter())
        return list(np.diff(t))

    return step


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--gate-strides", type=int, nargs="+", default=[1],
                   help="CG U-Nets to time, one per gate lattice stride (1: the MLP at every pixel)")
    p.add_argument("--no-upsampling", action="store_true", help="skip the up-sampling rewrites")
    p.add_argument("--json", help="write the results here instead of results/training_profile/training_profile.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    field = simulate_lens((256, 256), grid=(4, 4), psf_size=21)
    data = make_training_set(field, patch_size=args.patch, n_specimens=8, n_val=1, seed=0)
    mode = compute_mode(torch.device("cpu"), args.precision)
    result = {"args": vars(args), "machine": machine(), "mode": mode.describe(), "phases_ms": {}}
    phases = ("data", "forward", "backward", "optimizer")
    models = [(f"CGUNet stride {stride}", CGUNet(3, field_shape=(256, 256), base_channels=16, gate_stride=stride))
              for stride in args.gate_strides]
    models.append(("UNet", UNet(3, base_channels=16, field_shape=(256, 256))))
    for name, model in models:
        torch.manual_seed(0)
        step = make_step(model, data, mode, args.batch, np.random.default_rng(0))
        for _ in range(10):
            step()
        times = np.array([step() for _ in range(args.steps)]) * 1000
        row = dict(zip(phases, times.mean(0).round(2).tolist()))
        row["total"] = float(times.sum(1).mean().round(2))
        row["samples_per_s"] = float(args.batch / times.sum(1).mean() * 1000)
        result["phases_ms"][name] = row
        print(f"{name:16s} " + "  ".join(f"{k} {v:.1f} ms" for k, v in row.items() if k in phases)
              + f"  total {row['total']:.1f} ms, {row['samples_per_s']:.0f} samples/s", flush=True)
        if not name.startswith("CGUNet"):
            continue
        from torch.profiler import ProfilerActivity, profile

        n = max(10, args.steps // 3)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                step()
        groups: dict[str, float] = {}
        for event in prof.key_averages():
            groups[_group(event.key)] = groups.get(_group(event.key), 0.0) + event.self_cpu_time_total
        total = sum(groups.values())
        share = {k: v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}
        ms_per_step = {k: v / n / 1000 for k, v in groups.items()}
        result.setdefault("profile_share", {})[name] = share
        result.setdefault("profile_ms_per_step", {})[name] = ms_per_step
        for k, part in share.items():
            print(f"  {k:22s} {100 * part:5.1f} %  ({ms_per_step[k]:.1f} ms per step)")
    if not args.no_upsampling:
        result["upsampling"] = upsampling_variants(args.batch)
    write_results("training_profile", "training_profile", result, out=args.json)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
