"""The pupil model whose aberrations follow the field laws of a rotationally symmetric lens."""

import numpy as np
import torch

from _psf_checks import central, pearson
from napari_coordgate.psf import calibrate_from_beads, simulate_lens
from napari_coordgate.psf.optics.bead_slide import _splat_beads, scatter_points
from napari_coordgate.psf.field_models.axial_pupil_field import AXIAL_PARAMETERS, AxialPupilFieldModel
from napari_coordgate.psf.centroid import centre_on_centroid
from napari_coordgate.psf.field_models.empirical_field import EmpiricalFieldModel
from napari_coordgate.psf.beads.model_choice import AXIAL_MARGIN, choose_field_law
from napari_coordgate.psf.field_models.pupil_field import PupilFieldModel


def _model(**values) -> AxialPupilFieldModel:
    model = AxialPupilFieldModel(31, cutoff=0.2, na=0.9, immersion_index=1.0)
    with torch.no_grad():
        for name, value in values.items():
            model.axial[AXIAL_PARAMETERS.index(name)] = value
    return model


def _kernels(model, uv) -> np.ndarray:
    uv = torch.as_tensor(np.asarray(uv, dtype=float))
    with torch.no_grad():
        return model.kernels(uv, torch.zeros_like(uv)).numpy()


def test_the_laws_tie_the_quadratic_and_linear_terms():
    model = _model(d0=0.1, du=0.05, d2=0.5, A=0.4, a_u=0.02, b0=-0.03, C=0.3, cy=0.01)
    model.sync_coefficients()
    terms = model.describe()["aberration_polynomials_waves"]
    assert terms["defocus"]["u^2"] == terms["defocus"]["v^2"] == 0.5 and terms["defocus"]["uv"] == 0
    assert terms["astigmatism_0"]["v^2"] == -terms["astigmatism_0"]["u^2"] == 0.4
    assert terms["astigmatism_45"]["uv"] == 0.8 and terms["astigmatism_45"]["u^2"] == 0
    assert terms["coma_x"]["v"] == terms["coma_y"]["u"] == 0.3 and terms["coma_x"]["u"] == terms["coma_y"]["v"] == 0
    assert terms["defocus"]["u"] == 0.05 and terms["astigmatism_0"]["u"] == 0.02 and terms["coma_y"]["1"] == 0.01
    assert model.describe()["field_law"] == "axial"


def test_a_centred_lens_is_rotationally_symmetric():
    """Field curvature, astigmatism and coma about the centre: rotating the field point rotates the PSF."""
    model = _model(d0=0.1, d2=0.5, A=0.4, C=0.3, s0=0.1, t0=0.05)
    # (u, v) along (y, x); a quarter turn of the field point, a mirror across the u axis, and a far point.
    psf, turned, mirrored, other = _kernels(model, [[0.2, 0.6], [-0.6, 0.2], [0.2, -0.6], [-0.5, -0.5]])
    assert pearson(np.rot90(psf), turned) > 0.9999
    assert pearson(np.fliplr(psf), mirrored) > 0.9999
    assert pearson(psf, turned) < 0.9 and pearson(psf, other) < 0.9  # the PSF does change across the field


def test_the_fitted_laws_become_a_plain_pupil_model_with_the_same_psfs():
    model = _model(d0=0.1, dv=-0.1, d2=0.5, A=0.4, b_v=0.05, C=0.3, cx=0.02, trefoil_0=0.05)
    with torch.no_grad():
        model.apodisation.fill_(-0.2)
    uv = [[0.0, 0.0], [0.5, -0.4], [-0.7, 0.7]]
    for other in (model.free_law(), model.with_window(31)):
        assert type(other) is PupilFieldModel
        np.testing.assert_allclose(_kernels(other, uv), _kernels(model, uv), atol=1e-7)
    free = model.free_law()
    assert all(c.requires_grad for c in free.coefficients) and not any(c.requires_grad for c in model.coefficients)


def test_the_sign_convention_flips_the_even_laws_and_keeps_the_psfs():
    model = _model(d0=-0.2, d2=-0.4, A=0.3, a0=0.05, C=0.3, cx=0.05, s0=0.1, s_v=0.05, t0=0.03, trefoil_0=0.07)
    uv = [[0.3, 0.2], [-0.6, 0.5]]
    before, values = _kernels(model, uv), model.axial.detach().clone()
    assert model.canonicalise()
    np.testing.assert_allclose(_kernels(model, uv), before, atol=2e-6 * before.max())
    even = {"d0", "du", "dv", "d2", "A", "a0", "a_u", "a_v", "b0", "b_u", "b_v", "s0", "s_u", "s_v", "t0", "t_u", "t_v"}
    signs = torch.tensor([-1.0 if name in even else 1.0 for name in AXIAL_PARAMETERS], dtype=torch.float64)
    torch.testing.assert_close(model.axial.detach(), signs * values)
    assert not model.canonicalise()


def _trials(axial: float, free: float) -> list[dict]:
    empirical = EmpiricalFieldModel(11, 7, 3, np.ones((7, 7)))
    return [{"name": "pupil", "model": AxialPupilFieldModel(11, cutoff=0.2), "unexplained": axial},
            {"name": "pupil (free field polynomials)", "model": PupilFieldModel(11, cutoff=0.2), "unexplained": free},
            {"name": "empirical (order 3)", "model": empirical, "unexplained": 0.0}]


def test_the_symmetric_laws_are_kept_unless_the_free_polynomials_are_clearly_better():
    kept, note, warning = choose_field_law(_trials(0.07, 0.05))
    assert [t["name"] for t in kept] == ["pupil", "empirical (order 3)"] and warning is None
    assert "rotationally symmetric lens" in note and "7.0%" in note and "5.0%" in note
    kept, note, warning = choose_field_law(_trials(0.07 + AXIAL_MARGIN + 0.02, 0.07))
    assert [t["name"] for t in kept] == ["pupil (free field polynomials)", "empirical (order 3)"] and warning is None
    assert "does not follow the field laws" in note
    # Beads over part of the field: only the laws extrapolate, so they stay, with a warning that names the fix.
    kept, note, warning = choose_field_law(_trials(0.07 + AXIAL_MARGIN + 0.02, 0.07), coverage=0.5)
    assert kept[0]["name"] == "pupil"
    assert "does not look rotationally symmetric" in warning and "50%" in warning and "whole field" in warning


def test_beads_in_half_the_field_give_the_other_half():
    """A symmetric lens, beads only in its left 55 %: the far corners come from the laws."""
    lens = simulate_lens((160, 160), grid=(5, 5), psf_size=27, defocus_edge=0.6, astigmatism_edge=0.35, coma_edge=0.3)
    rng = np.random.default_rng(3)
    positions = scatter_points((160, 88), 45, 12.0, rng, margin=2.0)
    fluxes = rng.uniform(4000, 20000, len(positions))
    expected = np.clip(lens.blur(_splat_beads((160, 160), positions, fluxes, 0.5)), 0, None) + 100.0
    image = (rng.poisson(expected) + rng.normal(0, 2.0, expected.shape)).astype(np.float32)
    field = calibrate_from_beads(image, na=0.8, wavelength_nm=520.0, pixel_size_nm=130.0)
    meta = field.metadata
    assert meta["coverage"] < 0.6 and meta["method"] == "pupil"
    assert "rotationally symmetric lens" in meta["method_reason"]
    size = min(field.psf_size, lens.psf_size)
    far = [(3, 156), (156, 156), (80, 156)]
    correlations = [pearson(central(field.psf_at(y, x), size), central(centre_on_centroid(lens.psf_at(y, x)), size))
                    for y, x in far]
    print(correlations)
    assert min(correlations) > 0.9
