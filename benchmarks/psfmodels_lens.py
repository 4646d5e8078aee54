"""The psfmodels test lenses at a glance: kernel sizes, widths, timings, and a montage of their PSFs.

For each lens of :mod:`lib.psfmodels_lens` (psfmodels' vectorial
Gibson-Lanni model, not this project's pupil code) this prints the kernel
size, the half-energy diameter and half-maximum width at the centre and the
corners, the NumPy pupil's agreement with ``psfmodels.vectorial_psf``, the
time to build the field and to render a dense slide, and draws the true PSFs
across the field to ``docs/images/psfmodels_lenses.png``::

    python benchmarks/psfmodels_lens.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lib.psfmodels_lens import PSFMODELS_LENSES, lens_kernel, library_version, psfmodels_lens, render_psfmodels_slide

from napari_coordgate.psf import PSFField


def _montage(fields: dict[str, PSFField], path: Path, n: int = 5) -> None:
    """Draw ``n x n`` true PSFs spread over the field of each lens, one panel per lens.

    Each tile is the central part of the kernel (about three corner
    half-energy diameters, the whole kernel at most), square-root scaled to
    its own peak.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 5.0))
    for ax, (name, field) in zip(np.atleast_1d(axes), fields.items()):
        H, W = field.field_shape
        k, meta = field.psf_size, field.metadata
        widest = max(meta["half_energy_diameter_corners_px"] + [meta["half_energy_diameter_centre_px"]])
        c = min(k, max(21, 2 * int(1.5 * widest) + 1))
        cut = slice(k // 2 - c // 2, k // 2 + c // 2 + 1)
        tiles = np.ones((n * (c + 2), n * (c + 2)))
        for i, y in enumerate(np.linspace(0, H - 1, n)):
            for j, x in enumerate(np.linspace(0, W - 1, n)):
                tile = lens_kernel(name, y, x, k, (H, W))[cut, cut]
                tiles[i * (c + 2) + 1:i * (c + 2) + 1 + c, j * (c + 2) + 1:j * (c + 2) + 1 + c] = np.sqrt(
                    tile / tile.max())
        ax.imshow(tiles, cmap="magma", interpolation="nearest")
        ax.set_title(f"{name} ({meta['engine']} engine)\nNA {meta['na']}, {meta['wavelength_nm']:.0f} nm, "
                     f"{meta['pixel_size_nm']:.0f} nm px, k={k}, tiles {c} px\nhalf-energy diameter: centre "
                     f"{meta['half_energy_diameter_centre_px']:.1f} px, corners "
                     f"{np.mean(meta['half_energy_diameter_corners_px']):.1f} px", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"psfmodels test lenses ({H} x {W} field): true PSFs on a {n} x {n} grid from corner to corner, "
                 "each tile sqrt-scaled to its own peak", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(field_shape: tuple[int, int] = (384, 384), grid: tuple[int, int] = (16, 16)) -> None:
    """Print each lens's kernel size and widths, time a field and a dense slide, draw the montage."""
    print(f"psfmodels {library_version()}; field {field_shape[0]} x {field_shape[1]}, grid {grid[0]} x {grid[1]}")
    fields = {}
    for name in PSFMODELS_LENSES:
        start = time.perf_counter()
        field = psfmodels_lens(name, field_shape, grid)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, positions, _ = render_psfmodels_slide(field, "dense", seed=0)
        rendered = time.perf_counter() - start
        meta = field.metadata
        fields[name] = field
        corners_he = ", ".join(f"{w:.1f}" for w in meta["half_energy_diameter_corners_px"])
        corners_fw = ", ".join(f"{w:.1f}" for w in meta["half_maximum_width_corners_px"])
        check = meta.get("psfmodels_check")
        print(f"\n{name} [{meta['engine']}]: {meta['description']}")
        print(f"  k = {field.psf_size} px")
        centre_he, centre_fw = meta["half_energy_diameter_centre_px"], meta["half_maximum_width_centre_px"]
        print(f"  half-energy diameter: centre {centre_he:.2f} px, corners {corners_he} px")
        print(f"  half-maximum width:   centre {centre_fw:.2f} px, corners {corners_fw} px")
        if check:
            print(f"  NumPy pupil vs psfmodels (non-symmetric terms off): corr centre {check['centre']:.6f}, "
                  f"corner {check['corner']:.6f}")
        print(f"  field built in {built:.1f} s; dense slide ({len(positions)} beads) rendered in {rendered:.1f} s "
              f"({150 * rendered / len(positions):.1f} s per 150 beads)")
    out = Path(__file__).resolve().parents[1] / "docs" / "images" / "psfmodels_lenses.png"
    _montage(fields, out)
    print(f"\nmontage: {out}")


if __name__ == "__main__":
    main()
