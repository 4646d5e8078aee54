"""How close are the procedural training specimens to real microscopy images?

Compares ``make_specimen`` (kind "mixed", the training default) with the real
images the benchmarks test on (:func:`lib.independent_lens.specimens`: crops of
microscopy images that ship with scikit-image and napari), each normalised by
its 0.1 / 99.9 percentiles, on:

- the intensity histogram: the share of dark pixels (< 0.05), of bright
  pixels (> 0.5), the median and the skewness;
- the radially averaged power spectrum: its log-log slope between 0.02 and
  0.25 cycles per pixel, and the power at 5-20 px structures relative to
  coarser ones (:func:`napari_coordgate.inference.image_change.detail_ratio`);

and writes a montage of both kinds (``--figure``) for a quick look.

Usage::

    python benchmarks/specimen_realism.py --n 24 --figure docs/images/specimens-vs-real.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.stats import skew

from lib.common import machine, write_results
from lib.independent_lens import specimens

from napari_coordgate.data.specimens import make_specimen
from napari_coordgate.inference.image_change import detail_ratio


def _normalise(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, (0.1, 99.9))
    return np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)


def spectrum_slope(image: np.ndarray, band: tuple[float, float] = (0.02, 0.25)) -> float:
    """Log-log slope of the radially averaged power spectrum within ``band`` (cycles per pixel)."""
    x = image - image.mean()
    power = np.abs(np.fft.fft2(x)) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.fftfreq(x.shape[1])[None, :]
    radius = np.hypot(fy, fx).ravel()
    edges = np.geomspace(band[0], band[1], 16)
    which = np.digitize(radius, edges)
    centres, means = [], []
    for i in range(1, len(edges)):
        inside = which == i
        if inside.any():
            centres.append(radius[inside].mean())
            means.append(power.ravel()[inside].mean())
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def statistics(images: np.ndarray) -> dict:
    rows = []
    for image in images:
        x = _normalise(np.asarray(image, np.float64))
        rows.append({"dark_fraction": float(np.mean(x < 0.05)), "bright_fraction": float(np.mean(x > 0.5)),
                     "median": float(np.median(x)), "skewness": float(skew(x.ravel())),
                     "spectrum_slope": spectrum_slope(x), "detail_ratio": detail_ratio(x)})
    keys = rows[0].keys()
    return {k: {"mean": float(np.mean([r[k] for r in rows])), "sd": float(np.std([r[k] for r in rows]))}
            for k in keys}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--figure", default=None)
    args = p.parse_args(argv)
    shape = (args.size, args.size)
    rng = np.random.default_rng(0)
    procedural = np.stack([make_specimen(shape, rng, "mixed") for _ in range(args.n)])
    real = specimens(shape, args.n, seed=3)
    result = {"args": vars(args), "machine": machine(),
              "procedural": statistics(procedural), "real": statistics(real)}
    print(f"{'':16s} {'procedural':>18s} {'real':>18s}")
    for key in result["real"]:
        a, b = result["procedural"][key], result["real"][key]
        print(f"{key:16s} {a['mean']:9.3f} ± {a['sd']:6.3f} {b['mean']:9.3f} ± {b['sd']:6.3f}")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
        for row, (name, images) in enumerate((("procedural", procedural), ("real", real))):
            for col in range(6):
                axes[row, col].imshow(_normalise(images[col]), cmap="gray")
                axes[row, col].set_axis_off()
            axes[row, 0].set_title(name, loc="left", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=80)
    write_results("specimen_realism", "specimen_realism", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
