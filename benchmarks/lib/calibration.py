"""Bead calibration as the benchmarks run it.

- :data:`DEFAULT_CASES` and :func:`truth_and_slide`: the cases
  ``library:lens:layout`` (pyotf lenses of :mod:`lib.independent_lens`,
  psfmodels lenses of :mod:`lib.psfmodels_lens`), each a true field, a noisy
  bead slide and the lens's optics;
- :func:`calibrate`: ``calibrate_from_beads``, timed, a refusal returned rather
  than raised, and keywords an older installed version does not know dropped
  (so the same script measures an older checkout);
- :func:`bead_calibrated_field`: the field a user gets from the default flow
  (a dense slide through the true lens, calibrated with the optics given).
"""

from __future__ import annotations

import inspect
import re
import time

import numpy as np

from .independent_lens import LENSES, OPTICS, independent_lens, render_slide
from .psfmodels_lens import PSFMODELS_LENSES, PSFMODELS_OPTICS, psfmodels_lens, render_psfmodels_slide

#: The default cases: every lens of both libraries on a dense slide, the issue's lens on every layout.
DEFAULT_CASES = (
    [f"psfmodels:strong:{layout}" for layout in ("grid", "dense", "partial", "clipped")]
    + [f"psfmodels:{name}:grid" for name in PSFMODELS_LENSES if name != "strong"]
    + [f"pyotf:{name}:dense" for name in LENSES]
)

_NOTED: set[str] = set()  # keywords already reported as unknown
_UNKNOWN_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'")


def true_field(library: str, lens: str, field_shape: tuple[int, int]):
    """The true PSF field of a lens from an independent library (``pyotf`` or ``psfmodels``) on a field of any size."""
    if library == "psfmodels":
        return psfmodels_lens(lens, field_shape)
    if library == "pyotf":
        return independent_lens(lens, field_shape)
    raise ValueError(f"unknown library {library!r}: psfmodels or pyotf")


def lens_and_slide(library: str, lens: str, field_shape: tuple[int, int], layout: str, seed: int):
    """The true field of a lens on a field of any size, a slide through it, the beads' true
    positions and the lens's optics: ``(truth, image, positions, optics)``."""
    truth = true_field(library, lens, field_shape)
    if library == "psfmodels":
        image, positions, _ = render_psfmodels_slide(truth, layout, seed=seed)
        return truth, image, positions, PSFMODELS_OPTICS[lens]
    image, positions, _ = render_slide(truth, layout, seed=seed)
    return truth, image, positions, OPTICS[lens]


def truth_and_slide(library: str, lens: str, layout: str, seed: int):
    """The true field, the slide image and the optics of one case."""
    if library == "psfmodels":
        truth = psfmodels_lens(lens, (384, 384))
        image, *_ = render_psfmodels_slide(lens, layout, seed=seed)
        return truth, image, PSFMODELS_OPTICS[lens]
    if library == "pyotf":
        truth = independent_lens(lens, (256, 256))
        image, *_ = render_slide(truth, layout, seed=seed)
        return truth, image, OPTICS[lens]
    raise ValueError(f"unknown library {library!r}: psfmodels or pyotf")


def calibrate(image: np.ndarray, method: str, optics: dict | None) -> tuple:
    """Run ``calibrate_from_beads``; drop keywords the installed version does not know.

    Returns
    -------
    field : PSFField or None
        None when the calibration refused the slide.
    info : dict
        ``dropped`` (keywords the installed signature rejected), ``refused``
        (the ValueError message), ``seconds``.
    """
    from napari_coordgate import calibrate_from_beads

    kwargs = {"method": method, **(optics or {})}
    dropped: list[str] = []
    start = time.perf_counter()
    while True:
        try:
            field = calibrate_from_beads(image, **kwargs)
            break
        except TypeError as err:
            match = _UNKNOWN_KEYWORD.search(str(err))
            if not match or match.group(1) not in kwargs:
                raise
            dropped.append(match.group(1))
            kwargs.pop(match.group(1))
        except ValueError as err:
            info = {"refused": str(err), "dropped": dropped, "seconds": time.perf_counter() - start}
            return None, info
    if dropped and not _NOTED.intersection(dropped):
        _NOTED.update(dropped)
        print(f"  note: this calibrate_from_beads does not take {', '.join(dropped)}; called without "
              f"(signature: {inspect.signature(calibrate_from_beads)})", flush=True)
    return field, {"refused": None, "dropped": dropped, "seconds": time.perf_counter() - start}


def bead_calibrated_field(truth, lens_name: str, layout: str = "dense"):
    """The field a user gets from the default flow: a bead slide through ``truth``, calibrated
    with the lens's optics. Returns ``(field, slide, info)``; exits if the slide is refused."""
    slide, _, _ = render_slide(truth, layout, seed=1)
    field, info = calibrate(slide, "auto", OPTICS[lens_name])
    if field is None:
        raise SystemExit(f"{lens_name}: calibration refused the slide: {info['refused']}")
    return field, slide, info
