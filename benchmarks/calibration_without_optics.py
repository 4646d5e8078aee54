"""A bead calibration with and without the optics, on lenses from two independent PSF libraries.

For each (library, lens, layout) a noisy bead slide is rendered by the
library (pyotf lenses: :mod:`lib.independent_lens`; psfmodels lenses:
:mod:`lib.psfmodels_lens`), calibrated with ``calibrate_from_beads`` twice, once
with the lens's optics and once with none (the napari dock's default), and
the calibrated field is compared with the truth: PSF correlation (median,
corners), the displacement that lines the calibrated PSFs up with the true
ones (median, max), blur fidelity on real specimens, the time taken, the
model chosen and the calibration's own centroid self-check and warnings.
Each result is appended to a JSON-lines file as soon as it is measured.

Usage::

    python benchmarks/calibration_without_optics.py --cases psfmodels:strong:grid pyotf:coma:dense
    python benchmarks/calibration_without_optics.py --cases all
    # -> benchmarks/results/calibration_without_optics/calibration_without_optics.jsonl (the default --out)
"""

from __future__ import annotations

import argparse
import json
import time

from lib.calibration import DEFAULT_CASES, truth_and_slide
from lib.common import append_jsonl, machine, results_dir
from lib.independent_lens import blur_fidelity, psf_metrics, specimens

from napari_coordgate import calibrate_from_beads
from napari_coordgate.psf.psf_field import PSFField


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["all"], help="library:lens:layout, or 'all'")
    p.add_argument("--optics", choices=["both", "given", "unknown"], default="both")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(results_dir("calibration_without_optics") / "calibration_without_optics.jsonl"),
                   help="JSON-lines file the results are appended to")
    return p.parse_args(argv)


def cropped(field: PSFField, size: int) -> PSFField:
    """``field`` with its kernels cut to their central ``size x size`` (renormalised), if they are larger."""
    if field.psf_size <= size:
        return field
    start = (field.psf_size - size) // 2
    return PSFField(field.psfs[:, :, start : start + size, start : start + size], field.field_shape, kind=field.kind)


def measure(truth, image, optics: dict | None) -> dict:
    """Calibrate and compare with the truth."""
    start = time.perf_counter()
    field = calibrate_from_beads(image, **(optics or {}))
    seconds = time.perf_counter() - start
    metrics = psf_metrics(field, truth)
    sharp = specimens(truth.field_shape, 4, seed=5)
    fidelity = blur_fidelity(field, truth, sharp)
    # The true fields are cut where they hold 98 % of the PSF's energy (and renormalised); a calibrated kernel
    # that is wider carries light the truth dropped. The same comparison on the truth's support:
    same_support = blur_fidelity(cropped(field, truth.psf_size), truth, sharp)
    meta = field.metadata
    return {
        "seconds": round(seconds, 1),
        "method": meta["method"],
        "method_reason": meta["method_reason"],
        "models_compared": meta.get("models_compared"),
        "pupil_model": {key: value for key, value in (meta.get("pupil_model") or {}).items()
                        if key != "aberration_polynomials_waves"},
        "held_out_unexplained": meta["held_out"]["unexplained_fraction"],
        "centroid_check": {key: meta["centroid_check"][key] for key in ("median_px", "max_px", "passed")},
        "model_agreement": meta.get("model_agreement"),
        "warnings": meta["warnings"],
        "psf_corr_median": round(metrics["all"]["corr"], 4),
        "psf_corr_corners": round(metrics["corners"]["corr"], 4),
        "displacement_px_median": round(metrics["all"]["displacement_px"], 3),
        "displacement_px_max": round(metrics["all"]["displacement_px_worst"], 3),
        "blur_psnr_db": round(fidelity["psnr"], 2),
        "blur_psnr_truth_support_db": round(same_support["psnr"], 2),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    cases = DEFAULT_CASES if args.cases == ["all"] else args.cases
    settings = {"both": (True, False), "given": (True,), "unknown": (False,)}[args.optics]
    info = machine()
    for case in cases:
        library, lens, layout = case.split(":")
        truth, image, optics = truth_and_slide(library, lens, layout, args.seed)
        for given in settings:
            try:
                row = measure(truth, image, optics if given else None)
            except ValueError as error:  # a refusal is a result too
                row = {"refused": str(error)}
            row = {"case": case, "optics": "given" if given else "unknown", **row, "cpu": info.get("cpu"),
                   "load_avg_1m_at_start": info.get("load_avg_1m_at_start")}
            print(json.dumps(row), flush=True)
            append_jsonl(args.out, row)


if __name__ == "__main__":
    main()
