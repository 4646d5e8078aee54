"""A pupil model of a lens whose aberrations follow the field laws of a rotationally symmetric system.

A microscope's objective and tube lens are rotationally symmetric about
their optical axis, and their third-order (Seidel) aberrations depend on the
field position in fixed ways: field curvature grows as the squared distance
from the axis, astigmatism as that squared distance with its axes along and
across the field radius, coma linearly along the field radius. A decentred
axis adds linear terms to every law, and a tilted sample a linear defocus.

:class:`AxialPupilFieldModel` is a :class:`.PupilFieldModel` whose
quadratic and linear field terms are tied that way, with the lower-order
terms free (in normalised field coordinates ``(u, v)`` along y and x, see
:mod:`~napari_coordgate.psf.field_models.polynomials`):

============ ====================================== ======================
term         field law                              parameters
============ ====================================== ======================
defocus      ``d0 + du u + dv v + d2 (u**2 + v**2)``  4
astig 0°     ``a0 + a_u u + a_v v + A (v**2 - u**2)`` 3 + the shared ``A``
astig 45°    ``b0 + b_u u + b_v v + 2 A u v``         3
coma x       ``cx + C v``                            1 + the shared ``C``
coma y       ``cy + C u``                            1
spherical    ``s0 + s_u u + s_v v``                   3
sph. 2nd     ``t0 + t_u u + t_v v``                   3
trefoil      constants                               2
============ ====================================== ======================

21 parameters against the 32 of the free quadratic and linear polynomials.
The spherical terms are linear in the field for a sample whose depth
changes across it (a tilted coverslip or gel): the depth-induced spherical
aberration of an index mismatch grows with depth, and at high NA it needs
the secondary term too (docs/calibration.md).
The ties are what a half-covered field needs: beads on one side fix the
shared ``d2``, ``A`` and ``C``, and the laws carry them to the other side
the way a symmetric lens does. With the free polynomials, the quadratic
terms along the uncovered direction are fitted from one side only and
extrapolate poorly (docs/calibration.md).

Once fitted, the model is exactly a :class:`.PupilFieldModel` with
particular polynomial coefficients: :meth:`AxialPupilFieldModel.with_window`
returns one, so sampling, reports and saved fields need nothing new.
"""

from __future__ import annotations

import numpy as np
import torch

from .polynomials import monomials, n_monomials
from .pupil_field import EVEN_TERMS, ABERRATIONS, PupilFieldModel

__all__ = ["AxialPupilFieldModel", "AXIAL_PARAMETERS"]

#: The reduced parameters, in order (see the module's table).
AXIAL_PARAMETERS = ("d0", "du", "dv", "d2", "A", "a0", "a_u", "a_v", "b0", "b_u", "b_v", "C", "cx", "cy",
                    "s0", "s_u", "s_v", "t0", "t_u", "t_v", "trefoil_0", "trefoil_30")

#: For each aberration: (monomial, parameter, factor) entries of its coefficients. Monomials in
#: :func:`~napari_coordgate.psf.field_models.polynomials.monomials` order: order 2 is (1, u, v, u^2, uv, v^2), order 1 (1, u, v).
_LAWS = {
    "defocus": [(0, "d0", 1.0), (1, "du", 1.0), (2, "dv", 1.0), (3, "d2", 1.0), (5, "d2", 1.0)],
    "astigmatism_0": [(0, "a0", 1.0), (1, "a_u", 1.0), (2, "a_v", 1.0), (3, "A", -1.0), (5, "A", 1.0)],
    "astigmatism_45": [(0, "b0", 1.0), (1, "b_u", 1.0), (2, "b_v", 1.0), (4, "A", 2.0)],
    "coma_x": [(0, "cx", 1.0), (2, "C", 1.0)],
    "coma_y": [(0, "cy", 1.0), (1, "C", 1.0)],
    "spherical": [(0, "s0", 1.0), (1, "s_u", 1.0), (2, "s_v", 1.0)],
    "spherical_2": [(0, "t0", 1.0), (1, "t_u", 1.0), (2, "t_v", 1.0)],
    "trefoil_0": [(0, "trefoil_0", 1.0)],
    "trefoil_30": [(0, "trefoil_30", 1.0)],
}
#: Parameters of the terms even in the pupil (their joint sign is a convention, see :mod:`.pupil_field`).
_EVEN_PARAMETERS = sorted({p for name in EVEN_TERMS for _, p, _ in _LAWS[name]}, key=AXIAL_PARAMETERS.index)


def _law_matrices() -> list[np.ndarray]:
    """``(n_monomials(order), n_parameters)`` matrices giving each aberration's coefficients."""
    matrices = []
    for name, order in ABERRATIONS:
        matrix = np.zeros((n_monomials(order), len(AXIAL_PARAMETERS)))
        for monomial, parameter, factor in _LAWS[name]:
            matrix[monomial, AXIAL_PARAMETERS.index(parameter)] += factor
        matrices.append(matrix)
    return matrices


class AxialPupilFieldModel(PupilFieldModel):
    """A :class:`.PupilFieldModel` whose field laws are those of a rotationally symmetric lens.

    Takes the same arguments as :class:`.PupilFieldModel`. Its fitted
    parameter is ``axial`` (the :data:`AXIAL_PARAMETERS`, in waves); the
    inherited polynomial ``coefficients`` are not fitted and are kept equal
    to the ones the laws give (:meth:`sync_coefficients`).
    """

    field_law = "axial"

    def __init__(self, window: int, **kwargs) -> None:
        super().__init__(window, **kwargs)
        self._arguments = dict(kwargs)
        for coefficients in self.coefficients:
            coefficients.requires_grad_(False)
        self.axial = torch.nn.Parameter(torch.zeros(len(AXIAL_PARAMETERS), dtype=torch.float64))
        matrices = _law_matrices()
        self._law_sizes = [len(matrix) for matrix in matrices]
        self.register_buffer("_laws", torch.as_tensor(np.concatenate(matrices)))  # all terms' rows, stacked
        even = torch.zeros(len(AXIAL_PARAMETERS), dtype=torch.bool)
        even[[AXIAL_PARAMETERS.index(p) for p in _EVEN_PARAMETERS]] = True
        self.register_buffer("_even", even)

    def term_coefficients(self) -> list[torch.Tensor]:
        return list(torch.split(self._laws @ self.axial, self._law_sizes))

    def sync_coefficients(self) -> None:
        """Copy the laws' coefficients into the inherited polynomial ``coefficients``."""
        with torch.no_grad():
            for target, value in zip(self.coefficients, self.term_coefficients()):
                target.copy_(value)

    def canonicalise(self) -> bool:
        """The sign convention of :meth:`.PupilFieldModel.canonicalise`, on the reduced parameters."""
        self.sync_coefficients()
        flipped = super().canonicalise()
        if flipped:
            with torch.no_grad():
                self.axial[self._even] = -self.axial[self._even]
            self.sync_coefficients()
        return flipped

    def initialise_defocus(self, uv: np.ndarray, widths_px: np.ndarray) -> None:
        """Start the defocus law from bead widths (as :meth:`.PupilFieldModel.initialise_defocus`)."""
        super().initialise_defocus(uv, widths_px)
        widths = np.asarray(widths_px, dtype=float)
        good = np.isfinite(widths)
        if good.sum() < 6:
            return
        # The free polynomial's least-squares start, projected on the defocus law (same fit, fewer terms).
        design = monomials(torch.as_tensor(np.asarray(uv)[good]), 2).numpy()
        target = design @ self.coefficients[0].detach().numpy()
        columns = [AXIAL_PARAMETERS.index(p) for p in ("d0", "du", "dv", "d2")]
        defocus_law = self._laws[: self._law_sizes[0]].numpy()
        solution, *_ = np.linalg.lstsq(design @ defocus_law[:, columns], target, rcond=None)
        with torch.no_grad():
            self.axial[columns] = torch.as_tensor(solution)
        self.sync_coefficients()

    def describe(self) -> dict:
        self.sync_coefficients()
        described = super().describe()
        described["axial_parameters_waves"] = dict(zip(AXIAL_PARAMETERS, (float(p) for p in self.axial.detach())))
        return described

    def free_law(self) -> PupilFieldModel:
        """A :class:`.PupilFieldModel` with the same optics and PSFs, whose field polynomials are all free.

        Its fit, started here, shows whether the lens needs more than the
        symmetric laws where the beads are (the two models are nested).
        """
        self.sync_coefficients()
        free = PupilFieldModel(self.window, **self._arguments)
        state = {key: value for key, value in self.state_dict().items() if key in free.state_dict()}
        free.load_state_dict(state)
        if getattr(self, "estimated_optics", None):
            free.estimated_optics = dict(self.estimated_optics)
        return free

    def with_window(self, window: int) -> PupilFieldModel:
        """The same PSFs in another window, as a plain :class:`.PupilFieldModel` (nothing left to fit)."""
        self.sync_coefficients()
        return super().with_window(window)
