"""Which field models a bead calibration tries, how each starts, and why one is chosen."""

from __future__ import annotations

import numpy as np

from ...cancellation import check_cancelled
from ..field_models.axial_pupil_field import AxialPupilFieldModel
from .fit import BeadScene, fit_scene
from .report import WARN_HULL_FRACTION
from ..field_models.empirical_field import EmpiricalFieldModel
from ..kernels import psf_fwhm
from ..field_models.polynomials import field_uv, n_monomials
from ..field_models.pupil_field import PupilFieldModel

__all__ = ["trial_models", "ridge", "choose", "choose_field_law", "choice_reason"]

#: Polynomial orders the empirical model chooses from (by held-out beads).
EMPIRICAL_ORDERS = (1, 2, 3, 4)
#: The one empirical order "auto" fits, without the optics, to judge the pupil model by (fewer beads: lower).
AUTO_EMPIRICAL_ORDER = 3
#: Beads needed per polynomial term of the empirical model (fewer: that order is not tried).
BEADS_PER_TERM = 8
#: Weight of the empirical model's ridge on its field-dependent terms.
RIDGE = 1e-3
#: Starting aperture NA / n of the pupil model when no optics are given (it is then fitted, with the cut-off).
START_APERTURE = 0.7
#: Cut-offs (factors of the width-based guess) and apertures NA / n tried to start the fit without the optics.
OPTICS_GRID_CUTOFF = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
OPTICS_GRID_APERTURE = (0.3, 0.6, 0.8, 0.9, 0.97)
#: Steps the cut-off grid may take beyond its ends when the best cut-off lies on one.
OPTICS_GRID_EXTENSIONS = 6
#: Without the optics, the pupil model is kept unless an empirical model leaves this much less of the
#: held-out beads' light unexplained (a fraction of their light). The held-out residual is measured inside
#: the fitted window, where an empirical model is free to fit anything, and cannot see its errors beyond
#: the window and the beads. Measured on six lenses from two independent libraries (docs/benchmarks.md,
#: section 11): the pupil matched the truth better on all six, including a tilted sample where it left
#: 16.6 % unexplained against the empirical model's 0 % (PSF correlation 0.989 against 0.881).
PUPIL_MARGIN = 0.2


#: Name of the pupil model whose field polynomials are all free (the symmetric laws relaxed).
FREE_LAW_NAME = "pupil (free field polynomials)"
#: Stands for that model in :func:`trial_models`' list: it is made from the fitted symmetric pupil
#: (:meth:`.AxialPupilFieldModel.free_law`) and started from its fit.
FREE_LAW = object()
#: The free field polynomials replace the symmetric laws only when they leave this much less of the held-out
#: beads' light unexplained, and the beads cover the field (the symmetric laws extrapolate, the free
#: polynomials do not). Measured on 7 lenses from two independent libraries: the free polynomials left at most
#: 2.3 points less unexplained, and the symmetric laws matched the truth as well or better everywhere
#: (docs/benchmarks.md, section 11).
AXIAL_MARGIN = 0.05


def trial_models(method, optics, scene, start_kernel, shape, gain=None, report=None):
    """The models to fit and compare, in order (``gain``: the noise gain every fit uses;
    ``report``: called with progress messages).

    A pupil trial comes as two entries: the symmetric laws
    (:class:`.AxialPupilFieldModel`), then :data:`FREE_LAW`, which the
    caller replaces by that fitted model's :meth:`~.AxialPupilFieldModel.free_law`.
    """
    trials = []
    if method in ("auto", "pupil"):
        trials.append(("pupil", pupil_model(optics, scene, start_kernel, shape, gain, report)))
        # The same pupil with every field polynomial free, started from the symmetric fit (see FREE_LAW).
        trials.append((FREE_LAW_NAME, FREE_LAW))
    if method == "empirical" or (method == "auto" and optics is None):
        # Each field-dependent term of the PSF needs several beads behind it.
        n_beads = len(scene.positions)
        orders = [o for o in EMPIRICAL_ORDERS if BEADS_PER_TERM * n_monomials(o) <= n_beads] or [EMPIRICAL_ORDERS[0]]
        if method == "auto":
            # Only the yardstick the pupil is judged by: the richest order up to AUTO_EMPIRICAL_ORDER.
            orders = [max(o for o in orders if o <= AUTO_EMPIRICAL_ORDER)] if min(orders) <= AUTO_EMPIRICAL_ORDER else orders[:1]
        for order in orders:
            trials.append((f"empirical (order {order})", EmpiricalFieldModel(scene.window, scene.psf_size, order, start_kernel)))
    return trials


def pupil_model(optics, scene, start_kernel, shape, gain=None, report=None) -> AxialPupilFieldModel:
    """The pupil model to fit first: the field laws of a rotationally symmetric lens, the optics given or estimated
    (``report``: called with progress messages)."""
    say = report or (lambda message: None)
    widths = np.array([local_width(scene, p) for p in scene.positions])
    if optics is not None:
        cutoff = optics["na"] * optics["pixel_size_nm"] / optics["wavelength_nm"]
        model = AxialPupilFieldModel(scene.window, cutoff=cutoff, na=optics["na"], immersion_index=optics["immersion_index"])
    else:
        # In-focus FWHM ~ 0.51 wavelength / NA: the sharpest beads give the pupil size to start from.
        good = widths[np.isfinite(widths)]
        sharpest = max(float(np.percentile(good, 5)) if good.size else psf_fwhm(start_kernel), 1.0)
        say("estimating the optics (the pupil's size and aperture) from the sharpest beads")
        estimate = estimate_optics(scene, widths, min(0.51 / sharpest, 0.45), gain)
        if estimate is None:  # too few sharp beads: fit the optics with the aberrations
            model = AxialPupilFieldModel(scene.window, cutoff=min(0.51 / sharpest, 0.45), na=START_APERTURE,
                                         fit_cutoff=True, fit_aperture=True)
        else:
            # The optics the sharpest beads show are kept fixed: fitted together with strongly aberrated
            # corners, the cut-off drifts (11 % low on the strongest test lens) and the corners go wrong.
            cutoff, aperture = estimate
            say(f"optics estimated: pupil cut-off {cutoff:.3f} cycles/px, aperture NA/n {aperture:.2f}")
            model = AxialPupilFieldModel(scene.window, cutoff=cutoff, na=aperture, immersion_index=1.0)
            model.estimated_optics = {"cutoff_cycles_per_px": round(cutoff, 4), "aperture_na_over_n": aperture}
    model.initialise_defocus(field_uv(scene.positions, shape), widths)
    return model


def estimate_optics(scene: BeadScene, widths: np.ndarray, guess: float,
                    gain: float | None = None) -> tuple[float, float] | None:
    """Cut-off and aperture ``NA / n`` of the unknown optics, from the sharpest beads.

    The sharpest fifth of the beads (at least 8, at most 40) are closest to an
    in-focus, unaberrated PSF, whose shape depends only on the cut-off (its
    size) and the aperture (the vectorial broadening and filled rings). A
    vectorial pupil without aberrations is fitted to them (fluxes and
    positions only) on a grid of both around ``guess`` (extended, up to
    :data:`OPTICS_GRID_EXTENSIONS` steps, past an end on which the best
    cut-off lies), then on a finer grid around the best pair (cut-off to
    2.5 %), which the full fit keeps. None
    when fewer than 8 beads have a measured width. Starting the full fit from the width alone lets it settle in
    a wrong valley (a pupil too small, with too little defocus) on strongly
    aberrated lenses. Every candidate is scored with the same noise model
    (``gain``: variance per unit signal; by default a photon-counting camera,
    as :func:`.calibrate_from_beads` assumes), so the residuals compare.
    """
    good = np.flatnonzero(np.isfinite(widths))
    if good.size < 8:
        return None
    n_sharp = int(np.clip(round(0.2 * good.size), 8, 40))
    sharp = good[np.argsort(widths[good])[:n_sharp]]
    subset = BeadScene(scene.data, scene.background, scene.read_variance, scene.psf_size, scene.positions[sharp],
                       scene.excluded)
    if gain is None:
        gain = scene.read_variance / max(float(np.median(scene.background)), scene.read_variance)
    def score(cutoff: float, aperture: float) -> float:
        check_cancelled()
        model = PupilFieldModel(scene.window, cutoff=cutoff, na=aperture, immersion_index=1.0)
        return float(np.sum(fit_scene(subset, model, fit_model=False, rounds=2, gain=gain).chi2))

    factors = [f for f in OPTICS_GRID_CUTOFF if 2 * guess * f <= 0.9]
    scores = {(guess * f, a): score(guess * f, a) for f in factors for a in OPTICS_GRID_APERTURE}
    cutoff, aperture = min(scores, key=scores.get)
    # A best cut-off on the grid's edge means the width-based guess was off (a neighbour's light, a slide
    # without in-focus beads): the grid goes on in that direction while the score improves.
    for _ in range(OPTICS_GRID_EXTENSIONS):
        edge = [f for f in factors if np.isclose(guess * f, cutoff)]
        if not edge or edge[0] not in (factors[0], factors[-1]):
            break
        step = factors[1] - factors[0]
        f = factors[-1] + step if edge[0] == factors[-1] else factors[0] - step
        if f <= 0.2 or 2 * guess * f > 0.9:
            break
        factors = sorted({*factors, f})
        scores.update({(guess * f, a): score(guess * f, a) for a in OPTICS_GRID_APERTURE})
        cutoff, aperture = min(scores, key=scores.get)
    step = np.diff(OPTICS_GRID_APERTURE).min() / 2
    fine = [(cutoff * f, float(np.clip(aperture + d, 0.1, 0.97))) for f in (0.95, 0.975, 1.0, 1.025, 1.05)
            for d in (-step, 0.0, step) if 2 * cutoff * f <= 0.9]
    scores.update({candidate: score(*candidate) for candidate in fine if candidate not in scores})
    cutoff, aperture = min(scores, key=scores.get)
    return float(cutoff), float(aperture)


def local_width(scene: BeadScene, position) -> float:
    """Half-energy diameter (:func:`.psf_fwhm`) of the bead image at ``position``, in pixels.

    Measured in the bead's ``psf_size`` window, over the pixels 3 noise
    spreads above the background that lie closer to this bead than to any
    other bead of the scene: on a dense slide, a neighbour's light in the
    window would otherwise make a sharp bead look wide. NaN for a bead whose
    window leaves the image.
    """
    half = scene.psf_size // 2
    y, x = np.round(position).astype(int)
    H, W = scene.data.shape
    if not (half <= y < H - half and half <= x < W - half):
        return float("nan")
    window = (slice(y - half, y + half + 1), slice(x - half, x + half + 1))
    patch = scene.data[window] - scene.background[window]
    keep = patch > 3 * np.sqrt(scene.read_variance)
    rows, cols = np.mgrid[y - half : y + half + 1, x - half : x + half + 1]
    own = (rows - position[0]) ** 2 + (cols - position[1]) ** 2
    others = scene.positions[np.max(np.abs(scene.positions - np.asarray(position)), axis=1) < 2 * half + 1]
    for other in others:
        if not np.allclose(other, position):  # a neighbour: its side of the window is left out
            keep &= own <= (rows - other[0]) ** 2 + (cols - other[1]) ** 2
    return psf_fwhm(np.where(keep, patch, 0))


def ridge(model) -> float:
    return RIDGE if isinstance(model, EmpiricalFieldModel) else 0.0


def choose(trials: list[dict], coverage: float = 1.0) -> tuple[dict, str]:
    """The trial to keep, and why.

    Each trial is a dict with ``name``, ``model`` and ``unexplained`` (the
    held-out beads' unexplained fraction). A pupil model is kept unless the
    best empirical one explains :data:`PUPIL_MARGIN` more of the held-out
    beads' light; among empirical models, the lowest residual wins. When the
    beads' convex hull covers less than :data:`.report.WARN_HULL_FRACTION`
    of the field (``coverage``), the pupil is kept whatever the residuals: the
    held-out beads lie where the beads are, and an empirical model knows
    nothing of the rest of the field (measured on beads in the left 55 % of a
    strongly aberrated lens: PSF correlation 0.18 in the corners, kernels moved
    by up to 7 px).
    """
    if len(trials) == 1:
        return trials[0], "asked for"
    pupil = [t for t in trials if isinstance(t["model"], PupilFieldModel)]
    empirical = sorted((t for t in trials if not isinstance(t["model"], PupilFieldModel)),
                       key=lambda t: t["unexplained"])
    best = empirical[0] if empirical else None
    if pupil and best is not None and coverage < WARN_HULL_FRACTION:
        return pupil[0], (f"the beads cover only {100 * coverage:.0f}% of the field, and only the pupil model "
                          "extrapolates the PSF beyond them the way optics does (held-out beads: "
                          f"{100 * pupil[0]['unexplained']:.1f}% of their light unexplained, "
                          f"{100 * best['unexplained']:.1f}% with the {best['name']} model)")
    if pupil and best is not None:
        difference = pupil[0]["unexplained"] - best["unexplained"]
        if difference <= PUPIL_MARGIN:
            return pupil[0], (f"physics by default: its held-out beads fit about as well as with the {best['name']} "
                              f"model ({100 * pupil[0]['unexplained']:.1f}% against {100 * best['unexplained']:.1f}% "
                              "of their light unexplained), and it extrapolates the PSF beyond the fitted window and "
                              "the beads")
        return best, (f"its held-out beads fit clearly better than with the pupil model "
                      f"({100 * best['unexplained']:.1f}% against {100 * pupil[0]['unexplained']:.1f}% of their light "
                      "unexplained)")
    runner_up = empirical[1] if len(empirical) > 1 else None
    return best, (f"its held-out beads fit best ({100 * best['unexplained']:.1f}% of their light unexplained, "
                  f"{100 * runner_up['unexplained']:.1f}% with the {runner_up['name']} model)" if runner_up else "asked for")


def choose_field_law(trials: list[dict], coverage: float = 1.0) -> tuple[list[dict], str, str | None]:
    """Keep one of the two pupil trials (symmetric laws, free polynomials); say why, and warn where it matters.

    The symmetric laws are kept unless the free polynomials leave
    :data:`AXIAL_MARGIN` less of the held-out beads' light unexplained and
    the beads cover the field. When they do leave that much less on a
    partly covered field, the laws are kept (only they extrapolate), with a
    warning: the lens does not look symmetric, so the uncovered field is
    uncertain.

    Returns
    -------
    trials : list of dict
        ``trials`` without the pupil trial not kept.
    note : str
        Which field law the pupil uses and why (empty without two pupil trials).
    warning : str or None
    """
    laws = [t for t in trials if isinstance(t["model"], PupilFieldModel)]
    if len(laws) < 2:
        return trials, "", None
    axial = next(t for t in laws if isinstance(t["model"], AxialPupilFieldModel))
    free = next(t for t in laws if t is not axial)
    gain = axial["unexplained"] - free["unexplained"]
    figures = (f"held-out beads {100 * axial['unexplained']:.1f}% of their light unexplained with the symmetric "
               f"laws, {100 * free['unexplained']:.1f}% with free field polynomials")
    warning = None
    if gain > AXIAL_MARGIN and coverage >= WARN_HULL_FRACTION:
        keep, note = free, ("; its aberrations are free polynomials of the field position: the lens does not "
                            f"follow the field laws of a rotationally symmetric one ({figures})")
    else:
        keep, note = axial, ("; its aberrations follow the field laws of a rotationally symmetric lens about a "
                             f"fitted axis ({figures})")
        if gain > AXIAL_MARGIN:
            warning = (f"the lens does not look rotationally symmetric where there are beads ({figures}), and the "
                       f"beads cover only {100 * coverage:.0f}% of the field: the PSFs beyond them are extrapolated "
                       "by symmetric laws and may be wrong; image a slide with beads over the whole field")
    kept = [t for t in trials if t is keep or not isinstance(t["model"], PupilFieldModel)]
    return kept, note, warning


def choice_reason(method: str, optics, results) -> str:
    """Why the model was chosen when it was not compared (asked for, or the optics given)."""
    if method == "pupil":
        return "asked for"
    if method == "auto" and optics is not None:
        return "the optics (NA, wavelength, pixel size) were given"
    return "asked for"
