"""Shared pieces of the 2D benchmarks: the simulated lens, a held-out test set, scores."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
TEST_SEED = 12345  # the test set never shares a seed with training or validation data


def paper_lens(field: int, grid: int = 8, defocus_edge: float = 2.0):
    """The bundled simulated lens (as in ``coordgate demo``): sharp on axis, defocus growing to the corners."""
    from napari_coordgate.psf.simulate import simulate_lens

    return simulate_lens((field, field), grid=(grid, grid), defocus_edge=defocus_edge)


def test_set(lens, n: int, noise=None):
    """``n`` held-out full-field (blurred, sharp) pairs, normalised by the blurred image's
    percentiles (as inference does). Built like validation data but from another seed."""
    from napari_coordgate.data import make_training_set

    ts = make_training_set(lens, patch_size=min(lens.field_shape), n_specimens=1, n_val=n, noise=noise, seed=TEST_SEED)
    return ts.validation.blurred, ts.validation.sharp


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """PSNR / SSIM (data range 1, mean over images), PSNR at the field centre and edge."""
    from napari_coordgate.training.metrics import psnr, region_masks, regional_psnr, ssim

    regions = regional_psnr(pred, truth, region_masks(truth.shape[-2:]))
    return {"psnr": psnr(pred, truth), "ssim": ssim(pred, truth),
            "psnr_centre": regions["centre"], "psnr_edge": regions["edge"]}


def psnr_map(pred: np.ndarray, truth: np.ndarray, cells: int = 8) -> list[list[float]]:
    """PSNR of each cell of a ``cells x cells`` grid over the field (MSE averaged over images)."""
    err = np.mean((np.asarray(pred, np.float64) - truth) ** 2, axis=0)
    H, W = err.shape
    ys, xs = np.linspace(0, H, cells + 1).astype(int), np.linspace(0, W, cells + 1).astype(int)
    return [[float(10 * np.log10(1.0 / max(err[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean(), 1e-12)))
             for j in range(cells)] for i in range(cells)]


def machine() -> dict:
    """Where a number was measured (CPU model, cores, load, torch threads, GPU)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}
    try:
        info["load_avg_1m_at_start"] = os.getloadavg()[0]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return info


def write_results(name: str, payload: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path
