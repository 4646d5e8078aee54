"""Fine-tuning for a full 2048 x 2048 sensor on the CPU: making the data, validating, keeping the budget (issue #21).

The package's own simulated lens on a 2048 x 2048 field (a speed benchmark, not
a quality one), the bundled base model set up for that field, the Fine-tune
dock's data (``make_training_set`` with its defaults) and training with a time
budget. Measured: how long the training set takes to make, how long one
validation takes (whole-field images against the crops a large field is now
validated on), and whether a budgeted run returns on time and how many steps
it made.

    python benchmarks/full_sensor_training.py --budget 120
    # -> results/full_sensor_training/full_sensor_training.json

With ``--lens pyotf:coma`` (or another ``library:lens``) the lens comes from an
independent PSF library instead, ``--crops-only`` skips the whole-field
validation, and the run ends by deblurring one whole frame of the field with
the fine-tuned model (seconds, MP/s). The dB gained over the blurred
validation crops after the budget is the figure to compare between field
sizes (``--field 384`` against ``--field 2048``, the same budget):

    python benchmarks/full_sensor_training.py --lens pyotf:coma --crops-only --field 2048 \
        --out results/full_sensor_training/coma_2048.json     # and --field 384 ... coma_384.json
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from lib.common import machine, write_results


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--field", type=int, default=2048)
    p.add_argument("--budget", type=float, default=120.0, help="training budget in seconds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lens", default="own", help="own (the package's simulated lens) or library:lens, e.g. pyotf:coma")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the model validates, trains and deblurs")
    p.add_argument("--crops-only", action="store_true", help="skip the whole-field validation of before")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from napari_coordgate import deblur
    from napari_coordgate.data import training_set
    from napari_coordgate.pretrained import FINE_TUNE_LR, base_model
    from napari_coordgate.psf.optics.simulate import simulate_lens
    from napari_coordgate.training import train
    from napari_coordgate.training.train import validation_scores
    from napari_coordgate.precision import compute_mode
    from napari_coordgate.training.metrics import region_masks

    field = (args.field, args.field)
    start = time.perf_counter()
    if args.lens == "own":
        lens = simulate_lens(field)
    else:
        from lib.calibration import true_field

        lens = true_field(*args.lens.split(":"), field)
    lens_s = time.perf_counter() - start
    model = base_model(field)
    out = {"machine": machine(), "field": list(field), "lens": args.lens, "lens_s": round(lens_s, 1), "psf_size": lens.psf_size,
           "grid": list(lens.grid_shape)}

    def timed_set() -> tuple[object, float]:
        begin = time.perf_counter()
        data = training_set.make_training_set(lens, patch_size=64, percentiles=model.percentiles, noise="auto")
        return data, time.perf_counter() - begin

    def one_validation(data) -> float:
        mode = compute_mode(torch.device(args.device))
        mode.prepare_model(model)
        begin = time.perf_counter()
        validation_scores(model, data, mode, region_masks(data.field_shape), False)
        return time.perf_counter() - begin

    if not args.crops_only:
        whole_limit = training_set.FULL_FIELD_VALIDATION
        training_set.FULL_FIELD_VALIDATION = 10**6  # as before: whole-field validation images
        data, seconds = timed_set()
        out["whole_field_validation"] = {"make_training_set_s": round(seconds, 1),
                                         "validation_shape": list(data.validation.blurred.shape),
                                         "one_validation_s": round(one_validation(data), 1)}
        print(f"whole-field validation: training set {seconds:.1f} s, one validation "
              f"{out['whole_field_validation']['one_validation_s']} s", flush=True)
        del data
        training_set.FULL_FIELD_VALIDATION = whole_limit
    data, seconds = timed_set()
    out["crop_validation"] = {"make_training_set_s": round(seconds, 1),
                              "validation_shape": list(data.validation.blurred.shape),
                              "offsets": [list(o) for o in data.validation.offsets],
                              "one_validation_s": round(one_validation(data), 1)}
    print(f"crop validation: training set {seconds:.1f} s, one validation "
          f"{out['crop_validation']['one_validation_s']} s", flush=True)

    model = base_model(field)
    mode = compute_mode(torch.device(args.device))
    mode.prepare_model(model)
    base_psnr = validation_scores(model, data, mode, region_masks(data.field_shape), False)["val_psnr"]
    model = base_model(field)
    begin, last, validations, curve = time.perf_counter(), None, 0, []
    for record in train(model, data, lr=FINE_TUNE_LR, batch_size=8, device=args.device, time_budget_s=args.budget,
                        preview=False):
        last = record
        if record.val_psnr is not None:
            validations += 1
            curve.append([round(time.perf_counter() - begin, 1), record.step, round(record.val_psnr, 3)])
    wall = time.perf_counter() - begin
    out["budgeted_run"] = {"budget_s": args.budget, "returned_after_s": round(wall, 1), "steps": last.step,
                           "validations": validations, "val_psnr": last.val_psnr, "input_psnr": last.input_psnr}
    out["budgeted_run"]["gain_db"] = round(last.val_psnr - last.input_psnr, 2)
    out["budgeted_run"]["base_val_psnr"] = round(base_psnr, 3)  # the base model before any step
    out["budgeted_run"]["fine_tune_gain_db"] = round(last.val_psnr - base_psnr, 2)
    out["budgeted_run"]["validation_curve"] = curve
    frame = data.validation.blurred[0] if data.validation.blurred.shape[-2:] == field else \
        np.random.default_rng(0).random(field, dtype=np.float32)
    begin = time.perf_counter()
    deblur(frame, model, device=args.device)
    seconds = time.perf_counter() - begin
    out["deblur_frame"] = {"seconds": round(seconds, 2), "mp_per_s": round(field[0] * field[1] / 1e6 / seconds, 2)}
    print(f"deblurring one {field[0]} x {field[1]} frame: {seconds:.1f} s", flush=True)
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(f"budget {args.budget:.0f} s: returned after {wall:.1f} s, {last.step} steps, {validations} validations, "
          f"val PSNR {last.val_psnr:.2f} dB (input {last.input_psnr:.2f}); peak RSS {out['peak_rss_gib']} GiB",
          flush=True)
    write_results("full_sensor_training", "full_sensor_training", out, args.out)
    return out


if __name__ == "__main__":
    main()
