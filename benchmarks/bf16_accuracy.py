"""Does deblurring in bf16 lose quality against float32? (issue #10: within 0.05 dB)

A CG U-Net(3) width 16 is trained for a short budget on the true field of an
independent test lens (pyotf, :mod:`lib.independent_lens`), then the same model
deblurs held-out real specimens blurred by that lens through ``deblur()`` in
``precision="fp32"`` and ``"bf16"``. Prints both PSNRs against the sharp
truth, overall and at the edge, and their paired difference.

    python benchmarks/bf16_accuracy.py --lens coma --minutes 1.5
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from lib.heldout import held_out
from lib.independent_lens import independent_lens
from lib.scoring import scores
from lib.stats import paired_difference

from napari_coordgate import CGUNet, deblur
from napari_coordgate.data import make_training_set
from napari_coordgate.training import run_training, train


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lens", default="coma")
    p.add_argument("--minutes", type=float, default=1.5)
    p.add_argument("--n-test", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    truth = independent_lens(args.lens)
    field = truth.field_shape
    torch.manual_seed(0)
    model = CGUNet(3, field_shape=field, base_channels=16, gate_hidden=16, gate_layers=1)
    data = make_training_set(truth, patch_size=64, n_val=4, noise={"photons": 200.0, "read_noise": 2.0}, seed=0)
    run_training(train(model, data, time_budget_s=60 * args.minutes, lr=3e-3, val_every=50, device="cpu",
                       preview=False))
    blurred, sharp = held_out(truth, args.n_test, 4242, 200.0, 2.0)
    out = {}
    for precision in ("fp32", "bf16"):
        # intensity_range=(0, 1): the held-out images are already normalised, as the network sees them
        pred = np.stack([deblur(b, model, device="cpu", precision=precision, intensity_range=(0.0, 1.0))
                         for b in blurred])
        out[precision] = scores(pred, sharp)
    diff = {region: paired_difference(out["bf16"]["per_image"][key], out["fp32"]["per_image"][key])
            for region, key in (("whole", "whole"), ("edge", "edge"))}
    result = {"lens": args.lens, "minutes": args.minutes,
              "psnr": {k: {r: out[k][r] for r in ("psnr", "psnr_edge")} for k in out},
              "bf16_minus_fp32_db": {r: {"mean": m, "se": se} for r, (m, se) in diff.items()}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
