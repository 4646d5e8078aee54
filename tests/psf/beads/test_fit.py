"""The bead-scene fit on small scenes rendered with a known model (one PSF for the whole field)."""

import numpy as np
import pytest
import torch

from napari_coordgate.psf.beads.fit import BeadScene, SceneFit, fit_scene
from napari_coordgate.psf.field_models.empirical_field import EmpiricalFieldModel
from napari_coordgate.psf.field_models.polynomials import field_uv

SHAPE = (64, 64)
PSF_SIZE = 11
WINDOW = PSF_SIZE + 4  # the scene's window: the PSF with room to shift
BACKGROUND = 100.0
# Far enough apart that no two windows overlap.
POSITIONS = np.array([[14.3, 15.7], [16.6, 46.2], [32.45, 31.1], [47.8, 14.35], [48.2, 49.55]])
FLUXES = np.array([2e4, 3e4, 4e4, 2.5e4, 5e4])


def gaussian_kernel(sigma: float = 1.3) -> np.ndarray:
    grid = np.arange(PSF_SIZE) - PSF_SIZE // 2
    kernel = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma**2))
    return kernel / kernel.sum()


def true_model() -> EmpiricalFieldModel:
    return EmpiricalFieldModel(WINDOW, PSF_SIZE, 0, gaussian_kernel())


def render(positions, fluxes, seed: int) -> np.ndarray:
    """Background plus each bead as the true model renders it, with Poisson noise."""
    anchors = np.round(positions).astype(int)
    with torch.no_grad():
        kernels = true_model().kernels(torch.as_tensor(field_uv(positions, SHAPE)),
                                       torch.as_tensor(positions - anchors)).numpy()
    image = np.full(SHAPE, BACKGROUND)
    h = WINDOW // 2
    for (y, x), flux, kernel in zip(anchors, fluxes, kernels):
        image[y - h : y + h + 1, x - h : x + h + 1] += flux * kernel
    return np.random.default_rng(seed).poisson(image).astype(float)


def scene_of(image, positions) -> BeadScene:
    return BeadScene(image, np.full(SHAPE, BACKGROUND), BACKGROUND, PSF_SIZE, np.asarray(positions, float),
                     np.zeros(SHAPE, bool))


def start_positions(seed: int = 10) -> np.ndarray:
    """The true positions, off by a few tenths of a pixel (as detection gives them)."""
    return POSITIONS + np.random.default_rng(seed).normal(0, 0.3, POSITIONS.shape)


def parameters(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_the_true_psf_gives_the_positions_and_fluxes():
    scene = scene_of(render(POSITIONS, FLUXES, seed=0), start_positions())
    fit = fit_scene(scene, true_model(), fit_model=False)
    assert np.hypot(*(fit.positions - POSITIONS).T).max() < 0.1
    np.testing.assert_allclose(fit.fluxes, FLUXES, rtol=0.03)
    # The flux errors describe the scatter, the residuals are the noise, and every bead explains its light.
    assert np.all(np.abs(fit.fluxes - FLUXES) < 5 * fit.flux_errors)
    assert np.all(fit.flux_errors < 0.02 * FLUXES)
    assert 0.5 < fit.gain < 1.5  # Poisson counts: variance per unit signal is one (estimated from few pixels)
    np.testing.assert_allclose(fit.chi2 / fit.n_pixels, 1.0, atol=0.3)
    assert np.all(fit.chi2_null > 10 * fit.chi2)
    assert np.all(fit.n_pixels == WINDOW**2)


def test_fitting_the_model_too_keeps_the_positions_and_fluxes():
    scene = scene_of(render(POSITIONS, FLUXES, seed=1), start_positions())
    fit = fit_scene(scene, true_model(), rounds=2, iterations=15)
    assert np.hypot(*(fit.positions - POSITIONS).T).max() < 0.1
    np.testing.assert_allclose(fit.fluxes, FLUXES, rtol=0.03)


def test_fit_model_false_leaves_the_model_unchanged():
    scene = scene_of(render(POSITIONS, FLUXES, seed=2), start_positions())
    model = true_model()
    before = parameters(model)
    fit_scene(scene, model, fit_model=False)
    for old, new in zip(before, parameters(model)):
        np.testing.assert_array_equal(new, old)
    # Fitting it does change it (the noisy beads pull the pixels away from the start).
    fit_scene(scene, model, rounds=2, iterations=10)
    assert max(np.abs(new - old).max() for old, new in zip(before, parameters(model))) > 1e-6


def test_held_out_beads_do_not_enter_the_objective():
    """Whatever lies in a held-out bead's own pixels, the fit of the others and of the model is the same."""
    positions = start_positions()
    clean = render(POSITIONS, FLUXES, seed=3)
    spoiled = clean.copy()
    y, x = np.round(positions[2]).astype(int)
    h = WINDOW // 2
    rng = np.random.default_rng(4)
    spoiled[y - h : y + h + 1, x - h : x + h + 1] = rng.poisson(BACKGROUND, (WINDOW, WINDOW))
    spoiled[y - 1 : y + 2, x + 1 : x + 4] += 3e3  # a different object, about as bright
    held_out = np.zeros(len(positions), bool)
    held_out[2] = True

    def fit(image, fitted):
        model = true_model()
        found = fit_scene(scene_of(image, positions), model, fitted=fitted, rounds=2, iterations=10)
        return found, parameters(model)

    a, model_a = fit(clean, ~held_out)
    b, model_b = fit(spoiled, ~held_out)
    np.testing.assert_allclose(b.positions[~held_out], a.positions[~held_out], rtol=0, atol=1e-9)
    np.testing.assert_allclose(b.fluxes[~held_out], a.fluxes[~held_out], rtol=1e-9)
    for pa, pb in zip(model_a, model_b):
        np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-12)
    assert a.gain == pytest.approx(b.gain, rel=1e-9) and a.loss == pytest.approx(b.loss, rel=1e-9)
    assert b.n_pixels[2] == 0 and np.all(b.n_pixels[~held_out] == WINDOW**2)
    # With the bead fitted, its spoiled pixels do change the model: the comparison above can fail.
    _, model_c = fit(spoiled, np.ones(len(positions), bool))
    assert max(np.abs(pc - pa).max() for pa, pc in zip(model_a, model_c)) > 1e-4


def test_a_held_out_beads_light_still_falls_on_its_neighbour():
    """A held-out bead is rendered: its light in a fitted neighbour's window is not taken for the neighbour's."""
    pair = np.array([[30.3, 28.6], [31.1, 35.4]])  # 6.8 px apart: each lies in the other's window
    fluxes = np.array([3e4, 3e4])
    scene = scene_of(render(pair, fluxes, seed=5), pair)
    fitted = np.array([True, False])
    start = SceneFit(pair + np.array([[0.2, -0.2], [0.0, 0.0]]), fluxes.copy(), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2, int), 1.0, 0.0)
    fit = fit_scene(scene, true_model(), fitted=fitted, free=fitted, fit_model=False, start=start)
    assert np.hypot(*(fit.positions[0] - pair[0])) < 0.1
    assert fit.fluxes[0] == pytest.approx(fluxes[0], rel=0.03)
    np.testing.assert_allclose(fit.positions[1], pair[1], atol=1e-9)  # not free: left where it started
    assert fit.fluxes[1] == pytest.approx(fluxes[1])


def test_select_keeps_the_chosen_beads_rows():
    n = 5
    fit = SceneFit(positions=np.arange(2 * n, dtype=float).reshape(n, 2), fluxes=np.arange(n) + 10.0,
                   flux_errors=np.arange(n) + 20.0, chi2=np.arange(n) + 30.0, chi2_null=np.arange(n) + 40.0,
                   n_pixels=np.arange(n) + 50, gain=1.5, loss=0.7)
    for which, rows in ((np.array([True, False, True, False, True]), [0, 2, 4]), (np.array([3, 1]), [3, 1])):
        part = fit.select(which)
        np.testing.assert_array_equal(part.positions, fit.positions[rows])
        np.testing.assert_array_equal(part.fluxes, fit.fluxes[rows])
        np.testing.assert_array_equal(part.flux_errors, fit.flux_errors[rows])
        np.testing.assert_array_equal(part.chi2, fit.chi2[rows])
        np.testing.assert_array_equal(part.chi2_null, fit.chi2_null[rows])
        np.testing.assert_array_equal(part.n_pixels, fit.n_pixels[rows])
        assert part.gain == 1.5 and part.loss == 0.7
