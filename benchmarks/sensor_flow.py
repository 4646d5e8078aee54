"""The whole default flow on a 2048 x 2048 sensor, with a lens from an independent PSF library (issue #21).

What a user of the docks does, with their defaults, stage by stage: a bead slide
of 1000 beads through the true lens (pyotf or psfmodels, each bead's PSF
computed for its own field position); ``calibrate_from_beads`` on it (the
optics unknown, as the Calibration dock starts, or given); the Fine-tune dock's
training set and a fine-tune of the bundled base for a time budget; then
``deblur`` of whole frames blurred by the *true* lens, with camera noise, each
frame a mosaic of real specimens of 512 x 512 (``lib.heldout.mosaic_specimens``:
detail at the sources' own scale). Recorded per
stage: seconds and the process's peak RSS so far; and the PSNR of the blurred
frames, of the bundled base's output and of the fine-tuned model's, against
the sharp specimens (each normalised by its noisy frame's percentiles); with
``--classical``, also of Wiener and Richardson-Lucy deconvolution with the
calibration's centre PSF (each method's parameter chosen on another frame).

    python benchmarks/sensor_flow.py --lens pyotf:coma [--classical]    # the optics unknown
    python benchmarks/sensor_flow.py --lens psfmodels:strong --optics given
    # -> results/sensor_flow/sensor_flow.jsonl (one line a run), the stages on stdout
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from lib.calibration import lens_and_slide
from lib.common import machine, record_result, results_dir

PHOTONS, READ_NOISE = 200.0, 2.0  # the held-out frames' camera, as in downstream_without_optics.py
#: The classical methods' parameters tried on the tuning frame. Wider than ``lib.classical.CALIBRATED_GRIDS``:
#: on these frames Wiener's best balance was that grid's largest (1.0) and Richardson-Lucy's best count its smallest.
WIENER_BALANCES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
RL_ITERATIONS = (1, 2, 3, 5, 10)


def peak_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lens", default="pyotf:coma", help="library:lens (pyotf:coma, psfmodels:strong, ...)")
    p.add_argument("--field", type=int, default=2048)
    p.add_argument("--optics", choices=["given", "unknown"], default="unknown")
    p.add_argument("--budget", type=float, default=120.0, help="fine-tuning budget in seconds")
    p.add_argument("--frames", type=int, default=2, help="held-out frames deblurred and scored")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tile", type=int, default=512,
                   help="each held-out frame is a mosaic of real specimens of this size (0: one specimen enlarged "
                        "to the whole field)")
    p.add_argument("--classical", action="store_true",
                   help="also Wiener and Richardson-Lucy with the calibrated centre PSF, each tuned on another frame")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(results_dir("sensor_flow") / "sensor_flow.jsonl"))
    args = p.parse_args(argv)

    from napari_coordgate import calibrate_from_beads, deblur
    from napari_coordgate.data import make_training_set
    from napari_coordgate.normalization import IntensityScale
    from napari_coordgate.pretrained import FINE_TUNE_LR, base_model
    from napari_coordgate.training import train
    from napari_coordgate.training.metrics import psnr

    from lib.heldout import noisy_specimens

    library, lens = args.lens.split(":")
    shape = (args.field, args.field)
    stages: dict[str, dict] = {}
    clock = time.perf_counter()

    def stage(name: str, **figures) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - clock, 1), "peak_rss_gib": peak_gib(), **figures}
        print(f"{name}: {json.dumps(stages[name])}", flush=True)
        clock = time.perf_counter()

    if library not in ("pyotf", "psfmodels"):
        raise SystemExit(f"unknown library {library!r}: pyotf or psfmodels")
    truth, slide, _, optics = lens_and_slide(library, lens, shape, "sensor", args.seed)
    stage("lens and slide (benchmark set-up)", true_kernel_px=truth.psf_size)

    field = calibrate_from_beads(slide, **(optics if args.optics == "given" else {}))
    stage("calibration", method=field.metadata["method"], fit_window_px=field.metadata["fit_psf_size"],
          beads_used=field.metadata["n_used"])

    model = base_model(shape)
    data = make_training_set(field, patch_size=64, percentiles=model.percentiles, noise="auto")
    stage("training set")

    last = None
    for last in train(model, data, lr=FINE_TUNE_LR, batch_size=8, device=args.device, time_budget_s=args.budget,
                      preview=False):
        pass
    stage("fine-tune", steps=last.step, val_psnr=round(last.val_psnr, 2), val_input_psnr=round(last.input_psnr, 2))

    frames = noisy_specimens(truth, args.frames, seed=4321, photons=PHOTONS, read_noise=READ_NOISE, tile=args.tile)
    stage("held-out frames (benchmark set-up)")

    base = base_model(shape)
    scores = {"blurred": [], "base": [], "fine-tuned": []}
    seconds = []
    for raw, x, y in zip(frames["raw"], frames["x"], frames["y"]):
        scale = IntensityScale.from_percentiles(raw)
        scores["blurred"].append(psnr(x, y))
        scores["base"].append(psnr(scale.normalize(deblur(raw, base, device=args.device)), y))
        begin = time.perf_counter()
        restored = deblur(raw, model, device=args.device)
        seconds.append(time.perf_counter() - begin)
        scores["fine-tuned"].append(psnr(scale.normalize(restored), y))
    mean = {name: round(float(np.mean(values)), 2) for name, values in scores.items()}
    stage("deblur (both models, every frame)", seconds_per_frame=round(float(np.median(seconds)), 2), psnr=mean)

    classical = {}
    if args.classical:
        from lib.classical import run

        tune = noisy_specimens(truth, 1, seed=8765, photons=PHOTONS, read_noise=READ_NOISE, tile=args.tile)
        for method, grid in (("Wiener (centre PSF)", WIENER_BALANCES), ("Richardson-Lucy (centre PSF)", RL_ITERATIONS)):
            tuned = {param: psnr(run(method, tune["x"], field, param)[0], tune["y"]) for param in grid}
            best = max(tuned, key=tuned.get)
            pred, seconds_per_frame = run(method, frames["x"], field, best)
            classical[method] = {"param": best, "psnr": round(float(np.mean([psnr(a, b) for a, b in
                                                                          zip(pred, frames["y"])])), 2),
                                 "seconds_per_frame": round(seconds_per_frame, 1)}
        stage("classical (the calibrated field's centre PSF, tuned on another frame)", **classical)

    flow_s = sum(stages[name]["seconds"] for name in ("calibration", "training set", "fine-tune")) + min(seconds)
    result = {"lens": args.lens, "field": args.field, "optics": args.optics, "budget_s": args.budget,
              "frames": args.frames, "tile": args.tile,
              "stages": stages, "psnr": mean, "gain_db": round(mean["fine-tuned"] - mean["blurred"], 2),
              "gain_over_base_db": round(mean["fine-tuned"] - mean["base"], 2), "classical": classical,
              "user_flow_s": round(flow_s, 1), "peak_rss_gib": peak_gib(), **machine()}
    record_result(args.out, result)
    return result


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
