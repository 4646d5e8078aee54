"""Fitting a PSF field model to a bead image: every bead is the model's PSF at its position.

The forward model of the image is

    image(p) ~ background(p) + sum_i flux_i * PSF(field position of bead i)(p - position_i)

with a smooth background (the detection's estimate plus a fitted coarse
correction), and each bead's sub-pixel position and flux free. It is fitted
to the pixels of all bead windows at once by noise-weighted least squares
(the Gaussian approximation of the Poisson-Gaussian likelihood, with
weights ``1 / (read variance + gain * signal)``, the gain itself estimated
from the residuals), with L-BFGS. So:

- a bead clipped by the image edge contributes its visible pixels;
- neighbours whose tails overlap are modelled together (their light adds);
- a dim, wide bead counts with the weight its photons give it;
- pixels near saturated beads are left out of the fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ...cancellation import check_cancelled
from ..field_models.polynomials import field_uv

__all__ = ["BeadScene", "SceneFit", "fit_scene"]

#: Room (pixels) around the PSF in each bead's window, for its sub-pixel shift.
WINDOW_PAD = 2
#: Largest distance (pixels) a bead's fitted position may move from its starting integer pixel.
_MAX_OFFSET = 2.0
#: Cells of the fitted background correction along the longer side.
_BACKGROUND_CELLS = 4


@dataclass
class BeadScene:
    """A bead image prepared for fitting.

    Attributes
    ----------
    data : (H, W) ndarray
        The image (float64).
    background : (H, W) ndarray
        Smooth starting background.
    read_variance : float
        Pixel variance where there is no signal.
    psf_size : int
        Odd side of the PSF kernels.
    positions : (n, 2) ndarray
        Starting ``(y, x)`` of the beads to fit.
    excluded : (H, W) bool ndarray
        Pixels never used (near saturated beads, hot pixels).
    """

    data: np.ndarray
    background: np.ndarray
    read_variance: float
    psf_size: int
    positions: np.ndarray
    excluded: np.ndarray

    @property
    def window(self) -> int:
        return self.psf_size + 2 * WINDOW_PAD

    def windows(self, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel indices ``(n, w*w)`` of each window around ``anchors`` and whether each lies in the image."""
        H, W = self.data.shape
        half = self.window // 2
        steps = np.arange(self.window) - half
        rows = anchors[:, 0, None] + steps[None, :]
        cols = anchors[:, 1, None] + steps[None, :]
        valid = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
        flat = np.clip(rows, 0, H - 1)[:, :, None] * W + np.clip(cols, 0, W - 1)[:, None, :]
        return flat.reshape(len(anchors), -1), valid.reshape(len(anchors), -1)


@dataclass
class SceneFit:
    """What :func:`fit_scene` found.

    Attributes
    ----------
    positions : (n, 2) ndarray
        Fitted ``(y, x)`` centroids of the beads.
    fluxes : (n,) ndarray
        Fitted total fluxes (image units).
    flux_errors : (n,) ndarray
        Their standard errors from the noise model (diagonal approximation).
    chi2 : (n,) ndarray
        Weighted squared residual over each bead's own window pixels.
    chi2_null : (n,) ndarray
        The same with the bead removed (its light unexplained).
    n_pixels : (n,) ndarray
        Number of fitted pixels in each window.
    gain : float
        Variance per unit of signal in the noise model.
    loss : float
        Final value of the objective per fitted pixel.
    """

    positions: np.ndarray
    fluxes: np.ndarray
    flux_errors: np.ndarray
    chi2: np.ndarray
    chi2_null: np.ndarray
    n_pixels: np.ndarray
    gain: float
    loss: float

    def select(self, which: np.ndarray) -> SceneFit:
        """The same fit for the beads ``which`` (a boolean mask or indices) only."""
        return SceneFit(self.positions[which], self.fluxes[which], self.flux_errors[which], self.chi2[which],
                        self.chi2_null[which], self.n_pixels[which], self.gain, self.loss)


def _background_interpolation(shape, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Bilinear weights ``(m, 4)`` and node indices ``(m, 4)`` of a coarse background grid at ``pixels``."""
    H, W = shape
    longer = max(H, W)
    grid = (max(2, round(_BACKGROUND_CELLS * H / longer) + 1), max(2, round(_BACKGROUND_CELLS * W / longer) + 1))
    y = pixels // W / max(H - 1, 1) * (grid[0] - 1)
    x = pixels % W / max(W - 1, 1) * (grid[1] - 1)
    y0 = np.clip(np.floor(y).astype(int), 0, grid[0] - 2)
    x0 = np.clip(np.floor(x).astype(int), 0, grid[1] - 2)
    ty, tx = y - y0, x - x0
    nodes = np.stack([y0 * grid[1] + x0, y0 * grid[1] + x0 + 1, (y0 + 1) * grid[1] + x0, (y0 + 1) * grid[1] + x0 + 1], 1)
    weights = np.stack([(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx], 1)
    return weights, nodes, grid


def fit_scene(
    scene: BeadScene,
    model: torch.nn.Module,
    *,
    fitted: np.ndarray | None = None,
    free: np.ndarray | None = None,
    fit_model: bool = True,
    start: SceneFit | None = None,
    gain: float | None = None,
    rounds: int = 4,
    iterations: int = 25,
    regularisation: float = 0.0,
    max_rounds: int | None = None,
    tolerance: float = 1e-3,
    report: Callable[[str], None] | None = None,
) -> SceneFit:
    """Fit the beads of ``scene`` (and, if ``fit_model``, the PSF ``model``) to its pixels.

    Alternates, for ``rounds`` rounds or more: Gauss-Newton steps on each bead's
    flux and sub-pixel position (all beads at once, each with its
    neighbours' current light subtracted), an exact least-squares update
    of the background correction, L-BFGS on the model's parameters jointly
    with the beads' (preconditioned by their Gauss-Newton curvature), and a
    new estimate of the noise gain.

    Parameters
    ----------
    scene : BeadScene
    model : torch.nn.Module
        A field model with ``kernels(uv, shift) -> (n, window, window)``
        (:class:`.PupilFieldModel` or :class:`.EmpiricalFieldModel`).
    fitted : (n,) bool ndarray, optional
        Beads whose window pixels enter the objective (default: all). The
        others are rendered (their light falls on their neighbours) but
        their own pixels are left out: held-out beads.
    free : (n,) bool ndarray, optional
        Beads whose position and flux are fitted (default: all).
    fit_model : bool
        Also fit the model's parameters.
    start : SceneFit, optional
        Starting positions and fluxes (e.g. from an earlier fit).
    gain : float, optional
        Fixed noise gain (variance per unit signal); by default estimated.
    rounds, iterations : int
        Alternation rounds (at least); L-BFGS iterations on the model per round.
    max_rounds : int, optional
        When fitting the model, rounds go on past ``rounds`` until the
        objective falls by less than ``tolerance`` (relative) in a round, up
        to this many (default ``2 * rounds``): a fit stops on convergence,
        not on a count. The last round only refines the beads.
    tolerance : float
        Relative decrease of the objective per round under which the fit
        has converged.
    regularisation : float
        Weight of ``model.roughness()`` where the model has one.
    report : callable, optional
        Called after each round that fits the model, with the round, the
        objective per pixel and its relative change, and the time taken.

    Returns
    -------
    SceneFit
    """
    n = len(scene.positions)
    fitted = np.ones(n, bool) if fitted is None else np.asarray(fitted, bool)
    free = np.ones(n, bool) if free is None else np.asarray(free, bool)
    H, W = scene.data.shape
    anchors = np.round(scene.positions).astype(int)
    flat, valid = scene.windows(anchors)
    # The objective's pixels: windows of the fitted beads, less the excluded ones.
    use = np.zeros(H * W, bool)
    use[flat[fitted][valid[fitted]]] = True
    use &= ~scene.excluded.ravel()
    pixels = np.flatnonzero(use)
    if pixels.size == 0:
        raise ValueError("no bead pixels left to fit")
    dump = pixels.size  # light that falls outside the fitted pixels is collected here
    compact = np.full(H * W, dump, dtype=np.int64)
    compact[pixels] = np.arange(pixels.size)
    target = torch.as_tensor(np.where(valid, compact[flat], dump))
    data = torch.as_tensor(scene.data.ravel()[pixels])
    background0 = torch.as_tensor(scene.background.ravel()[pixels])
    bg_weights, bg_nodes, bg_grid = _background_interpolation((H, W), pixels)
    n_nodes = bg_grid[0] * bg_grid[1]
    # The background correction's design matrix has four entries a row (bilinear weights): kept as
    # (weights, nodes) rather than a dense (pixels, nodes) matrix, which a whole sensor's beads would fill
    # with gigabytes.
    bg_weights, bg_nodes = torch.as_tensor(bg_weights), torch.as_tensor(bg_nodes)
    node_pairs = (bg_nodes[:, :, None] * n_nodes + bg_nodes[:, None, :]).reshape(-1)

    def bg_of(correction: torch.Tensor) -> torch.Tensor:
        return (bg_weights * correction[bg_nodes]).sum(dim=1)

    def bg_normal_equations(w: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``D^T diag(w) D`` and ``D^T (w values)`` of the design ``D``."""
        pair_weights = (w[:, None, None] * bg_weights[:, :, None] * bg_weights[:, None, :]).reshape(-1)
        lhs = torch.zeros(n_nodes * n_nodes, dtype=torch.float64).index_add_(0, node_pairs, pair_weights)
        rhs = torch.zeros(n_nodes, dtype=torch.float64).index_add_(
            0, bg_nodes.reshape(-1), ((w * values)[:, None] * bg_weights).reshape(-1))
        return lhs.reshape(n_nodes, n_nodes), rhs
    uv = torch.as_tensor(field_uv(scene.positions, (H, W)))
    free_t = torch.as_tensor(free)

    if start is None:
        shift = torch.as_tensor(scene.positions - anchors, dtype=torch.float64)
        window_sums = np.where(valid, scene.data.ravel()[flat] - scene.background.ravel()[flat], 0).sum(1)
        flux = torch.as_tensor(np.clip(window_sums, 1e-3 * max(window_sums.max(), 1.0), None))
    else:
        shift = torch.as_tensor(start.positions - anchors, dtype=torch.float64)
        flux = torch.as_tensor(np.clip(start.fluxes, 1e-6, None), dtype=torch.float64)
    correction = torch.zeros(n_nodes, dtype=torch.float64)
    # Start from a photon-counting camera (variance = level); refined from the residuals.
    level = max(float(np.median(scene.background)), scene.read_variance)
    noise_gain = gain if gain is not None else scene.read_variance / level
    model_params = [p for p in model.parameters() if p.requires_grad]

    def light_of(kernels: torch.Tensor, fluxes: torch.Tensor) -> torch.Tensor:
        canvas = torch.zeros(pixels.size + 1, dtype=torch.float64)
        return canvas.index_add(0, target.reshape(-1), (fluxes[:, None] * kernels.reshape(n, -1)).reshape(-1))[:-1]

    def weights_for(expected: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return 1.0 / (scene.read_variance + noise_gain * torch.clamp(expected - background, min=0))

    def extend(values: torch.Tensor) -> torch.Tensor:
        return torch.cat([values, torch.zeros(1, dtype=torch.float64)])

    step = 0.05
    started = time.perf_counter()
    fitting_model = fit_model and bool(model_params)
    max_rounds = max(rounds, 2 * rounds if max_rounds is None else int(max_rounds)) if fitting_model else rounds
    previous_loss, converged = None, False
    for round_ in range(max_rounds):
        check_cancelled()
        last_round = round_ == max_rounds - 1 or converged or (not fitting_model and round_ == rounds - 1)
        # (a) Gauss-Newton on each bead's flux and position.
        with torch.no_grad():
            background = background0 + bg_of(correction)
            for _ in range(3):
                k0 = model.kernels(uv, shift)
                ky = (model.kernels(uv, shift + torch.tensor([step, 0.0], dtype=torch.float64)) - k0) / step
                kx = (model.kernels(uv, shift + torch.tensor([0.0, step], dtype=torch.float64)) - k0) / step
                expected = background + light_of(k0, flux)
                w = extend(weights_for(expected, background))[target]  # (n, w*w); 0 outside the fitted pixels
                r = extend(data - expected)[target]
                jac = torch.stack([k0.reshape(n, -1), flux[:, None] * ky.reshape(n, -1), flux[:, None] * kx.reshape(n, -1)], 2)
                hess = torch.einsum("np,npi,npj->nij", w, jac, jac)
                grad = torch.einsum("np,npi,np->ni", w, jac, r)
                damped = hess + 1e-3 * torch.diag_embed(torch.diagonal(hess, dim1=1, dim2=2)) + 1e-12 * torch.eye(3)
                delta = torch.linalg.solve(damped, grad[..., None])[..., 0]
                delta[~free_t] = 0
                new_flux = torch.clamp(flux + delta[:, 0], min=1e-6 * float(flux.max()))
                new_shift = shift + torch.clamp(delta[:, 1:], -0.5, 0.5)
                flux, shift = new_flux, torch.clamp(new_shift, -_MAX_OFFSET, _MAX_OFFSET)
            # (c) the background correction, by weighted least squares.
            k0 = model.kernels(uv, shift)
            light = light_of(k0, flux)
            w = weights_for(background + light, background)
            lhs, rhs = bg_normal_equations(w, data - light - background0)
            correction = torch.linalg.solve(lhs + 1e-9 * torch.eye(n_nodes, dtype=torch.float64), rhs)
            background = background0 + bg_of(correction)
            weights = weights_for(background + light, background)
        # (b) the model together with the beads' fluxes and positions (L-BFGS). The bead
        # parameters are scaled by the square root of their Gauss-Newton curvature, so that all
        # of them are about equally stiff: positions and the PSF's shape are strongly coupled
        # (a comatic tail moves the best-fitting position), and fitting them in turn is slow.
        if fitting_model and not last_round:
            scale = torch.sqrt(torch.clamp(torch.diagonal(hess, dim1=1, dim2=2), min=1e-30) / pixels.size)
            scale = torch.where(free_t[:, None], scale, torch.zeros_like(scale))
            z = torch.zeros((n, 3), dtype=torch.float64, requires_grad=True)
            shift0, flux0 = shift.clone(), flux.clone()

            def beads_from(z):
                step_ = z / torch.where(scale > 0, scale, torch.ones_like(scale)) * (scale > 0)
                return shift0 + step_[:, 1:], torch.clamp(flux0 + step_[:, 0], min=1e-6)

            optimiser = torch.optim.LBFGS([*model_params, z], lr=1.0, max_iter=iterations, history_size=20,
                                          line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-12)

            def closure_loss(z):
                bead_shift, bead_flux = beads_from(z)
                expected = background + light_of(model.kernels(uv, bead_shift), bead_flux)
                loss = 0.5 * (weights * (data - expected) ** 2).sum() / pixels.size
                if regularisation and hasattr(model, "roughness"):
                    loss = loss + regularisation * model.roughness()
                return loss

            def closure():
                check_cancelled()
                optimiser.zero_grad()
                loss = closure_loss(z)
                loss.backward()
                return loss

            optimiser.step(closure)
            with torch.no_grad():
                loss_now = float(closure_loss(z))
                converged = (round_ + 2 >= rounds and previous_loss is not None
                             and previous_loss - loss_now <= tolerance * abs(loss_now))
                if report is not None:
                    change = "" if previous_loss is None else f" ({(loss_now - previous_loss) / abs(previous_loss):+.1%})"
                    spent = time.perf_counter() - started
                    # At most this much more: the rounds still allowed at the pace so far (a fit that converges
                    # stops sooner).
                    left = spent / (round_ + 1) * (max_rounds - 1 - (round_ + 1))
                    report(f"round {round_ + 1} of at most {max_rounds - 1}: {int(free.sum())} beads, objective "
                           f"{loss_now:.4g}{change}, {spent:.0f} s"
                           + ("; converged" if converged else f"; at most about {left:.0f} s more" if left >= 1 else ""))
                previous_loss = loss_now
                shift, flux = beads_from(z)
                shift = torch.clamp(shift, -_MAX_OFFSET, _MAX_OFFSET)
            if hasattr(model, "canonicalise"):
                model.canonicalise()  # a sign ambiguity of in-focus PSFs, fixed by convention
        # (d) the noise gain, from the residuals.
        if gain is None:
            with torch.no_grad():
                expected = background + light_of(model.kernels(uv, shift), flux)
                noise_gain = _estimate_gain(data - expected, expected - background, scene.read_variance, noise_gain)
        if last_round:
            break

    with torch.no_grad():
        kernels = model.kernels(uv, shift).reshape(n, -1)
        light = flux[:, None] * kernels
        expected = background + light_of(kernels, flux)
        weights = extend(weights_for(expected, background))
        residual = extend(data - expected)
        chi2 = (weights[target] * residual[target] ** 2).sum(1)
        chi2_null = (weights[target] * (residual[target] + light) ** 2).sum(1)
        n_pixels = (target < dump).sum(1)
        information = (weights[target] * kernels**2).sum(1)  # Fisher information of the flux alone
        flux_errors = 1.0 / torch.sqrt(torch.clamp(information, min=1e-30))
        loss = 0.5 * float((weights[:-1] * residual[:-1] ** 2).sum()) / pixels.size
    return SceneFit(
        positions=anchors + shift.numpy(),
        fluxes=flux.numpy().copy(),
        flux_errors=flux_errors.numpy(),
        chi2=chi2.numpy(),
        chi2_null=chi2_null.numpy(),
        n_pixels=n_pixels.numpy(),
        gain=noise_gain,
        loss=loss,
    )


def _estimate_gain(residual: torch.Tensor, signal: torch.Tensor, read_variance: float, current: float) -> float:
    """Variance per unit signal from the bright pixels' residuals.

    The gain ``g`` is the one for which the median of
    ``r**2 / (read_variance + g * signal)`` over the bright pixels is 0.455,
    the median of a chi-squared variable with one degree of freedom: a
    median, so that a few misfit beads do not inflate it.
    """
    signal = torch.clamp(signal, min=0).numpy()
    residual2 = (residual**2).numpy()
    bright = signal > 3 * np.sqrt(read_variance)
    if bright.sum() < 50:
        return current
    r2, s = residual2[bright], signal[bright]

    def median_ratio(g: float) -> float:
        return float(np.median(r2 / (read_variance + g * s)))

    low, high = 0.0, max(current, 1e-6)
    if median_ratio(low) <= 0.455:
        return 0.0
    while median_ratio(high) > 0.455 and high < 1e9:
        high *= 4
    for _ in range(40):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if median_ratio(middle) > 0.455 else (low, middle)
    return 0.5 * (low + high)
