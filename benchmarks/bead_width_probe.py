"""Bead widths against the true lens's: as measured, and counting the patch's negative pixels too (issue #21).

For slides of a pyotf lens (and ``--psfmodels``: of a psfmodels lens) of
several sizes and layouts, every isolated bead's half-energy width is measured
in its detection patch both ways and compared with the true kernel's at the
bead (median / 95th percentile, and the median ratio of the two measures).

    python benchmarks/bead_width_probe.py [--psfmodels]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np

from napari_coordgate.psf.beads.detection import detect_beads
from napari_coordgate.psf.beads.nodes import bead_width_measures
from napari_coordgate.psf.kernels import psf_fwhm


def probe(truth, image, field):
    found = detect_beads(image)
    centres, widths = bead_width_measures(found, np.ones(len(found.centres), bool), image.astype(float),
                                          field // 2 - 1)
    true = np.array([psf_fwhm(truth.psf_at(float(y), float(x))) for y, x in centres])
    r = np.column_stack([widths, true])
    return ("true %.1f/%.1f measured %.1f/%.1f counting negative pixels %.1f/%.1f ratio %.2f" % (
        np.median(r[:, 2]), np.percentile(r[:, 2], 95), np.median(r[:, 0]), np.percentile(r[:, 0], 95),
        np.median(r[:, 1]), np.percentile(r[:, 1], 95), np.median(r[:, 0] / r[:, 1])))


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--psfmodels", action="store_true")
    if args.parse_args().psfmodels:
        from lib.psfmodels_lens import psfmodels_lens, render_psfmodels_slide

        for field, layout in [(384, "dense"), (384, "grid"), (2048, "sensor")]:
            truth = psfmodels_lens("strong", (field, field))
            print("psfmodels strong", field, layout, probe(truth, render_psfmodels_slide(truth, layout, seed=1)[0], field))
    else:
        from lib.independent_lens import independent_lens, render_slide

        for field, layout in [(256, "sparse"), (256, "dense"), (512, "dense"), (1024, "sensor"), (2048, "sensor")]:
            truth = independent_lens("coma", (field, field))
            print("pyotf coma", field, layout, probe(truth, render_slide(truth, layout, seed=1)[0], field))
