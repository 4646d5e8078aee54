"""Inference speed and memory: CoordGate overhead, throughput, peak memory vs image size.

Subcommands::

    python benchmarks/speed.py overhead   [--size 1024] [--depth 3] [--channels 32] [--reps 5]
    python benchmarks/speed.py throughput [--size 2048] [--device cpu]
    python benchmarks/speed.py memory     [--sizes 512 1024 2048 4096] [--tile 512]

``overhead`` times ``deblur`` with a CG U-Net and with the same U-Net without
gates (identical backbone weights), alternating A/B to share the machine's
load, after a first (cold) call that fills the gate cache; the median of the
warm calls is reported. ``memory`` runs each size in a fresh process and
reports the growth of peak resident memory during ``deblur`` (and during the
chunked dask path writing to Zarr with ``--dask``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from lib.common import machine, write_results
from lib.timing import timed


def _models(depth, channels, field):
    from napari_coordgate import CGUNet, UNet

    torch.manual_seed(0)
    cg = CGUNet(depth, field_shape=field, base_channels=channels).eval()
    plain = UNet(depth, base_channels=channels, field_shape=field).eval()
    # same backbone weights: the gated blocks wrap the plain blocks' DoubleConv as `.block`
    state = {k.replace(".block.", ".conv."): v for k, v in cg.state_dict().items() if ".gate." not in k}
    plain.load_state_dict(state)
    return cg, plain


def overhead(args):
    from napari_coordgate import deblur

    field = (args.size, args.size)
    cg, plain = _models(args.depth, args.channels, field)
    image = np.random.default_rng(0).random((args.planes, *field), dtype=np.float32)
    tile = None if args.tile is None else (args.tile, args.tile)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    run = {name: (lambda m=m: deblur(image, m, device=args.device, tile_shape=tile, intensity_range=(0, 1)))
           for name, m in (("cg", cg), ("plain", plain))}
    cold = {name: timed(fn, sync) for name, fn in run.items()}
    warm = {"cg": [], "plain": []}
    for _ in range(args.reps):
        for name in ("plain", "cg"):
            warm[name].append(timed(run[name], sync))
    med = {k: float(np.median(v)) for k, v in warm.items()}
    mp = image.size / 1e6
    # The network alone, called repeatedly in inference mode: after the first call the
    # gates come from CoordGate's cache (deblur() itself calls model.eval(), which empties it).
    x = torch.from_numpy(image[0])[None, None].to(args.device)
    fwd = {"cg": [], "plain": []}
    with torch.inference_mode():
        cg.to(args.device).eval(), plain.to(args.device).eval()
        for m in (cg, plain):
            m(x, (0, 0))
        for _ in range(args.reps):
            for name, m in (("plain", plain), ("cg", cg)):
                fwd[name].append(timed(lambda m=m: m(x, (0, 0)), sync))
    fwd_med = {k: float(np.median(v)) for k, v in fwd.items()}
    result = {"size": args.size, "planes": args.planes, "depth": args.depth, "channels": args.channels, "tile": args.tile,
              "device": args.device, "cold_s": cold, "warm_s": warm, "warm_median_s": med,
              "overhead_pct": 100 * (med["cg"] / med["plain"] - 1),
              "forward_cached_s": fwd, "forward_cached_median_s": fwd_med,
              "forward_cached_overhead_pct": 100 * (fwd_med["cg"] / fwd_med["plain"] - 1),
              "params": {"cg": cg.n_parameters(), "plain": plain.n_parameters()},
              "mp_per_s": {k: mp / v for k, v in med.items()}}
    print(f"{args.planes} x {args.size}x{args.size}, depth {args.depth}, {args.channels} ch, tile {args.tile or 'default'}, {args.device}: "
          f"U-Net {med['plain']:.3f} s, CG U-Net {med['cg']:.3f} s warm (median of {args.reps}) -> overhead "
          f"{result['overhead_pct']:+.1f} %; cold {cold['plain']:.3f} / {cold['cg']:.3f} s; network alone with the gate "
          f"cache warm: {fwd_med['plain']:.3f} / {fwd_med['cg']:.3f} s -> {result['forward_cached_overhead_pct']:+.1f} %")
    return result


def throughput(args):
    from napari_coordgate import deblur

    field = (args.size, args.size)
    cg, _ = _models(args.depth, args.channels, field)
    image = np.random.default_rng(0).random(field, dtype=np.float32)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    tile = None if args.tile is None else (args.tile, args.tile)
    fn = lambda: deblur(image, cg, device=args.device, tile_shape=tile)  # noqa: E731
    cold = timed(fn, sync)
    times = [timed(fn, sync) for _ in range(args.reps)]
    mp = image.size / 1e6
    result = {"size": args.size, "depth": args.depth, "channels": args.channels, "device": args.device, "tile": args.tile,
              "cold_s": cold, "warm_s": times, "mp_per_s": mp / float(np.median(times))}
    print(f"CG U-Net({args.depth}) {args.channels} ch on {args.size}x{args.size} ({args.device}, tile {args.tile or 'default'}): "
          f"{result['mp_per_s']:.3f} MP/s warm (median of {args.reps}); cold {cold:.2f} s")
    return result


def _child(size: int, tile: int | None, mode: str, depth: int, channels: int, chunk: int | None = None) -> dict:
    """Runs in a fresh process: peak RSS growth while deblurring one size x size image."""
    import dask.array as da

    from napari_coordgate import CGUNet, deblur
    from napari_coordgate.scale import deblur_dask
    from napari_coordgate.scale.dask_deblur import DEFAULT_CHUNK

    torch.manual_seed(0)
    model = CGUNet(depth, field_shape=(size, size), base_channels=channels).eval()
    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    deblur(image[:64, :64], model, device="cpu")  # load kernels, warm allocators
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if mode == "dask":
        import zarr

        with tempfile.TemporaryDirectory() as tmp:
            src = zarr.open_array(f"{tmp}/in.zarr", mode="w", shape=image.shape, chunks=(1024, 1024), dtype="f4")
            src[...] = image
            del image
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            tile_shape = None if tile is None else (tile, tile)  # None: the library's default
            lazy = deblur_dask(da.from_zarr(src), model, chunk_size=chunk or DEFAULT_CHUNK, tile_shape=tile_shape,
                               intensity_range=(0, 1), device="cpu")
            lazy.to_zarr(f"{tmp}/out.zarr", compute=True)
    else:
        deblur(image, model, device="cpu", tile_shape=None if tile is None else (tile, tile))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"size": size, "mode": mode, "tile": tile, "chunk": chunk, "peak_growth_mib": (after - before) / 1024,
            "image_mib": size * size * 4 / 2**20, "seconds": time.perf_counter() - t0}


def memory(args):
    rows = []
    for size in args.sizes:
        modes = [("tiled", args.tile)] + ([("untiled", size)] if size <= args.untiled_max else [])
        modes += [("dask", args.dask_tile)] if args.dask else []
        if args.dask_only:
            modes = [m for m in modes if m[0] == "dask"]
        for mode, tile in modes:
            cmd = [sys.executable, __file__, "_child", str(size), str(tile), mode, str(args.depth), str(args.channels),
                   str(args.chunk)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            rows.append(row)
            print(f"  {size:5d}^2 {mode:8s} tile {str(tile):5s}: peak RSS growth {row['peak_growth_mib']:8.1f} MiB "
                  f"(image {row['image_mib']:.1f} MiB) in {row['seconds']:.1f} s", flush=True)
    return {"depth": args.depth, "channels": args.channels, "rows": rows}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        size, tile, mode, depth, channels, chunk = sys.argv[2:8]
        print(json.dumps(_child(int(size), None if tile == "None" else int(tile), mode, int(depth), int(channels),
                                None if chunk == "None" else int(chunk))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("overhead", "throughput", "memory"):
        p = sub.add_parser(name)
        p.add_argument("--depth", type=int, default=3)
        p.add_argument("--channels", type=int, default=32)
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--reps", type=int, default=5)
        p.add_argument("--out", default=None)
        if name == "memory":
            p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
            p.add_argument("--tile", type=int, default=512)
            p.add_argument("--dask", action="store_true", help="also the chunked dask path (Zarr in, Zarr out)")
            p.add_argument("--dask-only", action="store_true", help="only the dask path")
            p.add_argument("--chunk", type=int, default=None, help="dask chunk side (default: the library's)")
            p.add_argument("--dask-tile", type=int, default=None, help="tile inside a dask chunk (default: the library's)")
            p.add_argument("--untiled-max", type=int, default=2048, help="largest size also run as one tile")
        else:
            p.add_argument("--size", type=int, default=1024 if name == "overhead" else 2048)
            p.add_argument("--tile", type=int, default=None)
            if name == "overhead":
                p.add_argument("--planes", type=int, default=1, help="planes in the stack (gates are cached after the first)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    result = {"overhead": overhead, "throughput": throughput, "memory": memory}[args.what](args)
    tag = f"{args.what}_{args.device.replace(':', '')}_d{args.depth}_c{args.channels}"
    tag += f"_p{args.planes}" if getattr(args, "planes", 1) > 1 else ""
    path = write_results("speed", f"speed_{tag}", {"args": vars(args), "machine": info, "result": result}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
