"""How fast the network computes on this machine: raw convolutions, deblur() and training (issue #10).

Everything is measured in one process, with the thread counts given, so the
ratios compare like with like:

- a 3x3 convolution, 32 to 32 channels, on a 512 x 512 image, in NCHW
  float32, channels_last float32 and channels_last with bf16 autocast
  (GFLOP/s);
- ``deblur()`` of a 512 x 512 image with CG U-Net(3) width 16, in every
  precision the installed package offers (MP/s);
- ``train()`` of the same network, batch 8 of 64 x 64 patches (samples/s,
  validation excluded);
- optionally ``torch.compile`` and ONNX Runtime on the forward pass
  (``--compile``, ``--onnx``; measured, not used by the package).

Run it once with this checkout and once with an older one on ``PYTHONPATH``
(the package before issue #10 has no ``precision`` argument; its one path
is reported as ``default``)::

    python benchmarks/compute_speed.py --threads 1 2 --json benchmarks/results/compute_speed/compute_speed.json
    PYTHONPATH=/path/to/old/src python benchmarks/compute_speed.py --threads 1 2 --label before --json ...
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time

import numpy as np
import torch

from lib.timing import median_time


def conv_gflops(repeats: int) -> dict:
    conv = torch.nn.Conv2d(32, 32, 3, padding=1, bias=False).eval()
    x = torch.randn(1, 32, 512, 512)
    flop = 2 * 32 * 32 * 9 * 512 * 512
    out = {}
    with torch.inference_mode():
        out["nchw_fp32"] = flop / median_time(lambda: conv(x), repeats) / 1e9
        conv_cl, x_cl = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        out["channels_last_fp32"] = flop / median_time(lambda: conv_cl(x_cl), repeats) / 1e9
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out["channels_last_bf16"] = flop / median_time(lambda: conv_cl(x_cl), repeats) / 1e9
    return out


def deblur_mps(repeats: int) -> dict:
    from napari_coordgate import CGUNet, deblur

    torch.manual_seed(0)
    model = CGUNet(3, field_shape=(512, 512), base_channels=16).eval()
    image = (np.random.default_rng(0).random((512, 512)) * 1000).astype(np.uint16)
    has_precision = "precision" in inspect.signature(deblur).parameters
    out, results = {}, {}
    for precision in (("fp32", "bf16", "auto") if has_precision else ("default",)):
        kwargs = {"precision": precision} if has_precision else {}
        seconds = median_time(lambda: results.__setitem__(precision, deblur(image, model, device="cpu", **kwargs)),
                            repeats)
        out[precision] = 0.262144 / seconds
    if has_precision:
        span = float(results["fp32"].max() - results["fp32"].min())
        mse = float(np.mean((results["bf16"] - results["fp32"]) ** 2)) / span**2
        out["bf16_vs_fp32_psnr_db"] = float(10 * np.log10(1 / mse)) if mse > 0 else float("inf")
    return out


def training_samples_per_s(steps: int) -> dict:
    from napari_coordgate import CGUNet
    from napari_coordgate.data import make_training_set
    from napari_coordgate.psf import simulate_lens
    from napari_coordgate.training import train

    field = simulate_lens((256, 256), grid=(4, 4), psf_size=21)
    data = make_training_set(field, patch_size=64, n_specimens=8, n_val=1, seed=0)
    has_precision = "precision" in inspect.signature(train).parameters
    out = {}
    for precision in (("fp32", "auto") if has_precision else ("default",)):
        torch.manual_seed(0)
        kwargs = {"precision": precision} if has_precision else {}
        rates = []
        for record in train(CGUNet(3, field_shape=(256, 256), base_channels=16), data, steps=steps, val_every=10**6, device="cpu",
                            preview=False, **kwargs):
            if record.step > 10 and record.val_loss is None:
                rates.append(record.samples_per_s)
        out[precision] = float(np.median(rates))
    return out


def compiled_forward(repeats: int, onnx: bool, compile_: bool) -> dict:
    from napari_coordgate import CGUNet

    torch.manual_seed(0)
    model = CGUNet(3, field_shape=(512, 512), base_channels=16).eval()
    x = torch.rand(1, 1, 512, 512)
    out = {}
    with torch.inference_mode():
        out["eager_fp32"] = 0.262144 / median_time(lambda: model(x, (0, 0)), repeats)
    if compile_:
        try:
            t = time.perf_counter()
            compiled = torch.compile(model)
            with torch.inference_mode():
                compiled(x, (0, 0))
            out["compile_seconds"] = time.perf_counter() - t
            with torch.inference_mode():
                out["torch_compile_fp32"] = 0.262144 / median_time(lambda: compiled(x, (0, 0)), repeats)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    compiled(x, (0, 0))
                    out["torch_compile_bf16"] = 0.262144 / median_time(lambda: compiled(x, (0, 0)), repeats)
        except Exception as err:  # report, do not fail the benchmark
            out["torch_compile_error"] = f"{type(err).__name__}: {str(err)[:200]}"
    if onnx:
        try:
            import onnxruntime as ort

            class Fixed(torch.nn.Module):
                def __init__(self, net):
                    super().__init__()
                    self.net = net

                def forward(self, image):
                    return self.net(image, (0, 0))

            path = "/tmp/coordgate_speed.onnx"
            torch.onnx.export(Fixed(model), (x,), path, input_names=["image"], output_names=["out"], dynamo=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feed = {"image": x.numpy()}
            out["onnxruntime_fp32"] = 0.262144 / median_time(lambda: session.run(None, feed), repeats)
            out["onnxruntime_version"] = ort.__version__
        except Exception as err:
            out["onnx_error"] = f"{type(err).__name__}: {str(err)[:200]}"
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=120)
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the forward pass")
    p.add_argument("--onnx", action="store_true", help="also time ONNX Runtime (pip install onnxruntime onnx)")
    p.add_argument("--label", default="this checkout")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import napari_coordgate

    results = {"label": args.label, "package": napari_coordgate.__file__, "torch": torch.__version__,
               "cpu_bf16": bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()), "runs": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        run = {"conv_gflops": conv_gflops(args.repeats), "deblur_mps": deblur_mps(args.repeats),
               "train_samples_per_s": training_samples_per_s(args.train_steps)}
        if args.compile or args.onnx:
            run["forward_mps"] = compiled_forward(args.repeats, args.onnx, args.compile)
        results["runs"][str(threads)] = run
        print(f"{args.label}, {threads} thread(s): {json.dumps(run, indent=1)}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
