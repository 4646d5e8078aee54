"""Paired per-image differences between the models of a ``bead_calibration_independent.py`` result.

Usage::

    python benchmarks/paired_stats.py benchmarks/results/bead_calibration_independent/bead_independent_coma_dense_pupil_4min.json

For each run it prints, over the held-out test images, the mean and standard
error of: CG U-Net minus U-Net (both trained on the calibrated field), overall
and at the edge, and the true-field minus calibrated-field CG U-Net gap.
"""

from __future__ import annotations

import json
import sys

from lib.stats import paired_difference


def main(paths: list[str]) -> None:
    for path in paths:
        runs = json.load(open(path))["runs"]
        for name, run in runs.items():
            models = run.get("models") or {}
            if "calibrated" not in models:
                continue
            cal, true = models["calibrated"], models.get("true field", {})
            out = [name]
            for key, label in (("whole", "all"), ("edge", "edge")):
                m, s = paired_difference(cal["CGUNet"]["per_image"][key], cal["UNet"]["per_image"][key])
                out.append(f"CG - U-Net ({label}) {m:+.2f} +/- {s:.2f} dB")
            if "CGUNet" in true:
                m, s = paired_difference(true["CGUNet"]["per_image"]["whole"], cal["CGUNet"]["per_image"]["whole"])
                out.append(f"true - calibrated CG {m:+.2f} +/- {s:.2f} dB")
            print("; ".join(out), f"(n = {len(cal['CGUNet']['per_image']['whole'])})")


if __name__ == "__main__":
    main(sys.argv[1:])
