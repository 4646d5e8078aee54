"""Which models a bead calibration tries, and how one is chosen (small hand-made results, no full calibration)."""

import numpy as np
import pytest

from napari_coordgate.psf.beads import model_choice
from napari_coordgate.psf.beads.fit import BeadScene
from napari_coordgate.psf.beads.model_choice import (
    AXIAL_MARGIN, FREE_LAW, FREE_LAW_NAME, PUPIL_MARGIN, choice_reason, choose, choose_field_law, trial_models,
)
from napari_coordgate.psf.beads.report import WARN_HULL_FRACTION
from napari_coordgate.psf.field_models.axial_pupil_field import AxialPupilFieldModel
from napari_coordgate.psf.field_models.empirical_field import EmpiricalFieldModel
from napari_coordgate.psf.field_models.pupil_field import PupilFieldModel
from napari_coordgate.psf.optics.parameters import check_optics

SHAPE = (64, 64)
PSF_SIZE = 11
OPTICS = check_optics(0.8, 520.0, 130.0, None)


def gaussian_kernel(sigma: float = 1.3) -> np.ndarray:
    grid = np.arange(PSF_SIZE) - PSF_SIZE // 2
    kernel = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma**2))
    return kernel / kernel.sum()


def bead_scene(n_beads: int, seed: int = 0) -> BeadScene:
    """``n_beads`` Gaussian beads scattered over a small noisy image."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(8, SHAPE[0] - 9, (n_beads, 2))
    rows, cols = np.indices(SHAPE, dtype=float)
    image = np.full(SHAPE, 100.0)
    for y, x in positions:
        image += 1e4 * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * 1.3**2)) / (2 * np.pi * 1.3**2)
    image = rng.poisson(image).astype(float)
    return BeadScene(image, np.full(SHAPE, 100.0), 100.0, PSF_SIZE, positions, np.zeros(SHAPE, bool))


def names(trials) -> list[str]:
    return [name for name, _ in trials]


# -- trial_models --------------------------------------------------------------------------------------
def test_with_the_optics_auto_tries_the_pupil_laws_only():
    scene = bead_scene(6)
    trials = trial_models("auto", OPTICS, scene, gaussian_kernel(), SHAPE)
    assert names(trials) == ["pupil", FREE_LAW_NAME]
    pupil, free = trials[0][1], trials[1][1]
    assert isinstance(pupil, AxialPupilFieldModel) and free is FREE_LAW
    # The pupil's size is the one the optics give: NA x pixel size / wavelength cycles per pixel.
    assert pupil.cutoff == pytest.approx(0.8 * 130.0 / 520.0)
    assert pupil.window == scene.window


def test_with_the_optics_auto_adds_no_empirical_model_even_with_many_beads():
    scene = bead_scene(130, seed=1)
    trials = trial_models("auto", OPTICS, scene, gaussian_kernel(), SHAPE)
    assert names(trials) == ["pupil", FREE_LAW_NAME]
    assert not any(isinstance(model, EmpiricalFieldModel) for _, model in trials)


def test_without_the_optics_auto_adds_an_empirical_yardstick():
    scene = bead_scene(6, seed=2)  # too few beads to estimate the optics first: fitted with the aberrations
    trials = trial_models("auto", None, scene, gaussian_kernel(), SHAPE)
    assert names(trials) == ["pupil", FREE_LAW_NAME, "empirical (order 1)"]
    assert isinstance(trials[0][1], AxialPupilFieldModel) and trials[1][1] is FREE_LAW
    empirical = trials[2][1]
    assert isinstance(empirical, EmpiricalFieldModel)
    assert (empirical.window, empirical.psf_size, empirical.order) == (scene.window, PSF_SIZE, 1)


def test_pupil_asked_for_tries_no_empirical_model():
    trials = trial_models("pupil", None, bead_scene(6, seed=3), gaussian_kernel(), SHAPE)
    assert names(trials) == ["pupil", FREE_LAW_NAME]


@pytest.mark.parametrize("n_beads, orders", [(5, [1]), (24, [1]), (47, [1]), (48, [1, 2]), (80, [1, 2, 3]),
                                             (130, [1, 2, 3, 4])])
def test_empirical_orders_need_beads_behind_every_term(n_beads, orders):
    """8 beads per polynomial term (order 1: 3 terms, 2: 6, 3: 10, 4: 15); order 1 at least."""
    trials = trial_models("empirical", None, bead_scene(n_beads, seed=n_beads), gaussian_kernel(), SHAPE)
    assert names(trials) == [f"empirical (order {o})" for o in orders]
    assert [model.order for _, model in trials] == orders


@pytest.mark.parametrize("n_beads, order", [(24, 1), (48, 2), (80, 3), (130, 3)])
def test_auto_fits_one_empirical_order_the_richest_up_to_three(n_beads, order, monkeypatch):
    # The pupil entry is not the point here (and estimating the optics takes long): a stand-in.
    monkeypatch.setattr(model_choice, "pupil_model", lambda *args, **kwargs: "pupil model")
    trials = trial_models("auto", None, bead_scene(n_beads, seed=n_beads), gaussian_kernel(), SHAPE)
    assert names(trials) == ["pupil", FREE_LAW_NAME, f"empirical (order {order})"]


# -- choose ------------------------------------------------------------------------------------------------
def pupil_trial(unexplained: float, name: str = "pupil") -> dict:
    return {"name": name, "model": AxialPupilFieldModel(11, cutoff=0.2), "unexplained": unexplained}


def empirical_trial(unexplained: float, order: int = 3) -> dict:
    return {"name": f"empirical (order {order})", "model": EmpiricalFieldModel(11, 7, order, np.ones((7, 7))),
            "unexplained": unexplained}


def test_a_single_trial_is_kept_as_asked_for():
    only = empirical_trial(0.4)
    assert choose([only]) == (only, "asked for")


def test_the_pupil_is_kept_unless_an_empirical_model_is_clearly_better():
    pupil, empirical = pupil_trial(0.10), empirical_trial(0.02)
    chosen, reason = choose([pupil, empirical])
    assert chosen is pupil and "physics by default" in reason and "10.0%" in reason and "2.0%" in reason
    # Just within the margin: still the pupil; just beyond it: the empirical model.
    chosen, _ = choose([pupil_trial(0.02 + PUPIL_MARGIN - 0.01), empirical])
    assert isinstance(chosen["model"], PupilFieldModel)
    worse = pupil_trial(0.02 + PUPIL_MARGIN + 0.01)
    chosen, reason = choose([worse, empirical])
    assert chosen is empirical and "clearly better" in reason


def test_the_pupil_is_judged_against_the_best_empirical_model():
    pupil = pupil_trial(0.30)
    orders = [empirical_trial(0.25, 1), empirical_trial(0.05, 2), empirical_trial(0.15, 3)]
    chosen, reason = choose([pupil, *orders])
    assert chosen is orders[1] and "5.0%" in reason and "30.0%" in reason


def test_a_partly_covered_field_keeps_the_pupil_whatever_the_residuals():
    pupil, empirical = pupil_trial(0.60), empirical_trial(0.01)
    chosen, reason = choose([pupil, empirical], coverage=WARN_HULL_FRACTION - 0.1)
    assert chosen is pupil and f"{100 * (WARN_HULL_FRACTION - 0.1):.0f}% of the field" in reason
    chosen, _ = choose([pupil, empirical], coverage=WARN_HULL_FRACTION)  # covered enough: compared as usual
    assert chosen is empirical


def test_among_empirical_models_the_lowest_residual_wins():
    orders = [empirical_trial(0.08, 1), empirical_trial(0.03, 2), empirical_trial(0.05, 3)]
    chosen, reason = choose(orders)
    assert chosen is orders[1]
    assert "3.0%" in reason and "5.0%" in reason and "empirical (order 3)" in reason


# -- choose_field_law ---------------------------------------------------------------------------------------
def law_trials(axial: float, free: float) -> list[dict]:
    return [pupil_trial(axial), {"name": FREE_LAW_NAME, "model": PupilFieldModel(11, cutoff=0.2), "unexplained": free},
            empirical_trial(0.0)]


def test_without_two_pupil_trials_the_field_law_is_not_chosen():
    trials = [pupil_trial(0.1), empirical_trial(0.05)]
    assert choose_field_law(trials) == (trials, "", None)
    assert choose_field_law(trials[1:]) == (trials[1:], "", None)


def test_the_free_polynomials_need_more_than_the_margin():
    trials = law_trials(0.10, 0.10 - AXIAL_MARGIN + 0.005)
    kept, note, warning = choose_field_law(trials)
    assert kept == [trials[0], trials[2]] and warning is None and "rotationally symmetric lens" in note
    trials = law_trials(0.10, 0.10 - AXIAL_MARGIN - 0.005)
    kept, note, warning = choose_field_law(trials)
    assert kept == [trials[1], trials[2]] and warning is None and "does not follow the field laws" in note


def test_the_laws_are_found_whatever_the_order_of_the_trials():
    axial, free, empirical = law_trials(0.20, 0.02)
    kept, _, _ = choose_field_law([empirical, free, axial])
    assert kept == [empirical, free]


def test_a_partly_covered_field_warns_only_when_the_free_polynomials_were_clearly_better():
    kept, _, warning = choose_field_law(law_trials(0.10, 0.09), coverage=0.3)
    assert kept[0]["name"] == "pupil" and warning is None
    kept, _, warning = choose_field_law(law_trials(0.20, 0.02), coverage=0.3)
    assert kept[0]["name"] == "pupil" and "30%" in warning


# -- choice_reason -----------------------------------------------------------------------------------------
def test_the_reason_names_the_optics_when_given():
    reason = choice_reason("auto", OPTICS, [])
    assert "optics" in reason and "NA" in reason and "wavelength" in reason and "pixel size" in reason
    assert choice_reason("pupil", OPTICS, []) == "asked for"
    assert choice_reason("empirical", None, []) == "asked for"
    assert "optics" not in choice_reason("pupil", None, [])
