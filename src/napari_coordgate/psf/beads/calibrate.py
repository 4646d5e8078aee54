"""calibrate_from_beads: fit a smooth model of the instrument's PSF field to a bead-slide image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...cancellation import cancellable
from .detection import BeadCandidates, detect_beads
from .fit import BeadScene, SceneFit, fit_scene
from .nodes import bead_widths, calibrate_nodes, saturation_level
from .report import MAX_UNEXPLAINED, check_bead_count, check_spread, held_out_report, unexplained_fraction
from .subset import spread_subset
from ..centroid import centre_on_centroid
from .centroid_check import check_centroids
from ..field_models.empirical_field import EmpiricalFieldModel
from ..field_models.sampling import aberration_summary, default_grid, sample_field
from ..fit_threads import with_calibration_threads
from .halo_background import background_under_beads
from ..image_checks import as_real_image, checked_psf_size
from ..field_models.agreement import INDISTINGUISHABLE, compare_fields, disagreement_warning
from .model_choice import FREE_LAW, choice_reason, choose, choose_field_law, ridge, trial_models
from ...validation import int_pair, integer, number
from ..optics.parameters import check_optics
from ..psf_field import PSFField
from ..field_models.pupil_field import PupilFieldModel

__all__ = ["calibrate_from_beads", "METHODS"]

#: Field models ``calibrate_from_beads`` offers.
METHODS = ("auto", "pupil", "empirical", "nodes")
#: Fraction of the usable beads held out to judge the models.
_HELD_OUT = 0.2
#: Kernel size in widths (95th percentile) of the widest beads: an aberrated PSF keeps a good
#: part of its energy in rings and one-sided (comatic) tails well beyond its width.
_SIZE_PER_WIDTH = 5.0
#: Rounds of a fit that starts from a converged one on the same beads, or nearly (at least, at most;
#: :func:`.fit.fit_scene`): the free field polynomials after the symmetric laws, the refit after dropping misfits.
_WARM_ROUNDS = {"rounds": 2, "max_rounds": 3}
#: A pupil model's sampled kernels grow until they hold 98 % of the PSF's energy, up to this many times the
#: fitted size (plus one); a deep bead in a mismatched medium has a halo that needs 3.5x (the psfmodels
#: ``tilted_depth`` lens: 97 px for a 27 px fit).
_LARGEST_PER_FIT = 4
#: A bead whose brightest pixel holds more than this of its 3x3 light is a hot pixel.
_HOT_PIXEL_FRACTION = 0.6
#: Share of its own light a misfit bead must leave unexplained to be rejected as a blend or debris.
_BLEND_UNEXPLAINED = 0.25
#: From this NA on, a pupil model without the immersion index (scalar, paraxial defocus) is warned about.
_VECTORIAL_NA = 0.7
#: On a slide with more usable beads than this (a whole sensor's), the field models are fitted and compared
#: on this many beads spread over the field (:func:`.subset.spread_subset`); every bead then enters
#: the final fit, which starts from the chosen model. A few hundred beads pin down a pupil model's
#: field laws; each fit costs in proportion to the beads it renders.
TRIAL_BEADS = 400


@cancellable
@with_calibration_threads
def calibrate_from_beads(
    image: np.ndarray,
    *,
    method: str = "auto",
    na: float | None = None,
    wavelength_nm: float | None = None,
    pixel_size_nm: float | None = None,
    immersion_index: float | None = None,
    psf_size: int | None = None,
    grid: tuple[int, int] | None = None,
    bead_size_px: float = 1.0,
    min_snr: float = 10.0,
    saturation: float | None = None,
    min_separation: float | None = None,
    report: Callable[[str], None] | None = None,
) -> PSFField:
    """Measure a PSF field by fitting a smooth field model to every usable bead of a bead slide.

    Beads are detected (:func:`.detection.detect_beads`), then the
    whole image is fitted at once (:func:`.fit.fit_scene`): each bead
    is the model's PSF at its sub-pixel position times a flux, over a
    smooth background, with noise weights. Beads clipped by the image edge
    keep their visible pixels, overlapping neighbours are fitted together,
    and dim, wide beads count with the weight their photons give them. Only
    saturated beads, hot pixels, beads too faint to measure (``min_snr``)
    and beads the model cannot fit (blends, debris) are rejected.

    Field models (``method``):

    - ``"pupil"``: a pupil function whose Zernike-type aberrations are
      low-order polynomials of the field position
      (:class:`.PupilFieldModel`): it extrapolates to the corners the way
      optics does. Uses ``na``, ``wavelength_nm``, ``pixel_size_nm`` and
      ``immersion_index`` when given; otherwise it fits the pupil size.
      With the immersion index the pupil is vectorial (high-NA imaging of
      an isotropic emitter); without it, scalar with paraxial defocus.
    - ``"empirical"``: for unknown optics, PSF pixels that are polynomials
      of the field position (:class:`.EmpiricalFieldModel`), the order
      chosen by held-out beads.
    - ``"nodes"``: the per-node bead average (:func:`.nodes.calibrate_nodes`).
    - ``"auto"``: ``"pupil"`` when the optics are given; otherwise both
      fitted models, keeping the one whose held-out beads fit better.

    A fifth of the beads is held out of each fit; the model's residual on
    them is the calibration's report card. Every PSF returned is centred on
    its intensity centroid (see :mod:`~napari_coordgate.psf.centroid`).

    Parameters
    ----------
    image : (H, W) array_like
        Bead-slide image (raw camera values; any real dtype).
    method : {"auto", "pupil", "empirical", "nodes"}
        Field model, see above.
    na, wavelength_nm, pixel_size_nm : float, optional
        Numerical aperture, emission wavelength and object-plane pixel size
        (all three, or none).
    immersion_index : float, optional
        Refractive index of the immersion medium (uses the high-NA defocus).
    psf_size : int, optional
        Odd kernel size of the fit and of the returned field. By default the
        fit uses 5 times the 95th percentile of the bead widths
        (:func:`.psf_fwhm`), between 9 and half the image, and the pupil
        model's returned kernels grow (up to twice that) until each holds
        98 % of its PSF's energy.
    grid : (gy, gx), optional
        Grid on which the fitted model is sampled. By default cells of
        about 32 pixels, 4 to 16 along each side.
    bead_size_px : float
        Bead diameter in pixels (finest detection scale).
    min_snr : float
        Smallest accepted flux significance (flux over its standard error).
    saturation : float, optional
        Pixel value at or above which a bead counts as saturated (default:
        the maximum of an integer dtype, or a clipped plateau of a float image).
    min_separation : float, optional
        Only for ``method="nodes"``.
    report : callable, optional
        Called with progress messages as the work goes (stages, and each
        round of each fit with its objective and the time so far).
    cancel : threading.Event, optional
        Set it (from another thread) to stop the calibration: it raises
        :class:`~napari_coordgate.cancellation.Cancelled` within about a
        second (at the next evaluation of a fit's objective).

    Returns
    -------
    PSFField
        ``kind="beads"``. ``metadata`` holds ``method`` and
        ``method_reason``, ``n_detected``, ``n_used``, ``rejected`` (counts
        by reason), ``beads`` (used ``(y, x)`` centroids), ``rejected_beads``
        (``[y, x, reason]``), ``held_out`` (unexplained fraction overall and
        by region), ``coverage``, ``warnings``, ``optics``, ``fwhm_map_px``
        and, for the pupil model, ``aberrations`` (waves at the centre and
        the corner).

    Raises
    ------
    ValueError
        For an unusable image or arguments, no beads, only saturated beads
        or hot pixels, too few or badly spread beads, or a model that
        cannot explain its held-out beads; each message says what slide
        would fix it.
    ~napari_coordgate.cancellation.Cancelled
        When ``cancel`` was set.
    """
    say = report or (lambda message: None)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    optics = check_optics(na, wavelength_nm, pixel_size_nm, immersion_index)
    min_snr = number("min_snr", min_snr, low=0, low_open=True)
    bead_size_px = number("bead_size_px", bead_size_px, low=0, high=50, low_open=True)
    if psf_size is not None:
        psf_size = integer("psf_size", psf_size, low=3)
    if saturation is not None:
        saturation = number("saturation", saturation)
    if min_separation is not None:
        min_separation = number("min_separation", min_separation, low=0, low_open=True)
    raw = np.asarray(image)
    data = as_real_image(raw, "bead")
    grid = _check_grid(grid, data.shape)
    if method == "nodes":
        field = calibrate_nodes(raw, psf_size=psf_size, bead_size_px=bead_size_px, grid=grid, min_snr=min_snr,
                                saturation=saturation, min_separation=min_separation, report=report)
        field.metadata.update(method="nodes", method_reason="asked for", optics=optics, warnings=[])
        return field
    calibration = _BeadCalibration(data, method, optics, psf_size, grid, min_snr, bead_size_px, say, report)
    calibration.detect(raw, saturation)
    calibration.first_fit()
    calibration.choose_model()
    calibration.final_fit()
    return calibration.field()


class _BeadCalibration:
    """The stages of :func:`calibrate_from_beads`, in order; each leaves what the next needs on the object."""

    def __init__(self, data: np.ndarray, method: str, optics: dict | None, psf_size: int | None, grid, min_snr: float,
                 bead_size_px: float, say: Callable[[str], None], report: Callable[[str], None] | None) -> None:
        self.data, self.method, self.optics, self.psf_size, self.grid = data, method, optics, psf_size, grid
        self.min_snr, self.bead_size_px, self.say, self.report = min_snr, bead_size_px, say, report

    def detect(self, raw: np.ndarray, saturation: float | None) -> None:
        """Find the beads; set aside the saturated ones and hot pixels; choose the fit window."""
        data, psf_size, min_snr, bead_size_px, say = self.data, self.psf_size, self.min_snr, self.bead_size_px, self.say
        level = saturation_level(raw, saturation)
        if data.max() == data.min():
            if (saturation is not None or np.issubdtype(raw.dtype, np.integer)) and data.max() >= level:
                raise ValueError(f"the bead image is saturated: every pixel is at {level:g}; use a shorter exposure "
                                 "or less light")
            raise ValueError("the bead image is constant (no beads, no noise): check the exposure and the camera")

        say("detecting beads")
        found = detect_beads(data, bead_size_px=bead_size_px)
        if len(found) == 0:
            if level is not None and np.mean(data >= level) > 0.5:
                raise ValueError(f"the bead image is saturated (most pixels at {level:g}): use a shorter exposure")
            raise ValueError("no beads found in the image: nothing stands out of the background noise")
        reasons = np.full(len(found), "", dtype=object)
        saturated = found.peak_values >= level if level is not None else np.zeros(len(found), bool)
        if saturated.all():
            raise ValueError(
                f"all {len(found)} beads found are saturated (pixel values at or above {level:g}); "
                "image the slide with a shorter exposure or less light"
            )
        reasons[saturated] = "saturated"
        hot = _hot_pixels(data, found) & ~saturated
        reasons[hot] = "hot pixel"
        if hot.sum() > 0.5 * len(found):
            raise ValueError(
                f"{int(hot.sum())} of the {len(found)} bright spots are single hot pixels, not beads: "
                "a bead's image spreads over several pixels; this looks like a dark frame or a camera defect map"
            )
        k = _psf_size(psf_size, found, ~saturated & ~hot & (found.snr >= min_snr), data)
        candidates = np.flatnonzero(reasons == "")
        say(f"{len(found)} beads detected; each fitted in a {k} px window")
        check_bead_count(len(candidates), _counts(reasons))

        self.level, self.found, self.reasons, self.candidates, self.k = level, found, reasons, candidates, k

    def first_fit(self) -> None:
        """One PSF shared by every bead: starting positions and fluxes; faint beads and blends rejected."""
        data, found, reasons, candidates, k = self.data, self.found, self.reasons, self.candidates, self.k
        min_snr, say = self.min_snr, self.say
        excluded = _exclusion_mask(data.shape, found.centres[reasons != ""], k)
        scene = BeadScene(data, found.background, max(found.noise_sigma, 1e-6) ** 2, k,
                          found.centres[candidates], excluded)
        say(f"fitting {len(candidates)} beads")
        start_kernel = _start_kernel(scene, found.snr[candidates])
        # One noise model for every fit, so the models' held-out residuals compare: a photon-counting
        # camera whose background variance is its level (an offset camera gets bright pixels
        # weighted a little more than their noise says).
        gain = scene.read_variance / max(float(np.median(found.background)), scene.read_variance)
        first = fit_scene(scene, EmpiricalFieldModel(scene.window, k, 0, start_kernel), rounds=3, iterations=15, gain=gain,
                          max_rounds=3, report=self.report)

        # Reject what the first fit cannot use: beads too faint to measure, blends and debris.
        significance = first.fluxes / first.flux_errors
        misfit = _misfits(first, np.ones(len(candidates), bool), tolerance=20.0)  # blends: one PSF cannot fit them
        faint = significance < min_snr
        reasons[candidates[faint]] = "faint"
        reasons[candidates[misfit & ~faint]] = "inconsistent"
        keep = ~faint & ~misfit
        check_bead_count(int(keep.sum()), _counts(reasons))
        positions = first.positions[keep]
        coverage, warnings = check_spread(positions, data.shape)
        if keep.sum() < len(candidates):
            say(f"{int(faint.sum())} faint and {int((misfit & ~faint).sum())} inconsistent beads dropped")
        scene = BeadScene(data, scene.background, scene.read_variance, k, positions,
                          excluded | _exclusion_mask(data.shape, first.positions[~keep], k, core_only=True))
        start = first.select(keep)

        self.scene, self.start, self.start_kernel, self.gain = scene, start, start_kernel, gain
        self.keep, self.positions, self.significance = keep, positions, significance[keep]
        self.coverage, self.warnings = coverage, warnings

    def choose_model(self) -> None:
        """Fit each field model with a fifth of the beads held out, and keep the one they favour."""
        data, k, method, optics, say, report = self.data, self.k, self.method, self.optics, self.say, self.report
        scene, start, positions, gain, start_kernel = self.scene, self.start, self.positions, self.gain, self.start_kernel
        coverage, warnings = self.coverage, self.warnings
        # The models are fitted and compared on every bead, or on a subset spread over the field of a slide with
        # many; the beads outside the subset stay out of those fits (their cores excluded, as for misfits).
        trial_scene, trial_start = scene, start
        subset = spread_subset(positions, self.significance, data.shape, TRIAL_BEADS)
        if not subset.all():
            say(f"choosing the field model on {int(subset.sum())} of the {len(positions)} beads, spread over the field")
            trial_scene = BeadScene(data, scene.background, scene.read_variance, k, positions[subset],
                                    scene.excluded | _exclusion_mask(data.shape, positions[~subset], k, core_only=True))
            trial_start = start.select(subset)
        n_trial = len(trial_scene.positions)
        held_out = np.zeros(n_trial, bool)
        held_out[np.random.default_rng(0).permutation(n_trial)[: max(3, int(round(_HELD_OUT * n_trial)))]] = True
        results = []
        for name, model in trial_models(method, optics, trial_scene, start_kernel, data.shape, gain, report):
            begin, rounds = trial_start, {}
            if model is FREE_LAW:  # the symmetric pupil just fitted, its field polynomials set free: a short refinement
                model, begin, rounds = results[-1]["model"].free_law(), results[-1]["fit"], _WARM_ROUNDS
            say(f"fitting the {name} model")
            fit = fit_scene(trial_scene, model, fitted=~held_out, free=~held_out, start=begin, regularisation=ridge(model),
                            gain=gain, report=report, **rounds)
            check = fit_scene(trial_scene, model, fitted=held_out, free=held_out, fit_model=False, start=fit, gain=gain,
                              rounds=2)
            unexplained = unexplained_fraction(check.chi2[held_out], check.chi2_null[held_out], check.n_pixels[held_out])
            results.append({"name": name, "model": model, "fit": fit, "check": check,
                            "unexplained": unexplained if unexplained is not None else 0.0})
            say(f"{name}: held-out beads {100 * results[-1]['unexplained']:.1f}% of their light unexplained")
        trials, law_note, law_warning = choose_field_law(results, coverage)
        if law_warning:
            warnings.append(law_warning)
        chosen, compared_reason = choose(trials, coverage)
        name, model, fit, check = chosen["name"], chosen["model"], chosen["fit"], chosen["check"]
        method_reason = compared_reason if method == "auto" and optics is None else choice_reason(method, optics, trials)
        if isinstance(model, PupilFieldModel):
            name = "pupil"
            method_reason += law_note
        if method == "auto" and optics is None and not isinstance(model, PupilFieldModel):
            warnings.append(
                "no optics were given and the pupil model fitted without them explained the held-out beads clearly "
                "worse, so the empirical model was used: it knows the PSF only where there are beads "
                "and only inside the fitted window; give the NA, emission wavelength and pixel size to use the pupil "
                "model, which models the whole PSF and extrapolates it the way optics does"
            )
        if optics is not None and optics["immersion_index"] is None and optics["na"] >= _VECTORIAL_NA and isinstance(model, PupilFieldModel):
            warnings.append(
                f"no immersion index was given, so a scalar pupil with paraxial defocus was used; at NA {optics['na']:g} "
                "give the immersion index (1.0 air, 1.333 water, 1.518 oil) to use the vectorial high-NA model"
            )
        say(f"using the {name} model: {method_reason}")
        held = held_out_report(check.positions[held_out], check.chi2[held_out], check.chi2_null[held_out],
                               check.n_pixels[held_out], data.shape)
        unexplained = held["unexplained_fraction"]
        if unexplained is not None and unexplained > MAX_UNEXPLAINED:
            raise ValueError(
                f"the PSF model cannot explain the held-out beads: {100 * unexplained:.0f}% of their light is left "
                f"unexplained ({MAX_UNEXPLAINED:.0%} allowed); the image may hold debris, aggregates or a non-uniform "
                "background rather than isolated sub-resolution beads: image a clean bead slide"
            )
        self.subset, self.held_out, self.results, self.trials = subset, held_out, results, trials
        self.name, self.model, self.fit, self.check = name, model, fit, check
        self.method_reason, self.held, self.unexplained = method_reason, held, unexplained

    def final_fit(self) -> None:
        """The chosen model fitted to every bead (after its background is re-estimated, for a pupil)."""
        data, k, psf_size, say, report = self.data, self.k, self.psf_size, self.say, self.report
        scene, start, gain, reasons, candidates, keep = (self.scene, self.start, self.gain, self.reasons,
                                                         self.candidates, self.keep)
        subset, name, model, fit, check = self.subset, self.name, self.model, self.fit, self.check
        cap = min(data.shape) // 2
        widest = min(_LARGEST_PER_FIT * k + 1, cap - 1 + cap % 2)
        largest = None if psf_size else widest
        if subset.all():
            every = fit
        else:
            # Every bead under the chosen model as it stands; the beads it cannot fit go before the final fit.
            say(f"fitting all {len(scene.positions)} beads under the {name} model")
            every = fit_scene(scene, model, fit_model=False, start=start, gain=gain, rounds=2)
            scene, every = _without_misfits(scene, every, reasons, candidates[keep], name, say)
        if isinstance(model, PupilFieldModel):
            # The beads' tails add up to a veil that the detection's tile medians took for background.
            say("estimating the background under the beads' modelled light")
            light = check if subset.all() else every
            scene = BeadScene(data, background_under_beads(data, model, light.positions, light.fluxes, widest),
                              scene.read_variance, k, scene.positions, scene.excluded)
        say(f"fitting the {name} model to all {len(scene.positions)} beads")
        # Full rounds: the fifth of the beads held out so far moves the model (with two rounds at most, the far
        # corners of a half-field slide moved 0.95 px instead of 0.61 px). After a subset, the model has seen
        # beads all over the field: a short refinement.
        final = fit_scene(scene, model, start=every, regularisation=ridge(model), gain=gain, report=report,
                          **({} if subset.all() else _WARM_ROUNDS))
        if subset.all():
            # Beads the chosen model cannot fit (blends, debris, dust) go, and the model is fitted again.
            refit, final = _without_misfits(scene, final, reasons, candidates[keep], name, say)
            if refit is not scene:
                scene = refit
                final = fit_scene(scene, model, start=final, regularisation=ridge(model), gain=gain, report=report,
                                  **_WARM_ROUNDS)

        self.scene, self.final, self.cap, self.largest = scene, final, cap, largest

    def field(self) -> PSFField:
        """The model sampled on the grid, with the calibration's report in its metadata."""
        data, k, grid, found, reasons, say = self.data, self.k, self.grid, self.found, self.reasons, self.say
        trials, results, name, model, final, scene = (self.trials, self.results, self.name, self.model, self.final,
                                                      self.scene)
        warnings, coverage, held, unexplained = self.warnings, self.coverage, self.held, self.unexplained
        method_reason, optics, level, cap, largest = self.method_reason, self.optics, self.level, self.cap, self.largest
        min_snr, bead_size_px = self.min_snr, self.bead_size_px
        grid_shape = grid or default_grid(data.shape)
        say(f"sampling the PSF field on a {grid_shape[0]} x {grid_shape[1]} grid")
        psfs = sample_field(model, data.shape, grid_shape, k, largest=largest)
        agreement = _agreement(trials, data.shape, grid_shape, k)
        if agreement is not None:
            say(f"pupil and empirical models: PSFs moved by {agreement['shift_px_median']:.2f} px (median), shape "
                f"correlation {agreement['correlation_median']:.3f}")
            if agreement.get("warning"):
                warnings.append(agreement.pop("warning"))
        used = final.positions
        rejected_beads = [[float(y), float(x), str(r)] for (y, x), r in zip(found.centres, reasons) if r]
        metadata = {
            "method": name,
            "method_reason": method_reason,
            "models_compared": {r["name"]: round(float(r["unexplained"]), 4) for r in results},
            "model_agreement": agreement,
            "n_detected": len(found),
            "n_used": int(len(used)),
            "rejected": _counts(reasons),
            "beads": used.tolist(),
            "rejected_beads": rejected_beads,
            "held_out": held,
            "coverage": coverage,
            "warnings": warnings,
            "optics": optics,
            "fit_psf_size": k,
            "grid": "given" if grid else "automatic",
            "min_snr": float(min_snr),
            "bead_size_px": float(bead_size_px),
            "saturation_level": level,
            "noise_sigma": found.noise_sigma,
            "noise_gain": final.gain,
        }
        if isinstance(model, PupilFieldModel):
            metadata["aberrations"] = aberration_summary(model, data.shape)
            metadata["pupil_model"] = model.describe()
        else:
            metadata["empirical_order"] = model.order
        field = PSFField(psfs, data.shape, kind="beads", metadata=metadata)
        field.metadata["fwhm_map_px"] = field.fwhm_map().tolist()
        field.metadata["psf_size"] = field.psf_size
        say("checking that the calibrated PSFs put each bead's light where it is")
        window = min(2 * k + 1, cap - 1 + cap % 2)
        unmodelled = np.array([[y, x] for y, x, _ in rejected_beads]).reshape(-1, 2)
        centroids = check_centroids(data, field, final.positions, final.fluxes, final.fluxes / final.flux_errors,
                                    read_variance=scene.read_variance, gain=final.gain, window=window,
                                    unmodelled=unmodelled)
        # A diagnostic only, not a warning: on dense slides of strongly aberrated lenses the neighbours' light and
        # the wide windows' noise give 3-7 px in regions where the PSFs lie within 0.3-0.7 px of the truth
        # (docs/calibration.md, step 7).
        field.metadata["centroid_check"] = centroids
        for warning in warnings:
            say(f"warning: {warning}")
        say(f"{len(used)} beads used; held-out unexplained fraction {unexplained if unexplained is not None else float('nan'):.3f}; "
            f"PSF kernels {field.psf_size} px")
        return field




def _agreement(results: list[dict], shape, grid_shape, k: int) -> dict | None:
    """How far the pupil and the best empirical model agree, when the held-out beads cannot tell them apart.

    None unless both were fitted and their held-out figures lie within
    :data:`~napari_coordgate.psf.field_models.agreement.INDISTINGUISHABLE` of each other; a ``"warning"`` entry
    is added when they disagree (:func:`~napari_coordgate.psf.field_models.agreement.disagreement_warning`).
    """
    pupil = [r for r in results if isinstance(r["model"], PupilFieldModel)]
    empirical = sorted((r for r in results if not isinstance(r["model"], PupilFieldModel)), key=lambda r: r["unexplained"])
    if not pupil or not empirical or abs(pupil[0]["unexplained"] - empirical[0]["unexplained"]) > INDISTINGUISHABLE:
        return None
    pupil, empirical = pupil[0], empirical[0]
    # Both in the fitted window, where the held-out residuals were measured: an empirical kernel knows nothing
    # beyond it, so comparing it with the pupil's whole PSF would only show that.
    agreement = compare_fields(sample_field(pupil["model"], shape, grid_shape, k),
                               sample_field(empirical["model"], shape, grid_shape, k))
    warning = disagreement_warning(agreement, (pupil["name"], empirical["name"]),
                                   (pupil["unexplained"], empirical["unexplained"]))
    return {**agreement, "models": [pupil["name"], empirical["name"]], **({"warning": warning} if warning else {})}


# ----------------------------------------------------------------------------- checks
def _check_grid(grid, shape) -> tuple[int, int] | None:
    if grid is None:
        return None
    grid = int_pair("grid", grid, low=1)
    if grid[0] > shape[0] or grid[1] > shape[1]:
        raise ValueError(f"grid {grid} has more cells than the image of shape {shape} has pixels")
    return grid


def _without_misfits(scene: BeadScene, fit: SceneFit, reasons: np.ndarray, index: np.ndarray, name: str,
                     say: Callable[[str], None]) -> tuple[BeadScene, SceneFit]:
    """``scene`` and ``fit`` without the beads the model cannot fit (blends, debris, dust), marked in ``reasons``
    (``index``: each of the scene's beads' place there); both unchanged when there are none, or too many to drop."""
    bad = _misfits(fit, np.ones(len(scene.positions), bool), tolerance=8.0, unexplained=_BLEND_UNEXPLAINED)
    if not bad.any() or (~bad).sum() < len(bad) // 2:
        return scene, fit
    reasons[index[bad]] = "inconsistent"
    say(f"{int(bad.sum())} beads the {name} model cannot fit dropped (blends or debris)")
    scene = BeadScene(scene.data, scene.background, scene.read_variance, scene.psf_size, fit.positions[~bad],
                      scene.excluded | _exclusion_mask(scene.data.shape, fit.positions[bad], scene.psf_size,
                                                       core_only=True))
    return scene, fit.select(~bad)


def _counts(reasons: np.ndarray) -> dict:
    return {r: int(np.sum(reasons == r)) for r in ("saturated", "hot pixel", "faint", "inconsistent")}


def _misfits(fit: SceneFit, among: np.ndarray, tolerance: float, unexplained: float = 0.0) -> np.ndarray:
    """Beads whose residual per pixel lies ``tolerance`` robust spreads above the median.

    With ``unexplained > 0`` a bead must also leave more than that fraction
    of its own light unexplained: a bright bead that the model fits to a few
    per cent (a strongly aberrated corner bead) has a large residual too,
    but it is the bead that carries the corner's information, not a blend.
    """
    per_pixel = fit.chi2 / np.maximum(fit.n_pixels, 1)
    typical = np.median(per_pixel[among])
    spread = max(1.4826 * np.median(np.abs(per_pixel[among] - typical)), 0.05 * typical)
    outlier = among & (per_pixel > typical + tolerance * spread)
    if unexplained > 0:
        share = (fit.chi2 - fit.n_pixels) / np.maximum(fit.chi2_null - fit.n_pixels, 1e-9)
        outlier &= share > unexplained
    return outlier


def _hot_pixels(data: np.ndarray, found: BeadCandidates) -> np.ndarray:
    """Detections whose light sits in a single pixel (camera defects, cosmic rays)."""
    hot = np.zeros(len(found), bool)
    H, W = data.shape
    for i, (y, x) in enumerate(np.round(found.centres).astype(int)):
        y0, y1, x0, x1 = max(y - 2, 0), min(y + 3, H), max(x - 2, 0), min(x + 3, W)
        window = data[y0:y1, x0:x1] - found.background[y0:y1, x0:x1]
        total = np.clip(window, 0, None).sum()
        hot[i] = total > 0 and window.max() > _HOT_PIXEL_FRACTION * total
    return hot


# ------------------------------------------------------------------------ set-up
def _psf_size(psf_size: int | None, found: BeadCandidates, good: np.ndarray, data: np.ndarray) -> int:
    cap = min(data.shape) // 2
    cap = max(cap - 1 + cap % 2, 3)
    if psf_size is not None:
        return checked_psf_size(psf_size, cap, data.shape)
    widths = bead_widths(found, good, data, cap)
    spread = 1.4826 * np.median(np.abs(widths - np.median(widths)))
    widths = widths[widths <= np.median(widths) + 5 * max(spread, 0.1 * np.median(widths))]
    size = int(np.ceil(_SIZE_PER_WIDTH * np.percentile(widths, 95)))
    return int(np.clip(size + 1 - size % 2, 9, cap))


def _exclusion_mask(shape, centres: np.ndarray, k: int, core_only: bool = False) -> np.ndarray:
    """Pixels near the given beads (their whole window, or their core), left out of the fit."""
    mask = np.zeros(shape, bool)
    half = max(2, k // 6) if core_only else k // 2 + 2
    for y, x in np.round(centres).astype(int):
        mask[max(y - half, 0) : y + half + 1, max(x - half, 0) : x + half + 1] = True
    return mask


def _start_kernel(scene: BeadScene, snr: np.ndarray) -> np.ndarray:
    """Mean centred patch of the brightest beads lying wholly inside the image."""
    k, half = scene.psf_size, scene.psf_size // 2
    H, W = scene.data.shape
    residual = scene.data - scene.background
    patches = []
    for index in np.argsort(-snr):
        y, x = np.round(scene.positions[index]).astype(int)
        if half <= y < H - half and half <= x < W - half:
            patch = np.clip(residual[y - half : y + half + 1, x - half : x + half + 1], 0, None)
            if patch.sum() > 0:
                patches.append(centre_on_centroid(patch / patch.sum()))
        if len(patches) == 20:
            break
    if not patches:
        yy, xx = np.indices((k, k)) - half
        return np.exp(-(yy**2 + xx**2) / 4.0)
    return np.mean(patches, axis=0)


