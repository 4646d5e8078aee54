"""Which camera-noise level to train for (issue #10, part 4): the bead slide's, a range, or the image's.

The bead slide's noise estimate (``noise="auto"`` with the slide as the
calibration image) can be far from the noise of the specimens a user deblurs:
bright beads on a dark background against dimmer or brighter cells. For each
test lens (pyotf, :mod:`lib.independent_lens`) this script calibrates the PSF field
from a bead slide as a user would, then fine-tunes the shipped base for the
same wall-clock budget with four noise choices:

- ``beads``: ``noise="auto"`` estimated from the bead slide, ``intensity_range=2``
  (today's default: per-sample brightness, hence photons, within x/÷ 2);
- ``beads, range 10``: the same estimate with ``intensity_range=10``, i.e. training
  over photon levels from a tenth to ten times the estimate;
- ``image``: ``noise="auto"`` estimated from one raw image of the kind to be
  deblurred (a held-out real specimen through the true lens, at the test's photons);
- ``true``: the photons and read noise the test images were made with (an oracle);
- ``default``: what the widget and ``coordgate train`` use when no image is given
  (``DEFAULT_NOISE``, 200 photons, ``intensity_range=2``).

Every model is scored on held-out **real** specimens (crops of microscopy images
shipped with scientific Python packages) blurred by the true lens, at each
``--test-photons`` level.

    python benchmarks/noise_choice.py --lens all --minutes 2 --test-photons 1500 300
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from lib.calibration import bead_calibrated_field
from lib.common import TEST_SEED, machine, write_results
from lib.heldout import held_out
from lib.independent_lens import LENSES, independent_lens, specimens
from lib.scoring import evaluate, mean_scores

from napari_coordgate.data import add_poisson_gaussian, make_training_set
from napari_coordgate.data.noise import DEFAULT_NOISE, estimate_noise
from napari_coordgate.pretrained import base_model
from napari_coordgate.training import train


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lens", default="all", choices=[*LENSES, "all"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--minutes", type=float, default=2.0, help="fine-tuning budget per model")
    p.add_argument("--test-photons", type=float, nargs="+", default=[1500.0, 300.0],
                   help="photons of the test specimens; the first also sets the 'image' and 'true' choices")
    p.add_argument("--read-noise", type=float, default=2.0)
    p.add_argument("--n-test", type=int, default=12)
    p.add_argument("--range", type=float, default=10.0, help="intensity_range of the 'range' choice")
    p.add_argument("--choices", nargs="+", default=None, help="run only these choices (labels as printed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def _raw_specimen(truth, photons: float, read_noise: float) -> np.ndarray:
    """One raw image of the kind the user deblurs: a real specimen (not a test one) through the true lens."""
    sharp = specimens(truth.field_shape, 1, seed=TEST_SEED + 77)[0]
    return add_poisson_gaussian(np.asarray(truth.blur(sharp)), photons, read_noise, np.random.default_rng(5))


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    field_shape = (args.size, args.size)
    lenses = list(LENSES) if args.lens == "all" else [args.lens]
    name = f"noise_choice_{args.lens}"
    payload = {"args": vars(args), "machine": machine(), "lenses": {}}
    for lens_name in lenses:
        truth = independent_lens(lens_name, field_shape, (16, 16))
        field, slide, _ = bead_calibrated_field(truth, lens_name)
        tests = {p: held_out(truth, args.n_test, TEST_SEED, p, args.read_noise) for p in args.test_photons}
        p0 = args.test_photons[0]
        from_beads = estimate_noise(slide)
        from_image = estimate_noise(_raw_specimen(truth, p0, args.read_noise))
        choices = {
            "beads": ({"photons": from_beads["photons"], "read_noise": from_beads["read_noise"]}, 2.0),
            f"beads, range {args.range:g}": ({"photons": from_beads["photons"], "read_noise": from_beads["read_noise"]},
                                             args.range),
            "image": ({"photons": from_image["photons"], "read_noise": from_image["read_noise"]}, 2.0),
            "true": ({"photons": p0, "read_noise": args.read_noise}, 2.0),
            "default": (dict(DEFAULT_NOISE), 2.0),
        }
        if args.choices:
            choices = {k: v for k, v in choices.items() if k in args.choices or k.split(",")[0] in args.choices}
        out = payload["lenses"][lens_name] = {
            "estimates": {"beads": {k: float(v) for k, v in from_beads.items() if np.isscalar(v)},
                          "image": {k: float(v) for k, v in from_image.items() if np.isscalar(v)}},
            "input": {str(p): mean_scores(*t) for p, t in tests.items()}, "runs": {}}
        print(f"{lens_name}: noise estimate from the beads {from_beads['photons']:.0f} photons, from the image "
              f"{from_image['photons']:.0f} (true {p0:g}); input PSNR "
              + ", ".join(f"{out['input'][str(p)]['psnr']:.2f} dB at {p:g}" for p in tests), flush=True)
        for label, (noise, spread) in choices.items():
            data = make_training_set(field, patch_size=64, noise=noise, intensity_range=spread, seed=args.seed)
            torch.manual_seed(args.seed)
            model = base_model(field_shape)
            gen = train(model, data, time_budget_s=60.0 * args.minutes, lr=1e-3, batch_size=8, val_every=25,
                        preview=False, seed=args.seed, device="cpu")
            for record in gen:
                last = record
            run = out["runs"][label] = {"noise": noise, "intensity_range": spread, "steps": last.step}
            for p, test in tests.items():
                s = evaluate(model, *test, per_image=False)
                run[str(p)] = {**s, "gain_db": s["psnr"] - out["input"][str(p)]["psnr"],
                               "edge_gain_db": s["psnr_edge"] - out["input"][str(p)]["psnr_edge"]}
            print(f"  {label:16s} trained at {noise['photons']:7.0f} photons x/÷ {spread:g}: "
                  + ", ".join(f"{run[str(p)]['gain_db']:+.2f} dB at {p:g}" for p in tests), flush=True)
            write_results("noise_choice", name, payload, args.json)
    path = write_results("noise_choice", name, payload, args.json)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
