"""The napari default flow on the sample data, without the GUI: what a new user gets.

Exactly what the widgets do with their defaults: calibrate the "Bead
calibration target" sample (Calibration widget defaults: automatic model and
grid, optics unknown), fine-tune for the Fine-tune widget's default 3 minutes
(batch 8, patches of 64, learning rate 3e-3 from the base and 1e-3 from scratch, noise "auto", one torch thread as
the widget leaves a core for the GUI), then deblur the "Blurred specimen"
sample and score it against the "Ground truth" sample. Each start is run:
the shipped base (the default) and scratch.

Usage::

    python benchmarks/napari_default_flow.py --minutes 3
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from lib.common import machine, write_results

from napari_coordgate import CGUNet, deblur
from napari_coordgate._qt.sample_data import bead_calibration_target, blurred_specimen, ground_truth
from napari_coordgate.data import make_training_set
from napari_coordgate.pretrained import FINE_TUNE_LR, SCRATCH_LR, base_model
from napari_coordgate.psf.beads.calibrate import calibrate_from_beads
from napari_coordgate.training import train
from napari_coordgate.training.metrics import region_masks


def psnr(image: np.ndarray, truth: np.ndarray, mask=None) -> float:
    span = float(truth.max() - truth.min())
    err = (np.asarray(image, float) - truth) ** 2
    return float(10 * np.log10(span**2 / (err[mask].mean() if mask is not None else err.mean())))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--starts", nargs="+", default=["base", "scratch"], choices=["base", "scratch"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    beads = bead_calibration_target()[0][0]
    specimen = blurred_specimen()[0][0]
    truth = ground_truth()[0][0]
    t0 = time.perf_counter()
    field = calibrate_from_beads(beads, method="auto", bead_size_px=1.0, min_snr=10.0, grid=None)
    calibration_s = time.perf_counter() - t0
    edge = region_masks(truth.shape)["edge"]
    payload = {"args": vars(args), "machine": machine(), "calibration_seconds": calibration_s,
               "input": {"psnr": psnr(specimen, truth), "psnr_edge": psnr(specimen, truth, edge)}, "runs": {}}
    print(f"calibrated in {calibration_s:.0f} s; blurred specimen PSNR {payload['input']['psnr']:.2f} dB", flush=True)
    for start in args.starts:
        torch.manual_seed(0)
        model = base_model(field.field_shape) if start == "base" else CGUNet(3, field_shape=field.field_shape, base_channels=16)
        data = make_training_set(field, patch_size=64, percentiles=model.percentiles, noise="auto")
        last = None
        lr = FINE_TUNE_LR if start == "base" else SCRATCH_LR  # the widget's defaults for each start
        for record in train(model, data, lr=lr, batch_size=8, device="cpu", time_budget_s=60 * args.minutes,
                            preview=False):
            last = record
        out = deblur(specimen, model, device="cpu")
        run = {"lr": lr, "steps": last.step, "val_psnr": last.val_psnr, "val_input_psnr": last.input_psnr,
               "psnr": psnr(out, truth), "psnr_edge": psnr(out, truth, edge)}
        run["gain_db"] = run["psnr"] - payload["input"]["psnr"]
        run["edge_gain_db"] = run["psnr_edge"] - payload["input"]["psnr_edge"]
        payload["runs"][start] = run
        print(f"{start}: {run['steps']} steps; specimen {run['psnr']:.2f} dB ({run['gain_db']:+.2f} dB, edge "
              f"{run['edge_gain_db']:+.2f} dB); validation {run['val_input_psnr']:.2f} -> {run['val_psnr']:.2f} dB",
              flush=True)
        write_results("napari_default_flow", "napari_default_flow", payload, args.json)
    return payload


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
