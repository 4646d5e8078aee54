"""Deblurring a 2048 x 2048 x 100 stack from a file, as the CLI and the Deblur dock do it (issue #21).

A uint16 stack of ``--frames`` camera frames (a procedural specimen, shifted
from frame to frame, with Poisson and read noise) is written frame by frame to
a TIFF and to a Zarr array (chunks of one frame's 1024 x 1024 quarter), and the
bundled base model, set up for the field, is saved as a model file. Each
measurement then runs in a fresh process of its own, so that its peak RSS is
its own:

- ``frame``: ``deblur()`` of one frame held in memory (the single-frame speed);
- ``cli-frame``: ``coordgate deblur`` of a one-frame TIFF;
- ``cli-tiff`` / ``cli-zarr``: ``coordgate deblur`` of the whole stack, TIFF to
  TIFF and Zarr to Zarr, with the CLI's defaults;
- ``dock-tiff``: :func:`napari_coordgate.files.batch.iter_deblur_files`, what the
  Deblur dock's *Deblur files...* runs, TIFF to TIFF.

Throughput is megapixels of input per second of the whole run (reading,
per-plane normalisation, deblurring and writing), peak RSS that of the process.

    python benchmarks/sensor_stack.py --frames 100 [--device cuda]
    # -> results/sensor_stack/sensor_stack.json (and one line a measurement on stdout)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lib.common import machine, write_results

MEASUREMENTS = ("frame", "cli-frame", "cli-tiff", "cli-zarr", "dock-tiff")


def frames(shape: tuple[int, int], n: int, seed: int = 0):
    """``n`` uint16 camera frames of one specimen, moved by a few pixels from frame to frame."""
    from napari_coordgate.data.specimens import make_specimen

    rng = np.random.default_rng(seed)
    specimen = make_specimen(shape, rng, "mixed")
    for i in range(n):
        moved = np.roll(specimen, (3 * i, 2 * i), axis=(0, 1))
        photons = rng.poisson(100 + 2000 * moved) + rng.normal(0, 2, shape)
        yield np.clip(photons, 0, 65535).astype(np.uint16)


def write_inputs(folder: Path, shape: tuple[int, int], n: int) -> dict:
    """The stack as TIFF and Zarr, one frame as TIFF, and the model file; their paths."""
    import tifffile
    import zarr

    from napari_coordgate import save_model
    from napari_coordgate.pretrained import base_model

    paths = {"tiff": folder / "tiff" / "stack.tif", "zarr": folder / "stack.zarr", "frame": folder / "frame.tif",
             "model": folder / "base.safetensors"}
    paths["tiff"].parent.mkdir(exist_ok=True)  # a folder of its own: the dock deblurs a folder of files
    save_model(base_model(shape), paths["model"])
    tifffile.imwrite(paths["tiff"], frames(shape, n), shape=(n, *shape), dtype=np.uint16)
    store = zarr.open(str(paths["zarr"]), mode="w", shape=(n, *shape), chunks=(1, 1024, 1024), dtype=np.uint16)
    for i, frame in enumerate(frames(shape, n)):
        store[i] = frame
        if i == 0:
            tifffile.imwrite(paths["frame"], frame)
    return {name: str(path) for name, path in paths.items()}


def child(kind: str, paths: dict, folder: Path, device: str) -> dict:
    """Run one measurement in this (fresh) process; its seconds and this process's peak RSS."""
    import torch

    from napari_coordgate import deblur, load_model
    from napari_coordgate.cli.main import main as coordgate

    begin = time.perf_counter()
    if kind == "frame":
        import tifffile

        model = load_model(paths["model"])
        frame = tifffile.imread(paths["frame"])
        deblur(frame, model, device=device)  # warm-up: the first call builds the gate caches
        begin = time.perf_counter()
        deblur(frame, model, device=device)
    elif kind.startswith("cli-"):
        source = paths[{"cli-frame": "frame", "cli-tiff": "tiff", "cli-zarr": "zarr"}[kind]]
        out = folder / f"{kind}{'.zarr' if kind == 'cli-zarr' else '.tif'}"
        code = coordgate(["deblur", source, paths["model"], "-o", str(out), "--overwrite", "-q", "--device", device])
        if code:
            raise SystemExit(f"coordgate deblur failed ({code})")
    elif kind == "dock-tiff":
        from napari_coordgate.files.batch import FileOptions, iter_deblur_files, plan_batch

        jobs, _ = plan_batch(str(Path(paths["tiff"]).parent), str(folder / "dock"), overwrite=True)
        for _ in iter_deblur_files(jobs, load_model(paths["model"]), FileOptions(device=device)):
            pass
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - begin
    return {"kind": kind, "device": device, "seconds": round(seconds, 2), "torch_threads": torch.get_num_threads(),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--field", type=int, default=2048)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (the device every measurement runs on)")
    p.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    p.add_argument("--folder", default=None, help="where the stack and outputs are written (default: a temporary one)")
    p.add_argument("--out", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shape = (args.field, args.field)

    if args.child:  # one measurement, in a process of its own
        kind, paths = json.loads(args.child)
        print(json.dumps(child(kind, paths, Path(paths["folder"]), args.device)))
        return {}

    folder = Path(args.folder or tempfile.mkdtemp(prefix="sensor_stack_"))
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    paths = write_inputs(folder, shape, args.frames)
    paths["folder"] = str(folder)
    out = {"machine": machine(), "field": list(shape), "frames": args.frames,
           "inputs_s": round(time.perf_counter() - began, 1), "runs": []}
    print(f"inputs written in {out['inputs_s']} s to {folder}", flush=True)
    for kind in args.only:
        run = subprocess.run([sys.executable, __file__, "--device", args.device, "--child", json.dumps([kind, paths])],
                             capture_output=True, text=True, cwd=Path(__file__).parent)
        if run.returncode:
            raise SystemExit(f"{kind} failed:\n{run.stderr[-3000:]}")
        row = json.loads(run.stdout.strip().splitlines()[-1])
        planes = 1 if kind in ("frame", "cli-frame") else args.frames
        row["mp_per_s"] = round(planes * shape[0] * shape[1] / 1e6 / row["seconds"], 3)
        out["runs"].append(row)
        print(json.dumps(row), flush=True)
        write_results("sensor_stack", "sensor_stack", out, args.out)
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
