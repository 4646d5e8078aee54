"""Parameter counts of the model family (docs/models.md).

Run: .venv/bin/python benchmarks/param_counts.py
"""

from napari_coordgate import CGUNet, CoordConvUNet, UNet

FIELD = (256, 256)


def main(base: int = 32) -> None:
    rows = [(f"U-Net({d})", UNet(d, base_channels=base).n_parameters()) for d in range(3, 7)]
    rows += [(f"CG U-Net({d})", CGUNet(d, field_shape=FIELD, base_channels=base).n_parameters()) for d in (3, 4, 6)]
    rows += [(f"CoordConv U-Net({d})", CoordConvUNet(d, field_shape=FIELD, base_channels=base).n_parameters()) for d in (3, 6)]
    unet6 = dict(rows)["U-Net(6)"]
    print(f"| model (base_channels={base}) | parameters | U-Net(6) / model |")
    print("|---|---:|---:|")
    for name, n in rows:
        print(f"| {name} | {n:,} | {unet6 / n:.1f}x |")


if __name__ == "__main__":
    main()
