"""Which field models a bead calibration tries, how each starts, and why one is chosen."""

from __future__ import annotations

import numpy as np

from .bead_fit import BeadScene
from .empirical_field import EmpiricalFieldModel
from .field_interp import psf_fwhm
from .field_polynomials import field_uv, n_monomials
from .pupil_field import PupilFieldModel

__all__ = ["trial_models", "ridge", "choice_reason"]

#: Polynomial orders the empirical model chooses from (by held-out beads).
EMPIRICAL_ORDERS = (1, 2, 3, 4)
#: Beads needed per polynomial term of the empirical model (fewer: that order is not tried).
BEADS_PER_TERM = 8
#: Weight of the empirical model's ridge on its field-dependent terms.
RIDGE = 1e-3
#: Default NA assumed by the pupil model when no optics are given (its cut-off is then fitted).
DEFAULT_NA = 1.0


def trial_models(method, optics, scene, start_kernel, shape):
    """The models to fit and compare, in order."""
    trials = []
    if method in ("auto", "pupil"):
        trials.append(("pupil", pupil_model(optics, scene, start_kernel, shape)))
    if method == "empirical" or (method == "auto" and optics is None):
        # Each field-dependent term of the PSF needs several beads behind it.
        n_beads = len(scene.positions)
        orders = [o for o in EMPIRICAL_ORDERS if BEADS_PER_TERM * n_monomials(o) <= n_beads] or [EMPIRICAL_ORDERS[0]]
        for order in orders:
            trials.append((f"empirical (order {order})", EmpiricalFieldModel(scene.window, scene.psf_size, order, start_kernel)))
    return trials


def pupil_model(optics, scene, start_kernel, shape) -> PupilFieldModel:
    widths = np.array([local_width(scene, p) for p in scene.positions])
    if optics is not None:
        cutoff = optics["na"] * optics["pixel_size_nm"] / optics["wavelength_nm"]
        model = PupilFieldModel(scene.window, cutoff=cutoff, na=optics["na"], immersion_index=optics["immersion_index"])
    else:
        # In-focus FWHM ~ 0.51 wavelength / NA: the sharpest beads give the pupil size to start from.
        good = widths[np.isfinite(widths)]
        sharpest = max(float(np.percentile(good, 5)) if good.size else psf_fwhm(start_kernel), 1.0)
        model = PupilFieldModel(scene.window, cutoff=min(0.51 / sharpest, 0.45), na=DEFAULT_NA, fit_cutoff=True)
    model.initialise_defocus(field_uv(scene.positions, shape), widths)
    return model


def local_width(scene: BeadScene, position) -> float:
    half = scene.psf_size // 2
    y, x = np.round(position).astype(int)
    H, W = scene.data.shape
    if not (half <= y < H - half and half <= x < W - half):
        return float("nan")
    patch = scene.data[y - half : y + half + 1, x - half : x + half + 1] - scene.background[y - half : y + half + 1, x - half : x + half + 1]
    return psf_fwhm(np.where(patch > 3 * np.sqrt(scene.read_variance), patch, 0))


def ridge(model) -> float:
    return RIDGE if isinstance(model, EmpiricalFieldModel) else 0.0


def choice_reason(method: str, optics, results) -> str:
    if method == "pupil":
        return "asked for"
    if method == "auto" and optics is not None:
        return "the optics (NA, wavelength, pixel size) were given"
    ranked = sorted(results, key=lambda item: item[0])
    best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
    if second is None:
        return "asked for"
    gain = 100 * (second[0] - best[0]) / max(second[0], 1e-12)
    return f"its held-out beads fit best ({gain:.1f}% lower residual than the {second[1]} model)"
