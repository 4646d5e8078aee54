"""A wide family of simulated lenses: the training distribution of the base models.

Each draw is a lens with its own optics and aberrations, all in waves at the
pupil rim, at a field point ``(u, v)`` measured from a (possibly decentred)
optical axis in units of the field's half diagonal, ``r = |(u, v)|``:

- defocus: a constant focus error, field curvature ``~ r**2`` and a tilt of
  the focal plane (linear in ``u, v``);
- astigmatism ``~ r**2`` oriented along the azimuth, plus a fixed part;
- coma ``~ r`` pointing radially;
- spherical aberration, constant over the field plus a part ``~ r**2``.

The optics are drawn so that the in-focus PSF is about 1.5 to 4 px wide
(FWHM) and the most aberrated ones reach about 20 px: the range a
microscopist's calibration usually spans. The lenses the benchmarks judge the
base on come from an independent PSF library, not from this family.
"""

from __future__ import annotations

import numpy as np

from ..psf.field_grid import node_coordinates
from ..psf.psf_field import PSFField
from ..psf.optics.pupil import geometric_blur_radius_px, pupil_psf

__all__ = ["random_lens", "LENS_FAMILY"]

#: The ranges each lens parameter is drawn from (uniform unless noted; signs random).
LENS_FAMILY = {
    "wavelength_over_na_px": (3.0, 8.0),  # log-uniform; in-focus FWHM about half of it
    "defocus_centre_waves": (0.0, 0.6),
    "field_curvature_waves": (0.0, 2.5),
    "focal_tilt_waves": (0.0, 1.2),
    "astigmatism_edge_waves": (0.0, 1.5),
    "astigmatism_fixed_waves": (0.0, 0.2),
    "coma_edge_waves": (0.0, 1.0),
    "spherical_waves": (0.0, 0.4),
    "spherical_edge_waves": (0.0, 0.4),
    "axis_offset": (0.0, 0.35),  # of the half diagonal
}
#: Largest kernel of a drawn lens (the blur of larger ones is scaled down to fit).
_MAX_PSF = 79


def random_lens(rng: np.random.Generator, field_shape: tuple[int, int] = (256, 256),
                grid: tuple[int, int] = (6, 6)) -> PSFField:
    """Draw one lens of :data:`LENS_FAMILY` and compute its PSF field.

    Parameters
    ----------
    rng : numpy.random.Generator
        The draw (the same state gives the same lens).
    field_shape : (H, W)
        The field in pixels.
    grid : (gy, gx)
        PSF nodes over the field.

    Returns
    -------
    PSFField
        ``kind="simulated"``; ``metadata["lens"]`` holds the drawn parameters.
    """
    H, W = (int(s) for s in field_shape)
    f = LENS_FAMILY

    def draw(name: str, signed: bool = True) -> float:
        low, high = f[name]
        value = rng.uniform(low, high)
        return float(value * rng.choice((-1.0, 1.0)) if signed else value)

    lo, hi = np.log(f["wavelength_over_na_px"])
    ratio = float(np.exp(rng.uniform(lo, hi)))
    optics = {"na": 1.0, "wavelength_nm": ratio * 100.0, "pixel_size_nm": 100.0}
    radius = draw("axis_offset", signed=False)
    angle = rng.uniform(0, 2 * np.pi)
    tilt_angle, astig_angle = rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    lens = {
        "wavelength_over_na_px": ratio,
        "axis_offset": [radius * np.sin(angle), radius * np.cos(angle)],
        "defocus_centre": draw("defocus_centre_waves"),
        "field_curvature": draw("field_curvature_waves"),
        "focal_tilt": [draw("focal_tilt_waves", signed=False), tilt_angle],
        "astigmatism_edge": draw("astigmatism_edge_waves"),
        "astigmatism_fixed": [draw("astigmatism_fixed_waves", signed=False), astig_angle],
        "coma_edge": draw("coma_edge_waves"),
        "spherical": draw("spherical_waves"),
        "spherical_edge": draw("spherical_edge_waves"),
    }
    half_diagonal = max(np.hypot((H - 1) / 2, (W - 1) / 2), 0.5)
    axis = np.array([(H - 1) / 2, (W - 1) / 2]) + np.array(lens["axis_offset"]) * half_diagonal

    def aberrations(y: float, x: float, strength: float = 1.0) -> dict:
        u, v = (y - axis[0]) / half_diagonal, (x - axis[1]) / half_diagonal
        r2, theta = u * u + v * v, np.arctan2(u, v)
        tilt, tilt_dir = lens["focal_tilt"]
        fixed, fixed_dir = lens["astigmatism_fixed"]
        defocus = lens["defocus_centre"] + lens["field_curvature"] * r2 + tilt * (u * np.sin(tilt_dir) + v * np.cos(tilt_dir))
        astig = (lens["astigmatism_edge"] * r2 * np.array([np.cos(2 * theta), np.sin(2 * theta)])
                 + fixed * np.array([np.cos(2 * fixed_dir), np.sin(2 * fixed_dir)]))
        r = np.sqrt(r2)
        return {"defocus": strength * defocus,
                "astigmatism": (strength * float(astig[0]), strength * float(astig[1])),
                "coma": (strength * lens["coma_edge"] * r * np.sin(theta), strength * lens["coma_edge"] * r * np.cos(theta)),
                "spherical": strength * (lens["spherical"] + lens["spherical_edge"] * r2)}

    ys, xs = node_coordinates(H, grid[0]), node_coordinates(W, grid[1])
    nodes = [(y, x) for y in ys for x in xs]

    def worst_radius(strength: float) -> float:
        out = 0.0
        for y, x in nodes:
            a = aberrations(y, x, strength)
            out = max(out, geometric_blur_radius_px(**optics, defocus=a["defocus"],
                                                    astigmatism=float(np.hypot(*a["astigmatism"])),
                                                    coma=float(np.hypot(*a["coma"])), spherical=a["spherical"]))
        return out

    # the kernel holds the geometric blur plus the diffraction tails; scale the aberrations down to fit
    margin = 3.0 * ratio
    strength = 1.0
    limit = min(_MAX_PSF, (min(H, W) - 1) // 2 * 2 - 1)
    while strength > 0.05 and 2 * (0.75 * worst_radius(strength) + margin) + 1 > limit:
        strength *= 0.85
    size = int(min(limit, 2 * np.ceil(0.75 * worst_radius(strength) + margin) + 1))
    size += 1 - size % 2
    psfs = np.array([pupil_psf(size, **optics, **aberrations(y, x, strength)) for y, x in nodes])
    psfs = psfs.reshape(len(ys), len(xs), size, size)
    lens["strength"] = strength
    return PSFField(psfs, (H, W), kind="simulated", metadata={"lens": lens, **optics, "family": "base"})
