"""What adding one image layer costs napari's GUI thread, and what building it off that thread would save (issue #23).

A shown viewer at 1366 x 768 (run it under Xvfb on a machine without a
display) that already shows one image, so that the image shaders are
compiled. Then, for a sample-sized and a sensor-sized float32 image, in turn
and repeated: the ``Image`` layer object is constructed (the part a worker
thread could do), added with ``viewer.add_layer`` (its vispy visual, its
controls and the texture: GUI thread only), and the event loop is turned once
(its first draw). ``viewer.add_image`` of the same data is timed as well.

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/layer_add_cost.py
    # -> results/layer_add_cost/layer_add_cost.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lib.common import machine, write_results


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[256, 2048])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import napari
    from napari.layers import Image
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)

    def settle(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((256, 256)).astype(np.float32), name="first")
    settle(1.0)
    rows = []
    for repeat in range(args.repeats):
        for side in args.sides:
            data = rng.random((side, side)).astype(np.float32)
            t0 = time.perf_counter()
            layer = Image(data, name=f"built {side} {repeat}", contrast_limits=(0.0, 1.0))
            t1 = time.perf_counter()
            viewer.add_layer(layer)
            t2 = time.perf_counter()
            app.processEvents()
            t3 = time.perf_counter()
            settle(0.5)
            t3b = time.perf_counter()
            viewer.add_image(data, name=f"added {side} {repeat}", contrast_limits=(0.0, 1.0))
            t4 = time.perf_counter()
            app.processEvents()
            t5 = time.perf_counter()
            settle(0.5)
            row = {"side": side, "construct_ms": 1000 * (t1 - t0), "add_layer_ms": 1000 * (t2 - t1),
                   "first_draw_ms": 1000 * (t3 - t2), "add_image_ms": 1000 * (t4 - t3b),
                   "add_image_first_draw_ms": 1000 * (t5 - t4)}
            rows.append(row)
            print(f"{side}^2: construct {row['construct_ms']:.0f} ms, add_layer {row['add_layer_ms']:.0f} ms, "
                  f"first draw {row['first_draw_ms']:.0f} ms; add_image {row['add_image_ms']:.0f} ms, "
                  f"first draw {row['add_image_first_draw_ms']:.0f} ms", flush=True)
    viewer.close()
    payload = {"machine": machine(), "rows": rows}
    write_results("layer_add_cost", "layer_add_cost", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
