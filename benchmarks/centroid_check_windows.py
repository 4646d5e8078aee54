"""How well the centroid self-check separates good calibrations from displaced ones, by comparison window.

Every calibration of ``calibration_without_optics.py`` (the model "auto" chooses: the pupil) and four
empirical ones (``method="empirical"``, whose kernels are displaced on these lenses) is made, and its
centroid self-check (:func:`napari_coordgate.psf.beads.centroid_check.check_centroids`) is re-run on the
calibration's own inputs in four windows: the default (twice the fitted kernel) and 1.0, 0.8 and 0.65
times the fitted kernel. One JSON line per calibration on stdout: the truth's worst displacement and
corner correlation, and per window ``[window, median, worst region]`` of the check (px).

Usage::

    OMP_NUM_THREADS=1 python centroid_check_windows.py > results/centroid_check_windows/centroid_check_windows.jsonl
"""

from __future__ import annotations

import json

from lib.calibration import DEFAULT_CASES, truth_and_slide
from lib.independent_lens import psf_metrics

import napari_coordgate.psf.beads.calibrate as beads
from napari_coordgate.psf.beads.centroid_check import check_centroids

#: Empirical calibrations (displaced kernels on these lenses): the check's positives.
EMPIRICAL = [("psfmodels:strong:grid", "unknown"), ("pyotf:tilted:dense", "unknown"),
             ("pyotf:decentred:dense", "given"), ("psfmodels:spherical_trefoil:grid", "unknown")]


def main() -> None:
    captured = {}
    check = beads.check_centroids

    def keep_inputs(*args, **kwargs):  # the calibration's own call, kept to re-run in other windows
        captured["args"], captured["kwargs"] = args, kwargs
        return check(*args, **kwargs)

    beads.check_centroids = keep_inputs
    runs = [(c, o, "auto") for c in DEFAULT_CASES for o in ("given", "unknown")]
    runs += [(c, o, "empirical") for c, o in EMPIRICAL]
    for case, optics_mode, method in runs:
        lib, lens, layout = case.split(":")
        truth, image, optics = truth_and_slide(lib, lens, layout, 1)
        field = beads.calibrate_from_beads(image, method=method, **(optics if optics_mode == "given" else {}))
        metrics = psf_metrics(field, truth)
        k = field.metadata["fit_psf_size"]
        row = {"case": case, "optics": optics_mode, "method": field.metadata["method"], "k": k,
               "truth_disp_worst": round(metrics["all"]["displacement_px_worst"], 2),
               "truth_corners": round(metrics["corners"]["corr"], 3)}
        windows = {"default": captured["kwargs"]["window"], "1.0k": k, "0.8k": int(round(0.8 * k)) | 1,
                   "0.65k": int(round(0.65 * k)) | 1}
        for label, window in windows.items():
            result = check_centroids(*captured["args"], **dict(captured["kwargs"], window=window))
            row[label] = [window, result["median_px"], result["max_px"]]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
