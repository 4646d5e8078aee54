"""Calibrating a whole 2048 x 2048 sensor from a bead slide of about 1000 beads (issue #21).

The lens comes from an independent PSF library (pyotf, or psfmodels), each
bead's PSF computed for its own field position; the slide has 1000 beads at
random (the ``sensor`` layout of :func:`lib.independent_lens.slide_positions`),
2e3-2e4 photons, background 100, Poisson and read noise.
``calibrate_from_beads`` runs as the dock runs it (with or without the
optics), and every progress message it reports is time-stamped, so the
seconds of each stage are on record. Peak RSS is the process's; the PSFs are
compared with the true lens on a 16 x 16 grid of field points
(:func:`lib.independent_lens.psf_metrics`).

    python benchmarks/sensor_calibration.py --lens pyotf:coma --optics given
    # -> results/sensor_calibration/sensor_calibration.jsonl (one line a run), the stage log on stdout
    python benchmarks/sensor_calibration.py --field 512 --layout dense [--trial-beads 100000] \
        --out results/sensor_calibration/subset_ab.jsonl   # the subset against every bead
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from lib.calibration import lens_and_slide
from lib.common import machine, record_result, results_dir


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lens", default="pyotf:coma", help="library:lens (pyotf:coma, psfmodels:strong, ...)")
    p.add_argument("--field", type=int, default=2048)
    p.add_argument("--optics", choices=["given", "unknown"], default="given")
    p.add_argument("--psf-size", type=int, default=None, help="the fit window (default: chosen from the beads)")
    p.add_argument("--layout", default="sensor", help="slide layout (lib.independent_lens.LAYOUTS; default: 1000 beads)")
    p.add_argument("--trial-beads", type=int, default=None,
                   help="beads the field models are chosen on (default: the package's TRIAL_BEADS)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(results_dir("sensor_calibration") / "sensor_calibration.jsonl"))
    args = p.parse_args(argv)

    import importlib

    from napari_coordgate import calibrate_from_beads

    beads_module = importlib.import_module(calibrate_from_beads.__module__)
    if args.trial_beads is not None:
        beads_module.TRIAL_BEADS = args.trial_beads

    library, lens = args.lens.split(":")
    shape = (args.field, args.field)
    made = time.perf_counter()
    if library not in ("pyotf", "psfmodels"):
        raise SystemExit(f"unknown library {library!r}: pyotf or psfmodels")
    truth, image, positions, optics = lens_and_slide(library, lens, shape, args.layout, args.seed)
    print(f"{args.lens} on {shape[0]} x {shape[1]}: {len(positions)} beads, true kernels {truth.psf_size} px, "
          f"slide made in {time.perf_counter() - made:.0f} s", flush=True)

    stages = []
    start = time.perf_counter()

    def report(message: str) -> None:
        stages.append([round(time.perf_counter() - start, 1), message])
        print(f"  {stages[-1][0]:7.1f} s  {message}", flush=True)

    field = calibrate_from_beads(image, report=report, psf_size=args.psf_size,
                                 **(optics if args.optics == "given" else {}))
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    from lib.independent_lens import psf_metrics

    metrics = psf_metrics(field, truth, exact=library == "pyotf")
    meta = field.metadata
    result = {
        "lens": args.lens, "field": args.field, "layout": args.layout, "optics": args.optics,
        "psf_size_given": args.psf_size, "trial_beads": beads_module.TRIAL_BEADS,
        "beads_on_slide": int(len(positions)), "n_detected": meta["n_detected"], "n_used": meta["n_used"],
        "fit_psf_size": meta["fit_psf_size"], "kernel_px": field.psf_size, "method": meta["method"],
        "seconds": round(seconds, 1), "peak_rss_gib": round(peak_gib, 2),
        "psf_corr_median": round(metrics["all"]["corr"], 4), "psf_corr_corners": round(metrics["corners"]["corr"], 4),
        "displacement_px_median": round(metrics["all"]["displacement_px"], 3),
        "displacement_px_max": round(metrics["all"]["displacement_px_worst"], 3),
        "held_out_unexplained": meta["held_out"]["unexplained_fraction"],
        "stages": stages, **machine(),
    }
    record_result(args.out, result)
    return result


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
