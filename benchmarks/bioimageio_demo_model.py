"""BioImage.IO export of the demo's model: bioimageio.core's own test, and the round trip.

Exports the model that ``coordgate demo`` trained (its ``model.safetensors``),
with the demo's blurred specimen as the package's test input, then runs
``bioimageio.core.test_model`` for each weight format and compares the package's
outputs with this package's ``deblur``:

    coordgate demo --out /tmp/demo_out
    python benchmarks/bioimageio_demo_model.py /tmp/demo_out
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lib.common import write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demo", help="output folder of 'coordgate demo'")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import bioimageio.core
    import bioimageio.spec

    from napari_coordgate import deblur, load_model
    from napari_coordgate.export import export_bioimageio

    demo = Path(args.demo)
    model = load_model(demo / "model.safetensors")
    blurred = tifffile.imread(demo / "blurred.tif").astype(np.float32)
    package = demo / "model-bioimageio.zip"
    t0 = time.perf_counter()
    export_bioimageio(model, package, authors=["napari-coordgate benchmark"], sample=blurred, overwrite=True)
    export_s = time.perf_counter() - t0
    descr = bioimageio.spec.load_description(package)
    result = {"package": str(package), "package_mb": package.stat().st_size / 2**20, "export_s": export_s,
              "format_version": str(descr.format_version), "validation": descr.validation_summary.status,
              "bioimageio_core": bioimageio.core.__version__, "bioimageio_spec": bioimageio.spec.__version__}
    for weights in ("pytorch_state_dict", "torchscript"):
        t0 = time.perf_counter()
        summary = bioimageio.core.test_model(package, devices=["cpu"], weight_format=weights)
        failed = [d.name for d in summary.details if d.status != "passed"]
        result[weights] = {"status": summary.status, "seconds": time.perf_counter() - t0, "not_passed": failed}
        print(f"bioimageio.core.test_model ({weights}): {summary.status} in {result[weights]['seconds']:.1f} s"
              + (f"; not passed: {failed}" if failed else ""), flush=True)
    back = load_model(package)
    fp32 = deblur(blurred, model, device="cpu", precision="fp32")
    result["round_trip_max_abs"] = float(np.abs(deblur(blurred, back, device="cpu", precision="fp32") - fp32).max())
    result["intensity_span"] = float(np.ptp(blurred))
    print(f"export {export_s:.1f} s, {result['package_mb']:.2f} MB, spec {result['format_version']}; load_model(zip) "
          f"vs the original, fp32: max |diff| {result['round_trip_max_abs']:.2e} (intensity span {result['intensity_span']:.0f})")
    print(f"wrote {write_results('bioimageio_demo_model', 'bioimageio_demo_model', result, args.out)}")


if __name__ == "__main__":
    main()
