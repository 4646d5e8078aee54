"""Calibration from bead slides, and the errors users will meet (pairs: test_pair_calibration.py)."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from _psf_checks import central, pearson
from napari_coordgate.psf import calibrate_from_beads, render_bead_target, simulate_lens
from napari_coordgate.psf.beads.fit import BeadScene, fit_scene
from napari_coordgate.psf.centroid import centre_on_centroid, centroid_offset, robust_centroid
from napari_coordgate.psf.field_models.empirical_field import EmpiricalFieldModel
from napari_coordgate.psf.kernels import psf_fwhm
from napari_coordgate.psf.field_models.polynomials import field_uv
from napari_coordgate.psf.optics.pupil import pupil_psf
from napari_coordgate.psf.beads.model_choice import local_width
from napari_coordgate.psf.field_models.pupil_field import ABERRATIONS, PupilFieldModel

OPTICS = dict(na=0.8, wavelength_nm=520.0, pixel_size_nm=130.0)


def correlations_at(measured, truth, points) -> np.ndarray:
    """Correlation of the two fields' PSFs at field points, both centred on their centroids."""
    size = min(measured.psf_size, truth.psf_size)
    return np.array([pearson(central(measured.psf_at(y, x), size), central(centre_on_centroid(truth.psf_at(y, x)), size))
                     for y, x in points])


def assert_recovers_the_lens(field, lens, true_positions) -> None:
    """The beads used sit where the true beads are, and the PSFs match the lens inside and in the corners."""
    distance, _ = cKDTree(true_positions).query(np.array(field.metadata["beads"]))
    assert np.median(distance) < 0.5
    H, W = field.field_shape
    corners = [(4, 4), (4, W - 5), (H - 5, 4), (H - 5, W - 5)]
    inner = [(y, x) for y in (40, 96, 150) for x in (40, 96, 150)]
    assert np.median(correlations_at(field, lens, inner)) >= 0.95
    assert correlations_at(field, lens, corners).min() >= 0.8  # measured 0.82-0.94


@pytest.fixture(scope="module")
def lens():
    """Defocus, astigmatism and coma growing towards the edge (the corners' PSFs are comatic)."""
    return simulate_lens((192, 192), grid=(6, 6), psf_size=31, defocus_edge=0.7, astigmatism_edge=0.4, coma_edge=0.3)


@pytest.fixture(scope="module")
def bead_slide(lens):
    return render_bead_target(lens, n_beads=70, brightness=(2000, 20000), seed=1)


@pytest.fixture(scope="module")
def pupil_calibration(bead_slide):
    image, _ = bead_slide
    messages = []
    field = calibrate_from_beads(image, report=messages.append, **OPTICS)
    return field, messages


# -- the centring convention ---------------------------------------------------------------------
def test_psfs_are_centred_on_their_centroid():
    comatic = pupil_psf(31, **OPTICS, defocus=0.5, coma=(0.0, 0.6))
    assert np.hypot(*centroid_offset(comatic)) > 0.5  # truncated tails: not centred as computed
    centred = centre_on_centroid(comatic)
    assert np.hypot(*centroid_offset(centred)) < 0.01
    assert centred.sum() == pytest.approx(comatic.sum())
    # The robust centroid of a noisy, background-subtracted bead image finds the same point.
    rng = np.random.default_rng(0)
    noisy = centred * 2e4 + rng.normal(0, 3.0, centred.shape)
    np.testing.assert_allclose(robust_centroid(noisy), (15, 15), atol=0.15)


def test_calibrated_psfs_follow_the_convention(pupil_calibration):
    field, _ = pupil_calibration
    offsets = np.array([centroid_offset(p) for p in field.psfs.reshape(-1, field.psf_size, field.psf_size)])
    assert np.abs(offsets).max() < 0.05


# -- the pupil model ----------------------------------------------------------------------------
def test_pupil_model_recovers_the_lens_corners_included(lens, bead_slide, pupil_calibration):
    image, true_positions = bead_slide
    field, messages = pupil_calibration
    meta = field.metadata
    assert field.kind == "beads" and field.field_shape == (192, 192) and messages
    # The fit reports each round as it goes (the round, the beads, the objective and its change, the time).
    rounds = [m for m in messages if m.startswith("round ")]
    assert len(rounds) >= 2 and " beads, objective " in rounds[1] and "%)" in rounds[1]
    assert messages.index(rounds[0]) < messages.index(next(m for m in messages if m.startswith("pupil: held-out")))
    assert meta["method"] == "pupil" and "optics" in meta["method_reason"]
    assert meta["n_detected"] == meta["n_used"] + sum(meta["rejected"].values())
    assert meta["n_used"] >= 55
    assert_recovers_the_lens(field, lens, true_positions)
    assert meta["held_out"]["unexplained_fraction"] < 0.5 and meta["held_out"]["n_beads"] >= 10
    assert set(meta["aberrations"]["at_centre"]) >= {"defocus", "coma_x", "coma_y"}
    assert np.array(meta["fwhm_map_px"]).shape == field.grid_shape


def test_field_models_recover_known_polynomial_coefficients():
    """Beads rendered by a known model: fitting the same model family, from zero aberrations, finds its coefficients."""
    rng = np.random.default_rng(2)
    shape, k = (160, 160), 21
    truth = PupilFieldModel(k + 4, cutoff=0.2)
    with torch.no_grad():
        truth.coefficients[0][:] = torch.tensor([0.1, 0, 0, 0.3, 0, 0.3], dtype=torch.float64)  # defocus ~ r**2
        truth.coefficients[3][:] = torch.tensor([0.0, 0.0, 0.35], dtype=torch.float64)  # coma_x ~ v
        truth.coefficients[4][:] = torch.tensor([0.0, 0.35, 0.0], dtype=torch.float64)  # coma_y ~ u
    positions = np.array([(y, x) for y in np.linspace(12, 147, 7) for x in np.linspace(12, 147, 7)])
    positions += rng.uniform(-0.5, 0.5, positions.shape)
    fluxes = rng.uniform(5e3, 2e4, len(positions))
    image = np.full(shape, 100.0)
    anchors = np.round(positions).astype(int)
    with torch.no_grad():
        kernels = truth.kernels(torch.as_tensor(field_uv(positions, shape)), torch.as_tensor(positions - anchors)).numpy()
    h = (k + 4) // 2
    for (y, x), f, kernel in zip(anchors, fluxes, kernels):
        image[y - h : y + h + 1, x - h : x + h + 1] += f * kernel
    image = rng.poisson(image).astype(float)
    scene = BeadScene(image, np.full(shape, 100.0), 100.0, k, positions + rng.normal(0, 0.3, positions.shape),
                      np.zeros(shape, bool))
    model = PupilFieldModel(k + 4, cutoff=0.2)
    # As calibrate_from_beads starts: defocus from the bead widths, so on the convention's side
    # (field-averaged defocus >= 0); at exactly zero the sign would be left to rounding.
    model.initialise_defocus(field_uv(scene.positions, shape), np.array([local_width(scene, p) for p in scene.positions]))
    fit = fit_scene(scene, model, gain=1.0)
    fitted = model.describe()["aberration_polynomials_waves"]
    assert fitted["coma_x"]["v"] == pytest.approx(0.35, abs=0.05)
    assert fitted["coma_y"]["u"] == pytest.approx(0.35, abs=0.05)
    assert fitted["defocus"]["u^2"] == pytest.approx(0.3, abs=0.05)
    assert fitted["defocus"]["v^2"] == pytest.approx(0.3, abs=0.05)
    assert fit.loss == pytest.approx(0.5, abs=0.02)  # residuals are the Poisson noise
    assert np.median(np.hypot(*(fit.positions - positions).T)) < 0.05
    np.testing.assert_allclose(fit.fluxes, fluxes, rtol=0.05)
    # The empirical model (pixels linear in the field position) on the same beads.
    start = kernels[len(kernels) // 2][2:-2, 2:-2]
    empirical = EmpiricalFieldModel(k + 4, k, 1, start)
    fit = fit_scene(scene, empirical, gain=1.0)
    assert np.median(fit.chi2 / fit.n_pixels) < 1.5


@pytest.mark.parametrize("vectorial", [False, True])
def test_flipping_the_even_aberrations_leaves_the_psf_unchanged_and_the_convention_picks_one(vectorial):
    """E + O and -E + O give the same PSF; canonicalise() makes the field-averaged defocus non-negative."""
    model = PupilFieldModel(25, cutoff=0.2, na=1.2, immersion_index=1.333 if vectorial else None)
    with torch.no_grad():
        model.coefficients[0][:] = torch.tensor([-0.2, 0.05, 0, -0.3, 0.1, -0.25], dtype=torch.float64)
        model.coefficients[1][:] = torch.tensor([0.0, 0.1, -0.2, 0.05, 0, 0.1], dtype=torch.float64)
        model.coefficients[3][:] = torch.tensor([0.05, 0.0, 0.3], dtype=torch.float64)
        model.coefficients[5][:] = torch.tensor([0.08], dtype=torch.float64)
        model.coefficients[6][:] = torch.tensor([0.1], dtype=torch.float64)
    uv = torch.tensor([[0.0, 0.0], [0.5, -0.3], [-0.6, 0.6]], dtype=torch.float64)
    shift = torch.zeros(3, 2, dtype=torch.float64)
    with torch.no_grad():
        before = model.kernels(uv, shift).numpy()
        even = [c.clone() for c in model.coefficients]
        assert model.canonicalise()
        after = model.kernels(uv, shift).numpy()
    np.testing.assert_allclose(after, before, atol=2e-6 * before.max())
    for (name, _), old, new in zip(ABERRATIONS, even, model.coefficients):
        sign = -1 if name in ("defocus", "astigmatism_0", "astigmatism_45", "spherical", "spherical_2") else 1
        np.testing.assert_array_equal(new.detach().numpy(), sign * old.numpy())
    assert not model.canonicalise()  # already on the convention's side


def test_vectorial_pupil_reduces_to_the_scalar_one_at_low_na():
    """With the immersion index the pupil is vectorial: the same spot at low NA, a wider one at high NA."""
    at = (torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))

    def spot(na, n, vectorial, window=41):
        model = PupilFieldModel(window, cutoff=na * 100 / 520, na=na, immersion_index=n, vectorial=vectorial)
        assert model.vectorial is vectorial
        with torch.no_grad():
            return model.kernels(*at)[0].numpy()

    assert pearson(spot(0.3, 1.0, True), spot(0.3, 1.0, False)) > 0.999
    scalar, vectorial = spot(1.4, 1.518, False), spot(1.4, 1.518, True)
    assert 0.95 < vectorial.sum() <= 1.0 and 0.95 < scalar.sum() <= 1.0  # fractions of the whole PSF's energy
    assert psf_fwhm(vectorial) > 1.1 * psf_fwhm(scalar)  # the axial field component broadens the spot
    assert PupilFieldModel(21, cutoff=0.2, na=1.0, immersion_index=1.33).vectorial  # the default with an index
    assert not PupilFieldModel(21, cutoff=0.2, na=1.0).vectorial
    with pytest.raises(ValueError, match="immersion index"):
        PupilFieldModel(21, cutoff=0.2, na=1.0, vectorial=True)


def test_clipped_and_overlapping_beads_are_used(lens, bead_slide):
    image, true_positions = bead_slide
    field = calibrate_from_beads(image, method="empirical")
    used = np.array(field.metadata["beads"])
    assert field.metadata["method"].startswith("empirical")
    # Beads whose PSF the image edge cuts, and beads whose neighbours' tails overlap, are fitted.
    border = np.minimum(np.minimum(used[:, 0], 191 - used[:, 0]), np.minimum(used[:, 1], 191 - used[:, 1]))
    assert np.sum(border < field.psf_size // 2) >= 5
    gaps, _ = cKDTree(used).query(used, k=2)
    assert np.sum(gaps[:, 1] < field.psf_size / 2) >= 2


# -- rejection and refusal ----------------------------------------------------------------------
def test_saturated_beads_are_rejected(lens):
    image, _ = render_bead_target(lens, n_beads=60, brightness=(2000, 60000), seed=2)
    level = float(np.percentile(image, 99.9))
    clipped = np.minimum(image, level)
    field = calibrate_from_beads(clipped, saturation=level, **OPTICS)
    assert field.metadata["rejected"]["saturated"] >= 3
    assert any(reason == "saturated" for *_, reason in field.metadata["rejected_beads"])
    saturated_pixels = np.argwhere(image >= level)
    distance, _ = cKDTree(saturated_pixels).query(np.array(field.metadata["beads"]))
    assert distance.min() > 2


def test_all_beads_saturated_is_an_error(lens):
    image, _ = render_bead_target(lens, n_beads=40, brightness=(20000, 40000), seed=3)
    with pytest.raises(ValueError, match="all .* beads found are saturated"):
        calibrate_from_beads(np.minimum(image, 150.0), saturation=150.0)


def test_pure_noise_is_refused():
    rng = np.random.default_rng(4)
    background = rng.poisson(100.0, size=(128, 128)) + rng.normal(0, 2.0, size=(128, 128))
    with pytest.raises(ValueError, match="no beads found|only [0-9] usable beads? found"):
        calibrate_from_beads(background)


def test_hot_pixels_are_not_beads():
    rng = np.random.default_rng(5)
    dark = rng.normal(100.0, 3.0, size=(128, 128))
    dark[rng.integers(0, 128, 30), rng.integers(0, 128, 30)] = rng.uniform(1000, 8000, 30)
    with pytest.raises(ValueError, match="single hot pixels, not beads"):
        calibrate_from_beads(dark)


def test_too_few_beads_are_refused(lens):
    image, _ = render_bead_target(lens, n_beads=2, brightness=(8000, 9000), seed=6)
    with pytest.raises(ValueError, match="only 2 usable beads found.*at least 8 beads spread over the field"):
        calibrate_from_beads(image)


def test_beads_in_one_corner_are_refused(lens):
    rng = np.random.default_rng(7)
    image = np.full(lens.field_shape, 100.0)
    h = lens.psf_size // 2
    for y, x in [(y, x) for y in (18, 30, 42) for x in (18, 30, 42)]:  # nine beads in one corner
        image[y - h : y + h + 1, x - h : x + h + 1] += 1e4 * lens.psf_at(y, x)
    with pytest.raises(ValueError, match="cover only [0-9]+% of the field"):
        calibrate_from_beads(rng.poisson(image).astype(float))


@pytest.mark.slow
def test_debris_that_no_psf_model_explains_is_refused():
    """Blobs of random size, elongation and orientation: bead-like, but no smooth PSF field."""
    rng = np.random.default_rng(11)
    yy, xx = np.indices((160, 160))
    image = np.full((160, 160), 100.0)
    for _ in range(60):
        (y, x), (sy, sx), angle = rng.uniform(8, 152, 2), rng.uniform(0.8, 5.0, 2), rng.uniform(0, np.pi)
        u = (yy - y) * np.cos(angle) + (xx - x) * np.sin(angle)
        v = (xx - x) * np.cos(angle) - (yy - y) * np.sin(angle)
        blob = np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2))
        image += rng.uniform(3e3, 2e4) * blob / blob.sum()
    with pytest.raises(ValueError, match=r"cannot explain the held-out beads: \d+% of their light is left unexplained"):
        calibrate_from_beads(rng.poisson(image).astype(float), method="empirical")


def test_bad_arguments_are_named():
    image = np.zeros((64, 64))
    with pytest.raises(ValueError, match="method must be one of"):
        calibrate_from_beads(image, method="magic")
    with pytest.raises(ValueError, match="all three optical parameters"):
        calibrate_from_beads(image, na=1.2)
    with pytest.raises(ValueError, match="min_snr must be a finite number"):
        calibrate_from_beads(image, min_snr=float("nan"))
    with pytest.raises(ValueError, match="bead_size_px must be more than 0"):
        calibrate_from_beads(image, bead_size_px=-1)
    with pytest.raises(TypeError, match="grid must be two numbers"):
        calibrate_from_beads(image, grid=5.5)
    with pytest.raises(ValueError, match="pixel_size_nm must be a finite number"):
        calibrate_from_beads(image, na=1.2, wavelength_nm=500, pixel_size_nm=float("inf"))
    with pytest.raises(ValueError, match="immersion_index must be at least the NA"):
        calibrate_from_beads(image, na=1.2, wavelength_nm=500, pixel_size_nm=100, immersion_index=1.0)
    with pytest.raises(ValueError, match="2D image is required"):
        calibrate_from_beads(np.zeros((3, 64, 64)))
    with pytest.raises(ValueError, match="bead image is constant"):
        calibrate_from_beads(image)


def test_per_node_average_remains_available(lens, bead_slide):
    image, _ = bead_slide
    field = calibrate_from_beads(image, method="nodes", grid=(3, 3))
    assert field.metadata["method"] == "nodes" and field.grid_shape == (3, 3)
    offsets = np.array([centroid_offset(p) for p in field.psfs.reshape(-1, field.psf_size, field.psf_size)])
    assert np.abs(offsets).max() < 0.05


def _sharp_lens_scene(neighbour_offset=None, seed=4):
    """A 6 x 6 bead grid through a vectorial NA 0.9 lens (cut-off 0.19) with field curvature, as a BeadScene.

    With ``neighbour_offset`` every bead gets an equally bright neighbour that far away (a dense slide).
    """
    rng = np.random.default_rng(seed)
    shape, k = (128, 128), 21
    truth = PupilFieldModel(k + 4, cutoff=0.19, na=0.9, immersion_index=1.0)
    with torch.no_grad():
        truth.coefficients[0][:] = torch.tensor([0.0, 0, 0, 0.5, 0, 0.5], dtype=torch.float64)  # defocus ~ r**2
    positions = np.array([(y, x) for y in np.linspace(14, 113, 6) for x in np.linspace(14, 113, 6)])
    positions += rng.uniform(-0.5, 0.5, positions.shape)
    if neighbour_offset is not None:
        positions = np.concatenate([positions, positions + np.asarray(neighbour_offset)])
        positions = positions[(positions.min(axis=1) >= 12) & (positions.max(axis=1) <= 115)]
    anchors = np.round(positions).astype(int)
    with torch.no_grad():
        kernels = truth.kernels(torch.as_tensor(field_uv(positions, shape)), torch.as_tensor(positions - anchors)).numpy()
    image = np.full(shape, 100.0)
    h = (k + 4) // 2
    for (y, x), kernel in zip(anchors, kernels):
        image[y - h : y + h + 1, x - h : x + h + 1] += 1e4 * kernel
    image = rng.poisson(image).astype(float)
    return BeadScene(image, np.full(shape, 100.0), 100.0, k, positions, np.zeros(shape, bool))


@pytest.mark.slow
def test_unknown_optics_are_estimated_from_the_sharpest_beads():
    """Without the optics, the pupil's cut-off and aperture NA / n start from a fit to the sharpest beads."""
    from napari_coordgate.psf.beads.model_choice import estimate_optics

    scene = _sharp_lens_scene()
    widths = np.array([local_width(scene, p) for p in scene.positions])
    cutoff, aperture = estimate_optics(scene, widths, guess=0.51 / np.nanpercentile(widths, 5))
    assert cutoff == pytest.approx(0.19, rel=0.1)
    assert aperture >= 0.8  # the vectorial broadening of NA 0.9 is seen
    # A guess far too small (measured: wide beads on a dense slide) is outside the first grid; the grid goes on.
    cutoff, _ = estimate_optics(scene, widths, guess=0.55 * 0.51 / np.nanpercentile(widths, 5))
    assert cutoff == pytest.approx(0.19, rel=0.1)


def test_a_neighbours_light_does_not_widen_a_bead():
    """On a dense slide a neighbour inside the window would make a sharp bead look wide (and the optics wrong)."""
    alone = _sharp_lens_scene()
    crowded = _sharp_lens_scene(neighbour_offset=(3.2, 6.1))
    isolated = np.array([local_width(alone, p) for p in alone.positions])
    with_neighbours = np.array([local_width(crowded, p) for p in crowded.positions[: len(alone.positions)]])
    good = np.isfinite(isolated) & np.isfinite(with_neighbours)
    assert good.sum() >= 10
    assert np.median(with_neighbours[good] / isolated[good]) < 1.25


def test_the_centroid_check_is_recorded(bead_slide, monkeypatch):
    """The centroid self-check's figures are in the field's metadata (a diagnostic, not yet a warning)."""
    import napari_coordgate.psf.beads.calibrate as beads

    failing = {"n_beads": 40, "regions": [], "median_px": 2.5, "max_px": 4.2, "passed": False,
               "worst": [[32.0, 32.0, 3.0, 2.9, 4.2]]}
    monkeypatch.setattr(beads, "check_centroids", lambda *args, **kwargs: failing)
    image, _ = bead_slide
    field = calibrate_from_beads(image, method="empirical", psf_size=21)
    assert field.metadata["centroid_check"] == failing
    # The report (the CLI's and the dock's) shows its figures and names the worst region.
    from napari_coordgate.psf.calibration_report import calibration_report

    line = next(text for text in calibration_report(field) if "centroid" in text)
    assert "median 2.50 px, at most 4.20 px" in line and "top left (32, 32) 4.2 px" in line


def test_without_the_optics_the_pupil_is_kept_unless_an_empirical_model_is_clearly_better():
    from napari_coordgate.psf.beads.model_choice import PUPIL_MARGIN, choose

    pupil = {"name": "pupil", "model": PupilFieldModel(11, cutoff=0.2), "unexplained": 0.15}
    empirical = {"name": "empirical (order 3)", "model": EmpiricalFieldModel(11, 7, 3, np.ones((7, 7))), "unexplained": 0.0}
    chosen, reason = choose([pupil, empirical])
    assert chosen is pupil and "physics by default" in reason and "15.0% against 0.0%" in reason
    worse = {**pupil, "unexplained": PUPIL_MARGIN + 0.05}
    chosen, reason = choose([worse, empirical])
    assert chosen is empirical and "clearly better" in reason
    # Beads in half the field: the empirical model cannot know the other half, so the pupil stays.
    chosen, reason = choose([worse, empirical], coverage=0.51)
    assert chosen is worse and "cover only 51% of the field" in reason


def test_a_slide_with_many_beads_chooses_its_model_on_a_spread_subset(lens, bead_slide, monkeypatch):
    """Beyond TRIAL_BEADS the models are fitted on a subset spread over the field; every bead enters the final fit."""
    from napari_coordgate.psf.beads import calibrate as beads

    image, true_positions = bead_slide
    monkeypatch.setattr(beads, "TRIAL_BEADS", 30)
    messages = []
    field = calibrate_from_beads(image, report=messages.append, **OPTICS)
    meta = field.metadata
    subset_message = next(m for m in messages if m.startswith("choosing the field model on 30 of the"))
    every = next(m for m in messages if m.startswith("fitting all ") and "under the pupil model" in m)
    assert messages.index(subset_message) < messages.index(every)
    assert meta["method"] == "pupil" and meta["n_used"] >= 55 and meta["held_out"]["n_beads"] == 6
    assert_recovers_the_lens(field, lens, true_positions)
