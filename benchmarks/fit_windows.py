"""The calibration's fit window for every case of section 11 and for the 2048 x 2048 sensor slide (issue #21).

Each calibration is stopped right after detection, when the window is
reported, with and without the optics. Run it on two checkouts to see that a
change leaves the windows of the small slides as they were:

    python benchmarks/fit_windows.py                                  # this checkout
    PYTHONPATH=/path/to/old/checkout/src python benchmarks/fit_windows.py
"""
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lib.calibration import DEFAULT_CASES, truth_and_slide
from lib.independent_lens import OPTICS, independent_lens, render_slide
from napari_coordgate import calibrate_from_beads
from napari_coordgate.cancellation import Cancelled


def window(image, optics):
    """The window the calibration reports for ``image`` (it is cancelled right after)."""
    seen = []
    cancel = threading.Event()

    def report(message: str) -> None:
        if "px window" in message:
            seen.append(message)
            cancel.set()

    try:
        calibrate_from_beads(image, report=report, cancel=cancel, **optics)
    except Cancelled:
        pass
    return seen[0].split("fitted in a ")[1] if seen else None


for case in list(DEFAULT_CASES) + ["sensor2048"]:
    if case == "sensor2048":
        truth = independent_lens("coma", (2048, 2048))
        image, *_ = render_slide(truth, "sensor", seed=1)
        optics = OPTICS["coma"]
    else:
        truth, image, optics = truth_and_slide(*case.split(":"), seed=1)
    print(case, "optics unknown:", window(image, {}), "| given:", window(image, optics), flush=True)
