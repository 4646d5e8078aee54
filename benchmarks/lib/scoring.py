"""Scores of predictions against the sharp truth (data range 1; normalised images).

Two ways of scoring a stack of images, both used by the benchmarks and kept
apart because their numbers differ:

- :func:`pooled_scores`: PSNR and SSIM over the whole stack, the centre and
  edge PSNR over the stack's pixels of those regions (the paper benchmarks);
- :func:`scores`: the same mean PSNR and SSIM, the centre and edge PSNR as
  the mean of the per-image figures, and every per-image PSNR (for paired
  comparisons, :func:`lib.stats.paired_difference`).

Regions are those of :func:`napari_coordgate.training.metrics.region_masks`
("centre" r < 0.35, "edge" r > 0.7 of the half-diagonal).
"""

from __future__ import annotations

import numpy as np
import torch


def psnr_by_region(pred: np.ndarray, truth: np.ndarray) -> dict:
    """PSNR (dB) over the whole stack, and over the field's centre and edge regions."""
    from napari_coordgate.training.metrics import psnr, region_masks, regional_psnr

    regions = regional_psnr(pred, truth, region_masks(truth.shape[-2:]))
    return {"psnr": psnr(pred, truth), "psnr_centre": regions["centre"], "psnr_edge": regions["edge"]}


def pooled_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """PSNR / SSIM (mean over images), PSNR at the field centre and edge over the stack's pixels there."""
    from napari_coordgate.training.metrics import ssim

    regions = psnr_by_region(pred, truth)
    return {"psnr": regions["psnr"], "ssim": ssim(pred, truth),
            "psnr_centre": regions["psnr_centre"], "psnr_edge": regions["psnr_edge"]}


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Mean scores, plus the per-image PSNR per region (for paired comparisons)."""
    from napari_coordgate.training.metrics import psnr, region_masks, regional_psnr, ssim

    masks = region_masks(truth.shape[-2:])
    per_image = {name: [regional_psnr(p, t, masks)[name] for p, t in zip(pred, truth)] for name in masks}
    per_image["whole"] = [psnr(p, t) for p, t in zip(pred, truth)]
    return {"psnr": psnr(pred, truth), "psnr_centre": float(np.mean(per_image["centre"])),
            "psnr_edge": float(np.mean(per_image["edge"])), "ssim": ssim(pred, truth), "per_image": per_image}


def mean_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """:func:`scores` without the per-image lists: ``psnr``, ``psnr_centre``, ``psnr_edge``, ``ssim``."""
    return {k: v for k, v in scores(pred, truth).items() if k != "per_image"}


def predict(model, images: np.ndarray, device="cpu") -> np.ndarray:
    """A network's output for each full-field normalised image (offset (0, 0)), in inference mode."""
    model.eval()
    with torch.inference_mode():
        return np.stack([model(torch.from_numpy(x[None, None]).to(device), (0, 0))[0, 0].float().cpu().numpy()
                         for x in images])


def evaluate(model, images: np.ndarray, truth: np.ndarray, device="cpu", *, per_image: bool = True) -> dict:
    """Score a model on full-field normalised test images (offset (0, 0)).

    :func:`scores`, or with ``per_image=False`` :func:`mean_scores`.
    """
    pred = predict(model, images, device)
    return scores(pred, truth) if per_image else mean_scores(pred, truth)


def psnr_map(pred: np.ndarray, truth: np.ndarray, cells: int = 8) -> list[list[float]]:
    """PSNR of each cell of a ``cells x cells`` grid over the field (MSE averaged over images)."""
    err = np.mean((np.asarray(pred, np.float64) - truth) ** 2, axis=0)
    H, W = err.shape
    ys, xs = np.linspace(0, H, cells + 1).astype(int), np.linspace(0, W, cells + 1).astype(int)
    return [[float(10 * np.log10(1.0 / max(err[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean(), 1e-12)))
             for j in range(cells)] for i in range(cells)]
