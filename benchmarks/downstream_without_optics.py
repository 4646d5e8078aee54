"""What a calibration made with and without the optics gives downstream, on lenses from independent libraries.

For each case (``library:lens:layout``, as in :data:`lib.calibration.DEFAULT_CASES`)
the bead slide is calibrated with the lens's optics and without them (the
napari dock's default), and networks are trained with the same wall-clock
budget and seed, one torch thread (the Fine-tune dock leaves a core for the
GUI):

- **the default flow**: the bundled base model fine-tuned on the calibration,
  with the Fine-tune dock's defaults (learning rate, batch 8, patches of 64,
  noise "auto", a time budget), then ``deblur`` of each test image;
- **the same, on the true field**: the yardstick for the default flow;
- **a CG U-Net(3) from scratch** on the calibration and on the true field
  (the issue's "same model, same budget" comparison).

Every prediction is scored on held-out real specimens (images that
scientific Python packages ship, :func:`lib.independent_lens.specimens`) blurred
by the TRUE lens with Poisson-Gaussian noise (200 photons, read noise 2),
each normalised by its noisy image's percentiles; PSNR over the whole
field, the centre and the edge (:func:`lib.scoring.scores`). Next to them:
the blurred input, and the classical deconvolutions a user would try with
the calibrated PSFs (Wiener, Richardson-Lucy, patch-wise Richardson-Lucy;
each parameter tuned on separate images).

Each case's results are written as soon as they are measured.

Usage::

    python benchmarks/downstream_without_optics.py --cases psfmodels:strong:grid --minutes 4
    python benchmarks/downstream_without_optics.py --cases pyotf:coma:dense --optics unknown
    python benchmarks/downstream_without_optics.py --cases psfmodels:vignetted:grid --optics unknown \
        --true-field-from benchmarks/results/downstream_without_optics/downstream_without_optics.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from lib.calibration import truth_and_slide
from lib.classical import run_tuned
from lib.common import TEST_SEED, append_jsonl, machine, results_dir
from lib.heldout import noisy_specimens
from lib.independent_lens import psf_metrics
from lib.scoring import mean_scores
from lib.training import train_models, training_args

from napari_coordgate import calibrate_from_beads, deblur
from napari_coordgate.data import make_training_set
from napari_coordgate.normalization import IntensityScale
from napari_coordgate.pretrained import FINE_TUNE_LR, base_model
from napari_coordgate.training import train

PHOTONS, READ_NOISE = 200.0, 2.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["psfmodels:strong:grid"], help="library:lens:layout")
    p.add_argument("--optics", choices=["both", "given", "unknown", "none"], default="both",
                   help="the calibrations to train on ('none': only the true field, e.g. to re-run it alone)")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget of every network")
    p.add_argument("--n-test", type=int, default=8, help="held-out real specimens")
    p.add_argument("--n-tune", type=int, default=4, help="specimens that tune the classical methods")
    p.add_argument("--no-classical", action="store_true")
    p.add_argument("--seed", type=int, default=1, help="seed of the bead slide")
    p.add_argument("--true-field-from", metavar="JSONL",
                   help="reuse the true-field yardstick of the latest row of the same case, budget and CPU in this "
                        "file (it does not depend on the calibration code) instead of training it again")
    p.add_argument("--out", default=str(results_dir("downstream_without_optics") / "downstream_without_optics.jsonl"))
    return p.parse_args(argv)


def test_images(truth, n: int, seed: int) -> dict:
    """Real specimens blurred by the true lens, noisy; raw and normalised by each noisy image's percentiles."""
    return noisy_specimens(truth, n, seed, PHOTONS, READ_NOISE)


def default_flow(field, test: dict, minutes: float) -> dict:
    """The Fine-tune dock's defaults from the bundled base, then ``deblur`` of each raw test image."""
    torch.manual_seed(0)
    model = base_model(field.field_shape)
    data = make_training_set(field, patch_size=64, percentiles=model.percentiles, noise="auto")
    last, start = None, time.perf_counter()
    for record in train(model, data, lr=FINE_TUNE_LR, batch_size=8, device="cpu", time_budget_s=60 * minutes,
                        preview=False):
        last = record
    seconds = time.perf_counter() - start
    predictions = []
    for raw in test["raw"]:
        scale = IntensityScale.from_percentiles(raw)
        predictions.append(scale.normalize(deblur(raw, model, device="cpu")))
    r = mean_scores(np.stack(predictions), test["y"])
    return {"steps": last.step, "seconds": round(seconds, 1), "val_psnr": last.val_psnr, **r}


def earlier_true_field(path: str, case: str, minutes: float, cpu: str | None) -> dict:
    """The true-field results of the latest row of ``case`` in ``path`` with the same budget and CPU."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if r.get("case") == case and r.get("minutes") == minutes and r.get("cpu") == cpu
            and "true_field" in r]
    if not rows:
        raise SystemExit(f"{path} has no true-field row for {case} with {minutes} min on {cpu}")
    return rows[-1]["true_field"]


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    settings = {"both": (True, False), "given": (True,), "unknown": (False,), "none": ()}[args.optics]
    info = machine()
    for case in args.cases:
        library, lens, layout = case.split(":")
        truth, image, optics = truth_and_slide(library, lens, layout, args.seed)
        field_shape = truth.field_shape
        train_args = training_args(["--minutes", str(args.minutes), "--field", str(field_shape[0]), "--photons",
                                    str(PHOTONS), "--read-noise", str(READ_NOISE), "--threads", "1"])
        train_args.models = ["CGUNet"]
        train_args.photons, train_args.read_noise = PHOTONS, READ_NOISE
        test = test_images(truth, args.n_test, TEST_SEED)
        tune = test_images(truth, args.n_tune, TEST_SEED + 7)
        row = {"case": case, "cpu": info.get("cpu"), "minutes": args.minutes, "n_test": args.n_test,
               "input": mean_scores(test["x"], test["y"])}
        print(f"{case}: blurred input {row['input']['psnr']:.2f} dB", flush=True)
        if args.true_field_from:
            row["true_field"] = earlier_true_field(args.true_field_from, case, args.minutes, info.get("cpu"))
            row["true_field_reused_from"] = args.true_field_from
        else:
            row["true_field"] = {"default_flow": default_flow(truth, test, args.minutes),
                                 "cgunet_scratch": train_models(truth, field_shape, train_args, train_args, "cpu",
                                                                (test["x"], test["y"]))["CGUNet"]}
            row["true_field"]["cgunet_scratch"].pop("per_image", None)
        print(f"  true field: default flow {row['true_field']['default_flow']['psnr']:.2f} dB, CG U-Net scratch "
              f"{row['true_field']['cgunet_scratch']['psnr']:.2f} dB", flush=True)
        for given in settings:
            key = "optics given" if given else "optics unknown"
            start = time.perf_counter()
            try:
                field = calibrate_from_beads(image, **(optics if given else {}))
            except ValueError as error:
                row[key] = {"refused": str(error)}
                continue
            metrics = psf_metrics(field, truth)
            result = {"calibration_s": round(time.perf_counter() - start, 1), "method": field.metadata["method"],
                      "psf_corr_median": round(metrics["all"]["corr"], 4),
                      "psf_corr_corners": round(metrics["corners"]["corr"], 4),
                      "displacement_px_median": metrics["all"]["displacement_px"],
                      "displacement_px_max": metrics["all"]["displacement_px_worst"],
                      "default_flow": default_flow(field, test, args.minutes)}
            scratch = train_models(field, field_shape, train_args, train_args, "cpu", (test["x"], test["y"]))["CGUNet"]
            scratch.pop("per_image", None)
            result["cgunet_scratch"] = scratch
            result["gap_to_true_field_db"] = {
                "default_flow": round(row["true_field"]["default_flow"]["psnr"] - result["default_flow"]["psnr"], 2),
                "cgunet_scratch": round(row["true_field"]["cgunet_scratch"]["psnr"] - scratch["psnr"], 2)}
            result["default_flow_gain_db"] = round(result["default_flow"]["psnr"] - row["input"]["psnr"], 2)
            if not args.no_classical:
                result["classical"] = {name: {k: v for k, v in r.items() if k in ("param", "psnr", "psnr_edge")}
                                       for name, r in run_tuned(field, (test["x"], test["y"]),
                                                                (tune["x"], tune["y"])).items()}
            row[key] = result
            print(f"  {key}: {result['method']}, default flow {result['default_flow']['psnr']:.2f} dB "
                  f"({result['default_flow_gain_db']:+.2f} dB on the input; {result['gap_to_true_field_db']['default_flow']:+.2f} dB "
                  f"below the true field), CG U-Net scratch {scratch['psnr']:.2f} dB "
                  f"({result['gap_to_true_field_db']['cgunet_scratch']:+.2f} dB below)", flush=True)
        append_jsonl(args.out, row)


if __name__ == "__main__":
    sys.exit(main())
