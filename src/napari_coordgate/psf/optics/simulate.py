"""simulate_lens: a PSF field of a lens whose aberrations grow towards the field edge."""

from __future__ import annotations

import numpy as np

from ..field_grid import node_coordinates

from ..kernels import psf_fwhm
from ..psf_field import PSFField
from .pupil import geometric_blur_radius_px, pupil_psf
from ...validation import int_pair, integer, number

__all__ = ["simulate_lens"]

#: Fraction of the worst PSF's energy the default ``psf_size`` must hold.
_ENERGY_FRACTION = 0.98


def simulate_lens(
    field_shape: tuple[int, int] = (256, 256),
    *,
    grid: tuple[int, int] = (8, 8),
    psf_size: int | None = None,
    na: float = 0.8,
    wavelength_nm: float = 520.0,
    pixel_size_nm: float = 130.0,
    defocus_edge: float = 2.0,
    astigmatism_edge: float = 0.0,
    coma_edge: float = 0.0,
    seed: int | None = None,
) -> PSFField:
    """PSF field of a simulated lens, sharp on axis and aberrated towards the edge.

    At a field point at normalised distance ``r`` from the optical axis
    (``r = 1`` at the field corner) and azimuth ``theta`` the pupil phase
    (see :mod:`.pupil`) has, in waves,

    - defocus ``defocus_edge * r**2`` (field curvature),
    - astigmatism ``astigmatism_edge * r**2`` oriented along ``theta``
      (radial/tangential foci),
    - coma ``coma_edge * r`` pointing along ``theta`` (radially).

    Parameters
    ----------
    field_shape : (H, W)
        Field size in pixels.
    grid : (gy, gx)
        Number of grid cells; one PSF is computed at each cell centre.
    psf_size : int, optional
        Odd kernel size. By default the smallest odd size holding 98 % of
        the energy of the most aberrated PSF, at least ``4 x`` the on-axis
        FWHM, and capped below the field size.
    na, wavelength_nm, pixel_size_nm : float
        Numerical aperture, wavelength and object-plane pixel size.
    defocus_edge : float
        Peak defocus wavefront error at the field corner, in waves. The default
        of 2 waves blurs a point at the corner into a disc about
        ``4 * wavelength / NA`` wide (20 px with the default optics).
    astigmatism_edge, coma_edge : float
        Astigmatism and coma at the field corner, in waves.
    seed : int, optional
        If given, the lens gets a random manufacturing error: the optical axis
        is displaced from the field centre (by about 5 % of the half
        diagonal) and a small field-independent astigmatism (up to 0.15 waves,
        random orientation) is added. ``None`` gives the ideal, centred lens.

    Returns
    -------
    PSFField
        ``kind="simulated"``; the lens parameters are in ``metadata``.

    Raises
    ------
    ValueError
        If the field is smaller than the PSF or an argument is out of range.
    """
    H, W = int_pair("field_shape", field_shape, low=1)
    gy, gx = int_pair("grid", grid, low=1)
    if gy > H or gx > W:
        raise ValueError(f"grid ({gy}, {gx}) has more cells than the ({H}, {W}) field has pixels; use a coarser grid")
    optics = dict(na=number("na", na, low=0, high=1.6, low_open=True, high_open=True),
                  wavelength_nm=number("wavelength_nm", wavelength_nm, low=0, low_open=True),
                  pixel_size_nm=number("pixel_size_nm", pixel_size_nm, low=0, low_open=True))
    defocus_edge = number("defocus_edge", defocus_edge, low=-50, high=50)
    astigmatism_edge = number("astigmatism_edge", astigmatism_edge, low=-50, high=50)
    coma_edge = number("coma_edge", coma_edge, low=-50, high=50)

    rng = np.random.default_rng(seed) if seed is not None else None
    half_diagonal = max(np.hypot((H - 1) / 2, (W - 1) / 2), 0.5)
    axis = np.array([(H - 1) / 2, (W - 1) / 2])
    fixed_astig = np.zeros(2)
    if rng is not None:
        axis = axis + rng.normal(0.0, 0.05, 2) * half_diagonal
        angle = rng.uniform(0, np.pi)
        fixed_astig = rng.uniform(0, 0.15) * np.array([np.cos(2 * angle), np.sin(2 * angle)])

    def aberrations(y: float, x: float) -> dict:
        u, v = (y - axis[0]) / half_diagonal, (x - axis[1]) / half_diagonal
        r, theta = np.hypot(u, v), np.arctan2(u, v)
        astig = astigmatism_edge * r**2 * np.array([np.cos(2 * theta), np.sin(2 * theta)]) + fixed_astig
        return dict(
            defocus=defocus_edge * r**2,
            astigmatism=(float(astig[0]), float(astig[1])),
            coma=(coma_edge * r * np.sin(theta), coma_edge * r * np.cos(theta)),
        )

    largest_odd = min(H, W) - 1 if min(H, W) % 2 == 0 else min(H, W) - 2
    if psf_size is None:
        psf_size, energy = _default_psf_size(aberrations, (H, W), optics, largest_odd)
        if energy is not None and energy < _LEAST_ENERGY:
            raise ValueError(
                f"a ({H}, {W}) field is too small for this lens: the largest kernel that fits ({psf_size} px) holds "
                f"only {100 * energy:.0f}% of the most blurred PSF's energy; use a larger field or smaller aberrations"
            )
    else:
        psf_size = integer("psf_size", psf_size, low=1)
        if psf_size % 2 == 0:
            raise ValueError(f"psf_size must be a positive odd integer; got {psf_size}")
        energy = None
    if psf_size >= min(H, W) or psf_size < 1:
        raise ValueError(
            f"field of shape {(H, W)} is smaller than the PSF size {psf_size}: "
            "use a larger field or a smaller psf_size"
        )

    ys, xs = node_coordinates(H, gy), node_coordinates(W, gx)
    psfs = np.array([[pupil_psf(psf_size, **optics, **aberrations(y, x)) for x in xs] for y in ys])
    metadata = {
        **optics,
        "defocus_edge": float(defocus_edge),
        "astigmatism_edge": float(astigmatism_edge),
        "coma_edge": float(coma_edge),
        "seed": seed,
        "optical_axis": axis.tolist(),
        "fixed_astigmatism": fixed_astig.tolist(),
        "worst_psf_energy_in_kernel": energy,
    }
    return PSFField(psfs, (H, W), kind="simulated", metadata=metadata)


def _default_psf_size(aberrations, field_shape, optics, largest_odd: int) -> tuple[int, float | None]:
    """Smallest odd kernel holding most of the worst PSF's energy, within the cap, and the energy it holds.

    The worst PSF is computed on a canvas wider than its blur (not clipped
    to the field), so the energy is a fraction of the whole PSF's.
    """
    if largest_odd < 3:
        return max(largest_odd, 3), None  # too small a field: the caller raises
    H, W = field_shape
    corners = [(0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)]
    worst = max(corners, key=lambda p: _blur_radius(aberrations(*p), optics))
    trial_radius = _blur_radius(aberrations(*worst), optics) + 6 * optics["wavelength_nm"] / (optics["na"] * optics["pixel_size_nm"])
    trial = min(2 * int(np.ceil(1.5 * trial_radius)) + 1, _LARGEST_TRIAL)
    psf = pupil_psf(trial, **optics, **aberrations(*worst))
    centre = trial // 2
    enclosed = np.array([psf[centre - h : centre + h + 1, centre - h : centre + h + 1].sum() for h in range(centre + 1)])
    half = int(np.argmax(enclosed >= _ENERGY_FRACTION)) if enclosed[-1] >= _ENERGY_FRACTION else centre
    on_axis = pupil_psf(trial, **optics)
    half = max(half, int(np.ceil(2 * psf_fwhm(on_axis))))
    size = min(2 * half + 1, largest_odd)
    return size, float(enclosed[min(size // 2, centre)])


#: Widest canvas on which the default kernel size is measured.
_LARGEST_TRIAL = 511
#: A default kernel must hold at least this share of the most blurred PSF's energy.
_LEAST_ENERGY = 0.5


def _blur_radius(aberration: dict, optics: dict) -> float:
    return geometric_blur_radius_px(
        **optics,
        defocus=aberration["defocus"],
        astigmatism=float(np.hypot(*aberration["astigmatism"])),
        coma=float(np.hypot(*aberration["coma"])),
    )
