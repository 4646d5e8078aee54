"""Where does the bead-calibration gap come from? Train on simplified TRUE fields.

Trains one CG U-Net(3) exactly as ``bead_calibration_quality.py`` does (same lens,
test set, budget and seed), but on the true lens reduced in one way only:

- ``k21``: the true PSFs cut to 21 x 21 px (the bead calibration's kernel size);
- ``g4``: the true lens sampled on a 4 x 4 grid (the calibration's grid);
- ``k13``: the true PSFs cut to 13 x 13 px (the old automatic bead kernel size).

If such a model scores as well as the full true field, that simplification is not
what costs the bead-trained model its PSNR.

Usage::

    cd benchmarks && python bead_gap_diagnosis.py k21
    python bead_gap_diagnosis.py g4
"""

from __future__ import annotations

import argparse

import torch

from lib.scoring import evaluate
from lib.training import train_for, training_args

from napari_coordgate import CGUNet, simulate_lens
from napari_coordgate.data import make_training_set
from napari_coordgate.device import resolve_device

LENS = dict(defocus_edge=1.0, astigmatism_edge=0.4, coma_edge=0.2)
VARIANTS = {"k21": dict(psf_size=21), "g4": dict(grid=(4, 4)), "k13": dict(psf_size=13)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variant", choices=sorted(VARIANTS))
    p.add_argument("--minutes", type=float, default=3.0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = training_args(["--minutes", str(args.minutes), "--field", "256"])
    device = resolve_device("cpu")
    field = (256, 256)
    lens = simulate_lens(field, **LENS)
    reduced = simulate_lens(field, **LENS, **VARIANTS[args.variant])
    noise = {"photons": settings.photons, "read_noise": settings.read_noise}
    test = make_training_set(lens, patch_size=settings.patch, n_specimens=1, n_val=settings.n_test,
                             noise=noise, seed=1000).validation
    torch.manual_seed(0)
    model = CGUNet(3, field_shape=field, base_channels=settings.base, gate_hidden=settings.gate_hidden, gate_layers=settings.gate_layers)
    data = make_training_set(reduced, patch_size=settings.patch, n_val=settings.n_val, noise=noise, seed=0)
    run = train_for(model, data, settings, device)
    r = evaluate(model, test.blurred, test.sharp, device)
    print(f"{args.variant}: {run['steps']} steps; true-lens test PSNR {r['psnr']:.2f} dB, "
          f"centre {r['psnr_centre']:.2f}, edge {r['psnr_edge']:.2f}")
    return r


if __name__ == "__main__":
    main()
