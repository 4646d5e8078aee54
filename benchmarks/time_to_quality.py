"""Time to quality: fine-tuning from the shipped base model against training from scratch.

For each test lens (computed with pyotf by :mod:`lib.independent_lens`, so neither
the lens nor its PSF code is in the base's training family) the script trains
CG U-Net(3) width 16 on data made with a PSF field:

- ``scratch``: a new model, ``--scratch-minutes`` of wall-clock budget;
- ``base`` (and each ``--gates`` variant): the shipped base, ``--base-minutes``;
- ``base 60 s``: the shipped base with a 60 s budget (its schedule ends at 60 s);

and scores the current weights on held-out **real** specimens (crops of
microscopy images that ship with scientific Python packages) blurred by the
true lens with Poisson-Gaussian noise, at a series of wall-clock checkpoints.
The scoring time is not counted in the clock.

With ``--field beads`` the PSF field is the one a user gets from the default
flow: a bead slide rendered by pyotf and calibrated with ``calibrate_from_beads``
(optics given); with ``--field true`` the lens's own field.

Usage::

    python benchmarks/time_to_quality.py --lens coma --field beads
    python benchmarks/time_to_quality.py --lens all --field true --scratch-minutes 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from lib.calibration import bead_calibrated_field
from lib.common import TEST_SEED, machine, write_results
from lib.heldout import held_out
from lib.independent_lens import LENSES, independent_lens
from lib.scoring import evaluate, mean_scores

from napari_coordgate import CGUNet
from napari_coordgate.data import make_training_set
from napari_coordgate.pretrained import GATE_STARTS, base_model
from napari_coordgate.psf import PSFField
from napari_coordgate.training import train

CHECKPOINTS_S = (0, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lens", default="all", choices=[*LENSES, "all"])
    p.add_argument("--field", choices=("true", "beads"), default="beads", help="train on the true or the bead-calibrated field")
    p.add_argument("--layout", default="dense", help="bead-slide layout for --field beads")
    p.add_argument("--size", type=int, default=256, help="side of the square field")
    p.add_argument("--scratch-minutes", type=float, default=10.0)
    p.add_argument("--base-minutes", type=float, default=3.0)
    p.add_argument("--gates", nargs="+", default=["base"], choices=GATE_STARTS, help="gate starts to try from the base")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--runs", nargs="+", default=["base", "base60", "scratch"], choices=("base", "base60", "scratch"),
                   help="which runs to make (default all; e.g. only base60 to probe the 60 s budget)")
    p.add_argument("--n-test", type=int, default=12)
    p.add_argument("--photons", type=float, default=200.0)
    p.add_argument("--read-noise", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--field-cache", default=None,
                   help="folder for the bead-calibrated fields: reused when there (calibration is deterministic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def _score(model, test) -> dict:
    """The model's mean scores on the held-out ``(blurred, sharp)`` pair."""
    return evaluate(model, test[0], test[1], per_image=False)


def curve(model, data, minutes: float, test, args) -> dict:
    """Train under a wall-clock budget; score the current weights at each checkpoint (scoring not timed)."""
    torch.manual_seed(args.seed)
    budget = 60.0 * minutes
    marks = [c for c in CHECKPOINTS_S if c <= budget] + [budget]
    points = [{"t": 0.0, "step": 0, **_score(model, test)}]
    gen = train(model, data, time_budget_s=budget, lr=args.lr, batch_size=8, val_every=25, preview=False,
                seed=args.seed, device="cpu")
    paused = 0.0
    nxt = 1
    last = None
    for record in gen:
        last = record
        clock = record.elapsed_s - paused
        if nxt < len(marks) and clock >= marks[nxt]:
            t0 = time.perf_counter()
            state = {k: v.clone() for k, v in model.state_dict().items()}
            points.append({"t": round(clock, 1), "step": record.step, **_score(model, test)})
            model.load_state_dict(state)
            model.train()
            paused += time.perf_counter() - t0
            while nxt < len(marks) and clock >= marks[nxt]:
                nxt += 1
    final = _score(model, test)  # the best validated weights, as the user gets them
    print(f"    {len(points)} checkpoints, {last.step} steps; final (best-validated) PSNR {final['psnr']:.2f} dB "
          f"(edge {final['psnr_edge']:.2f})", flush=True)
    return {"points": points, "final": final, "steps": last.step, "minutes": minutes}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    field_shape = (args.size, args.size)
    lenses = list(LENSES) if args.lens == "all" else [args.lens]
    name = f"time_to_quality_{args.lens}_{args.field}"
    payload = {"args": vars(args), "machine": machine(), "lenses": {}}
    for lens_name in lenses:
        truth = independent_lens(lens_name, field_shape, (16, 16))
        cached = Path(args.field_cache) / f"{lens_name}_{args.layout}_{args.size}.npz" if args.field_cache else None
        if args.field == "beads" and cached is not None and cached.exists():
            field = PSFField.load(cached)
            print(f"{lens_name}: bead-calibrated field from {cached}", flush=True)
        elif args.field == "beads":
            field, _, info = bead_calibrated_field(truth, lens_name, args.layout)
            print(f"{lens_name}: calibrated from beads in {info['seconds']:.0f} s", flush=True)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                field.save(cached)
        else:
            field = truth
        test = held_out(truth, args.n_test, TEST_SEED, args.photons, args.read_noise)
        data = make_training_set(field, patch_size=64, noise={"photons": args.photons, "read_noise": args.read_noise},
                                 seed=args.seed)
        runs = {"input": mean_scores(test[0], test[1])}
        print(f"{lens_name}: input PSNR {runs['input']['psnr']:.2f} dB", flush=True)
        out = payload["lenses"][lens_name] = {"description": truth.metadata.get("description"), "runs": runs}
        jobs = [(f"base ({g} gates)", "base", g, args.base_minutes) for g in args.gates] if "base" in args.runs else []
        jobs += [("base 60 s", "base", args.gates[0], 1.0)] if "base60" in args.runs else []
        jobs += [("scratch", "scratch", None, args.scratch_minutes)] if "scratch" in args.runs else []
        for label, start, gates, minutes in jobs:
            print(f"  {label}: {minutes:g} min", flush=True)
            torch.manual_seed(args.seed)
            model = base_model(field_shape, gates=gates) if start == "base" else CGUNet(3, field_shape=field_shape, base_channels=16)
            runs[label] = curve(model, data, minutes, test, args)
            write_results("time_to_quality", name, payload, args.json)
        summarise(out)
    path = write_results("time_to_quality", name, payload, args.json)
    print(f"wrote {path}")
    return payload


def summarise(out: dict) -> None:
    """Gain over the input, and when the base reaches what scratch reaches at the end."""
    runs = out["runs"]
    base_in = runs["input"]["psnr"]
    if "scratch" not in runs:
        out["summary"] = {label: {"final_gain_db": run["final"]["psnr"] - base_in}
                          for label, run in runs.items() if label != "input"}
        for label, gain in out["summary"].items():
            print(f"  {label:22s} final gain {gain['final_gain_db']:+.2f} dB", flush=True)
        return
    scratch = runs["scratch"]["final"]["psnr"]
    out["summary"] = {"scratch_final_gain_db": scratch - base_in}
    for label, run in runs.items():
        if label == "input":
            continue
        reach = next((p["t"] for p in run["points"] if p["psnr"] >= scratch), None)
        out["summary"][label] = {"final_gain_db": run["final"]["psnr"] - base_in,
                                 "final_edge_gain_db": run["final"]["psnr_edge"] - runs["input"]["psnr_edge"],
                                 "seconds_to_scratch_final": reach}
        print(f"  {label:22s} final gain {run['final']['psnr'] - base_in:+.2f} dB; reaches scratch's final "
              f"({scratch:.2f} dB) at {reach if reach is not None else '-'} s", flush=True)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
