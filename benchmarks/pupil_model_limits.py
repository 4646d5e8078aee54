"""How well can the pupil model, scalar or vectorial, represent the independent library's PSFs?

For each test lens of :mod:`lib.independent_lens` (pyotf), this fits
:class:`napari_coordgate.psf.field_models.pupil_field.PupilFieldModel` directly to single
true PSFs (least squares on the pixel-integrated, centroid-centred kernel;
L-BFGS from both defocus signs, every aberration and the apodisation free)
and prints the best correlation. No beads, no noise: this is the model's own
limit, the ceiling a bead calibration can reach. It also prints the
correlation and peak of the zero-parameter model against the in-focus truth.

    python benchmarks/pupil_model_limits.py
"""

from __future__ import annotations

import numpy as np
import torch

from lib.independent_lens import LENSES, library_psf, placed_kernel

from napari_coordgate.psf.field_models.pupil_field import PupilFieldModel

K = 39
FIELD = (256, 256)
POINTS = ((128, 128), (64, 64), (5, 5))


def render(model: PupilFieldModel) -> torch.Tensor:
    zero = torch.zeros(1, 2, dtype=torch.float64)
    kernel = model.kernels(zero, zero)[0]
    return kernel / kernel.sum()


def best_fit(spec, truth: np.ndarray, vectorial: bool) -> float:
    cutoff = spec.na * spec.pixel_size_nm / spec.wavelength_nm
    model = PupilFieldModel(K, cutoff=cutoff, na=spec.na, immersion_index=spec.immersion_index, vectorial=vectorial)
    target = torch.as_tensor(truth)
    params = [*model.coefficients, model.apodisation]
    best = -1.0
    for start in (0.3, -0.3):
        with torch.no_grad():
            for c in model.coefficients:
                c.zero_()
            model.coefficients[0][0] = start
            model.apodisation.zero_()
        optimiser = torch.optim.LBFGS(params, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            loss = ((render(model) - target) ** 2).sum() * 1e4
            loss.backward()
            return loss

        for _ in range(3):
            optimiser.step(closure)
        with torch.no_grad():
            best = max(best, float(np.corrcoef(render(model).numpy().ravel(), truth.ravel())[0, 1]))
    return best


def main() -> None:
    for name, spec in LENSES.items():
        cutoff = spec.na * spec.pixel_size_nm / spec.wavelength_nm
        focus = placed_kernel(library_psf(spec, 0.0, np.zeros(11)), K)
        for vectorial in (False, True):
            model = PupilFieldModel(K, cutoff=cutoff, na=spec.na, immersion_index=spec.immersion_index,
                                    vectorial=vectorial)
            with torch.no_grad():
                kernel = render(model).numpy()
            print(f"{name} {'vectorial' if vectorial else 'scalar'}, zero parameters, in focus: corr "
                  f"{np.corrcoef(kernel.ravel(), focus.ravel())[0, 1]:.4f}, peak {kernel.max():.4f} "
                  f"(truth {focus.max():.4f})", flush=True)
        for y, x in POINTS:
            truth = placed_kernel(library_psf(spec, *spec.aberrations(y, x, FIELD)), K)
            fits = {v: best_fit(spec, truth, v) for v in (False, True)}
            print(f"{name} ({y}, {x}): best scalar fit {fits[False]:.4f}, best vectorial fit {fits[True]:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
