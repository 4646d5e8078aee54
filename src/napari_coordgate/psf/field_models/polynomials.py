"""Field positions and the low-order 2D polynomials the smooth PSF field models are built from.

Field positions are written in normalised coordinates ``(u, v)``: the
distance from the field centre along y and x divided by the half-diagonal,
so the corners lie at ``|(u, v)| = 1`` (the radius used by the region masks
of :mod:`napari_coordgate.training.metrics`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["field_uv", "n_monomials", "monomials", "monomial_names"]


def field_uv(positions: np.ndarray, field_shape: tuple[int, int]) -> np.ndarray:
    """Normalised field coordinates of pixel positions.

    Parameters
    ----------
    positions : (n, 2) array_like
        ``(y, x)`` pixel positions.
    field_shape : (H, W)

    Returns
    -------
    (n, 2) ndarray of float64
        ``(u, v)``, 0 at the field centre, ``|(u, v)| = 1`` at the corners.
    """
    H, W = field_shape
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    half_diagonal = max(float(np.hypot(*centre)), 0.5)
    return (np.asarray(positions, dtype=np.float64).reshape(-1, 2) - centre) / half_diagonal


def n_monomials(order: int) -> int:
    """Number of monomials ``u**a v**b`` with ``a + b <= order``."""
    return (order + 1) * (order + 2) // 2


def monomial_names(order: int) -> list[str]:
    """Readable names (``"1"``, ``"u"``, ``"v"``, ``"u^2"``, ``"uv"``, ...) in :func:`monomials` order."""
    names = []
    for total in range(order + 1):
        for a in range(total, -1, -1):
            b = total - a
            parts = [f"u^{a}" if a > 1 else "u" * a, f"v^{b}" if b > 1 else "v" * b]
            names.append("".join(parts) or "1")
    return names


def monomials(uv: torch.Tensor, order: int) -> torch.Tensor:
    """The monomials ``u**a v**b`` (``a + b <= order``) at each position.

    Parameters
    ----------
    uv : (n, 2) tensor
        Normalised field positions.
    order : int
        Largest total degree.

    Returns
    -------
    (n, n_monomials(order)) tensor
    """
    u, v = uv[:, 0], uv[:, 1]
    columns = []
    for total in range(order + 1):
        for a in range(total, -1, -1):
            columns.append(u**a * v ** (total - a))
    return torch.stack(columns, dim=1)
