"""Does a bead calibration recover the real lens? Judged with an independent PSF library.

For each test lens (:data:`lib.independent_lens.LENSES`, computed with pyotf, not
with this project's pupil code) and each bead-slide layout, a noisy slide is
rendered (every bead's PSF computed at its own position) and calibrated with
``calibrate_from_beads``. The calibrated field is compared with the truth
(:func:`lib.independent_lens.psf_metrics`: PSF correlation, width and centroid
errors over the field, at the corners and between beads) and by how well it
reproduces the true blur of real microscopy specimens
(:func:`lib.independent_lens.blur_fidelity`).

Unless ``--no-train``, four networks are trained with the same budget and
seed: a CG U-Net(3) and a plain U-Net(3) on data made with the true field and
on data made with the calibrated field (the true-field ones once per lens).
All are scored on held-out real specimens blurred by the TRUE lens with
Poisson-Gaussian noise, normalised as inference normalises, next to the
classical deconvolutions a user would try with the calibrated PSF (Wiener
and Richardson-Lucy with the centre PSF, patch-wise Richardson-Lucy with the
local PSFs; each parameter tuned on separate images).

Usage::

    python benchmarks/bead_calibration_independent.py --lens all --layout all --no-train
    python benchmarks/bead_calibration_independent.py --lens coma --layout dense --minutes 4
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time

import numpy as np
import torch

from lib.calibration import calibrate
from lib.classical import run_tuned
from lib.common import TEST_SEED, machine, results_dir, write_results
from lib.heldout import held_out
from lib.independent_lens import (LAYOUTS, LENSES, OPTICS, blur_fidelity, independent_lens, psf_metrics,
                                  render_slide, specimens)
from lib.scoring import mean_scores
from lib.training import train_models, training_args

from napari_coordgate import calibrate_from_beads
from napari_coordgate.device import resolve_device

_FIDELITY_SEED = 5  # specimens for the blur-fidelity score


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lens", default="all", choices=[*LENSES, "all"])
    p.add_argument("--layout", default="all", choices=[*LAYOUTS, "all"])
    p.add_argument("--method", default="auto", help="calibrate_from_beads(method=...): auto, pupil, empirical, nodes")
    p.add_argument("--optics", action=argparse.BooleanOptionalAction, default=True,
                   help="tell the calibration the lens's NA, wavelength, pixel size and immersion index")
    p.add_argument("--field", type=int, default=256, help="side of the square field")
    p.add_argument("--truth-grid", type=int, default=16, help="nodes per axis of the true field")
    p.add_argument("--seed", type=int, default=1, help="seed of the bead slide")
    p.add_argument("--no-train", action="store_true", help="only calibrate and compare the fields")
    p.add_argument("--minutes", type=float, default=4.0, help="training budget per model")
    p.add_argument("--models", nargs="+", default=["CGUNet", "UNet"], choices=["CGUNet", "UNet"])
    p.add_argument("--no-classical", action="store_true", help="skip the classical deconvolution baselines")
    p.add_argument("--n-test", type=int, default=12, help="held-out real specimens")
    p.add_argument("--n-tune", type=int, default=6,
                   help="images for tuning the classical methods' parameter (6: one from each specimen source)")
    p.add_argument("--photons", type=float, default=200.0, help="noise of the held-out and training images")
    p.add_argument("--read-noise", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--schedule", choices=("cosine", "plateau"), default="cosine",
                   help="training schedule (see train_quality.py; results before issue #10: plateau)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="training precision (results before issue #10: fp32)")
    p.add_argument("--json", help=f"results file (default {results_dir('bead_calibration_independent')}/"
                                  "bead_independent_<lens>_<layout>[_notrain].json)")
    return p.parse_args(argv)


# ------------------------------------------------------------------------ calibration
def bead_accounting(found, truth_positions: np.ndarray, field_shape) -> dict:
    """How many true beads are in the image, how many the calibration used, and how well it located them."""
    H, W = field_shape
    inside = ((truth_positions[:, 0] >= -0.5) & (truth_positions[:, 0] <= H - 0.5)
              & (truth_positions[:, 1] >= -0.5) & (truth_positions[:, 1] <= W - 0.5))
    out = {"n_true": int(len(truth_positions)), "n_true_in_image": int(inside.sum())}
    if found is None:
        return out
    meta = found.metadata
    used = np.asarray(meta.get("beads") or [], float).reshape(-1, 2)
    out.update(method=meta.get("method"), n_detected=meta.get("n_detected"), n_used=meta.get("n_used", len(used)), grid=list(found.grid_shape),
               psf_size=found.psf_size, rejected=meta.get("rejected"))
    if len(used):
        d = np.hypot(used[:, None, 0] - truth_positions[None, :, 0], used[:, None, 1] - truth_positions[None, :, 1])
        nearest = d.min(1)
        out.update(used_matched=int((nearest < 1.5).sum()), used_position_err_px_median=float(np.median(nearest)),
                   used_y_range=[float(used[:, 0].min()), float(used[:, 0].max())],
                   used_x_range=[float(used[:, 1].min()), float(used[:, 1].max())])
    return out


# ----------------------------------------------------------------------------- tables
def _f(value, fmt=".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, fmt)


def print_tables(runs: dict) -> None:
    print("\n| lens | layout | beads in image / used | grid | k | PSF corr all / corners / between | "
          "FWHM err px all / corners | centroid err px all / corners | blur PSNR all / centre / edge | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r in runs.items():
        lens, layout = key.split("/")
        b = r["beads"]
        if r["calibration"]["refused"]:
            print(f"| {lens} | {layout} | {b['n_true_in_image']} / - | - | - | refused: "
                  f"{r['calibration']['refused'][:70]} | | | | {r['calibration']['seconds']:.1f} |")
            continue
        m, f = r["psf"], r["blur_fidelity"]
        between = m.get("between", {})
        print(f"| {lens} | {layout} | {b['n_true_in_image']} / {b.get('n_used')} | {'x'.join(map(str, b['grid']))} | "
              f"{b['psf_size']} | {_f(m['all']['corr'])} / {_f(m['corners']['corr'])} / {_f(between.get('corr'))} | "
              f"{_f(m['all']['fwhm_err_px'], '.2f')} / {_f(m['corners']['fwhm_err_px'], '.2f')} | "
              f"{_f(m['all']['centroid_err_px'], '.2f')} / {_f(m['corners']['centroid_err_px'], '.2f')} | "
              f"{_f(f['psnr'], '.1f')} / {_f(f['psnr_centre'], '.1f')} / {_f(f['psnr_edge'], '.1f')} | "
              f"{r['calibration']['seconds']:.1f} |")
    trained = {k: r for k, r in runs.items() if r.get("models")}
    if trained:
        print("\n| lens | layout | method | trained on / PSF | steps | PSNR | centre | edge | SSIM |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key, r in trained.items():
            lens, layout = key.split("/")
            rows = [("blurred input", "", r["input"])]
            rows += [(arch, src, res) for src in ("true field", "calibrated") for arch, res in r["models"][src].items()]
            rows += [(name, "calibrated", res) for name, res in r.get("classical", {}).items()]
            for name, src, res in rows:
                print(f"| {lens} | {layout} | {name} | {src} | {res.get('steps', '')} | {res['psnr']:.2f} | "
                      f"{res['psnr_centre']:.2f} | {res['psnr_edge']:.2f} | {res['ssim']:.3f} |")
            for arch, gap in r.get("gap_db", {}).items():
                print(f"| {lens} | {layout} | {arch} gap (true - calibrated) | | | {gap['psnr']:+.2f} | "
                      f"{gap['psnr_centre']:+.2f} | {gap['psnr_edge']:+.2f} | |")


# ------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    lenses = list(LENSES) if args.lens == "all" else [args.lens]
    layouts = list(LAYOUTS) if args.layout == "all" else [args.layout]
    field = (args.field, args.field)
    out_name = f"bead_independent_{args.lens}_{args.layout}" + ("_notrain" if args.no_train else "")
    train_args = training_args(["--minutes", str(args.minutes), "--field", str(args.field),
                                "--photons", str(args.photons), "--read-noise", str(args.read_noise),
                                "--threads", str(args.threads), "--schedule", args.schedule,
                                "--precision", args.precision])
    device = resolve_device("cpu")
    payload = {"args": vars(args), "machine": machine(),
               "calibrate_from_beads_signature": str(inspect.signature(calibrate_from_beads)),
               "lenses": {}, "runs": {}}
    fidelity_specimens = specimens(field, 4, seed=_FIDELITY_SEED)
    for lens_name in lenses:
        t0 = time.perf_counter()
        truth = independent_lens(lens_name, field, (args.truth_grid, args.truth_grid))
        summary = truth.summary()
        summary.pop("metadata")
        payload["lenses"][lens_name] = {"build_seconds": time.perf_counter() - t0, **summary,
                                        "metadata": truth.metadata}
        print(f"lens {lens_name}: {truth.metadata['description']}; k {truth.psf_size}, FWHM centre "
              f"{summary['fwhm_centre_px']:.2f} px, corners {summary['fwhm_corners_mean_px']:.2f} px "
              f"(built in {time.perf_counter() - t0:.1f} s)", flush=True)
        true_models = test = tune = None
        for layout in layouts:
            key = f"{lens_name}/{layout}"
            t0 = time.perf_counter()
            image, positions, fluxes = render_slide(truth, layout, seed=args.seed)
            render_s = time.perf_counter() - t0
            found, cal_info = calibrate(image, args.method, OPTICS[lens_name] if args.optics else None)
            result = {"render_seconds": render_s, "calibration": cal_info,
                      "beads": bead_accounting(found, positions, field)}
            print(f"{key}: {len(positions)} beads ({result['beads']['n_true_in_image']} in image), rendered in "
                  f"{render_s:.1f} s; " + (f"refused: {cal_info['refused']}" if found is None else
                                           f"used {result['beads'].get('n_used')}, grid {found.grid_shape}, "
                                           f"k {found.psf_size}, {cal_info['seconds']:.1f} s"), flush=True)
            if found is not None:
                result["psf"] = psf_metrics(found, truth)
                result["blur_fidelity"] = blur_fidelity(found, truth, fidelity_specimens)
                m = result["psf"]
                print(f"  PSF corr {m['all']['corr']:.3f} (corners {m['corners']['corr']:.3f}, between "
                      f"{m.get('between', {}).get('corr', float('nan')):.3f}); FWHM err {m['all']['fwhm_err_px']:.2f} "
                      f"px; centroid err {m['all']['centroid_err_px']:.2f} px; blur PSNR "
                      f"{result['blur_fidelity']['psnr']:.1f} dB (edge {result['blur_fidelity']['psnr_edge']:.1f})",
                      flush=True)
            if not args.no_train and found is not None:
                if test is None:
                    test = held_out(truth, args.n_test, TEST_SEED, args.photons, args.read_noise)
                    tune = held_out(truth, args.n_tune, TEST_SEED + 7, args.photons, args.read_noise)
                result["input"] = mean_scores(test[0], test[1])
                if true_models is None:
                    print(f"  training on the true field ({args.minutes} min per model)", flush=True)
                    true_models = train_models(truth, field, args, train_args, device, test)
                print(f"  training on the calibrated field ({args.minutes} min per model)", flush=True)
                cal_models = train_models(found, field, args, train_args, device, test)
                result["models"] = {"true field": true_models, "calibrated": cal_models}
                result["gap_db"] = {arch: {region: true_models[arch][region] - cal_models[arch][region]
                                           for region in ("psnr", "psnr_centre", "psnr_edge")} for arch in cal_models}
                if not args.no_classical:
                    result["classical"] = run_tuned(found, test, tune)
            payload["runs"][key] = result
            path = write_results("bead_calibration_independent", out_name, payload, args.json)
    print_tables(payload["runs"])
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
