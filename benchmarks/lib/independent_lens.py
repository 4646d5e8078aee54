"""Test lenses, bead slides, real specimens and metrics for judging a bead calibration.

Everything optical here is computed with an independent PSF library, pyotf
(``pip install napari-coordgate[bench]``): its vectorial high-NA pupil model
(:class:`pyotf.otf.HanserPSF` with ``vec_corr="total"`` and the sine
condition), exact axial defocus (the pupil propagated by ``kz * z``), and
Noll-ordered, RMS-normalised Zernike phase aberrations
(:func:`pyotf.otf.apply_aberration`). None of this project's pupil code
(``napari_coordgate.psf.optics.pupil``) is used, so a calibration cannot score well
merely by sharing the simulator's assumptions.

Each PSF is pixel-integrated (the camera pixel is a square box) and moved,
with an exact Fourier shift, so that its intensity centroid sits where it
should: at the kernel centre for a field node, at the bead's true sub-pixel
position on a slide. Blurring therefore never moves an object's centre of
mass, and a bead's true position is the centroid of its image.

Pieces
------
- :func:`independent_lens` and :data:`LENSES` / :data:`OPTICS`: the true PSF
  field of a named lens, sampled on a fine grid of nodes.
- :func:`render_slide`: a noisy bead slide (several layouts), each bead
  computed by the library at its own position.
- :func:`specimens`: crops of real microscopy images that ship inside
  installed wheels (no download).
- :func:`psf_metrics` and :func:`blur_fidelity`: how close a calibrated field
  is to the truth.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from napari_coordgate.psf import PSFField
from napari_coordgate.psf.field_grid import node_coordinates
from napari_coordgate.psf.kernels import psf_fwhm

__all__ = [
    "LENSES",
    "OPTICS",
    "LAYOUTS",
    "LensSpec",
    "independent_lens",
    "library_psf",
    "render_slide",
    "specimen_sources",
    "specimens",
    "field_points",
    "psf_metrics",
    "blur_fidelity",
]

#: Side of the square canvas (in camera pixels) on which the library computes one PSF.
_CANVAS = 128
#: Fraction of the most aberrated PSF's energy the kernel must hold.
_ENERGY_FRACTION = 0.98


# --------------------------------------------------------------------------- lenses
@dataclass(frozen=True)
class LensSpec:
    """Optics and field-dependent aberrations of one test lens.

    Field coordinates are normalised: ``u`` (rows, y) and ``v`` (columns,
    x) are the offsets from the optical axis divided by the field's half
    diagonal, so ``hypot(u, v) = 1`` at the corners of a centred lens.
    Aberrations at a field point are

    - defocus (axial, in nm; positive = further from the objective)
      ``defocus_nm[0] + defocus_nm[1] * rho**2 + tilt_nm[0] * u + tilt_nm[1] * v``,
    - astigmatism (waves RMS, oriented along the field azimuth)
      ``astigmatism * rho**2`` as Zernike ``Z(2, 2) * (v**2 - u**2) + Z(2, -2) * 2 u v``,
    - coma (waves RMS, pointing along the field azimuth) ``coma * rho`` as
      ``Z(3, 1) * v + Z(3, -1) * u``,
    - field-independent terms ``constant`` (waves RMS per Noll index), e.g.
      residual spherical aberration or a manufacturing astigmatism.

    Attributes
    ----------
    na, wavelength_nm, pixel_size_nm, immersion_index : float
        Numerical aperture, emission wavelength, object-plane pixel size,
        refractive index of the immersion/sample medium.
    axis : (float, float)
        Optical axis offset from the field centre, ``(dy, dx)`` in units of
        the half diagonal.
    description : str
        One line for tables and reports.
    """

    na: float
    wavelength_nm: float
    pixel_size_nm: float
    immersion_index: float
    axis: tuple[float, float] = (0.0, 0.0)
    defocus_nm: tuple[float, float] = (0.0, 0.0)
    tilt_nm: tuple[float, float] = (0.0, 0.0)
    astigmatism: float = 0.0
    coma: float = 0.0
    constant: dict[int, float] = field(default_factory=dict)
    description: str = ""

    def normalised(self, y: np.ndarray, x: np.ndarray, field_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v)``: field position relative to the optical axis, in half diagonals."""
        H, W = field_shape
        half_diagonal = np.hypot((H - 1) / 2, (W - 1) / 2)
        u = (np.asarray(y, float) - (H - 1) / 2) / half_diagonal - self.axis[0]
        v = (np.asarray(x, float) - (W - 1) / 2) / half_diagonal - self.axis[1]
        return u, v

    def aberrations(self, y: float, x: float, field_shape: tuple[int, int]) -> tuple[float, np.ndarray]:
        """Defocus (nm) and Noll-ordered Zernike phase coefficients (waves RMS) at field ``(y, x)``.

        Returns
        -------
        defocus_nm : float
        waves : (11,) ndarray
            ``waves[j - 1]`` is the coefficient of Noll index ``j``.
        """
        u, v = (float(a) for a in self.normalised(y, x, field_shape))
        rho2 = u * u + v * v
        defocus = self.defocus_nm[0] + self.defocus_nm[1] * rho2 + self.tilt_nm[0] * u + self.tilt_nm[1] * v
        waves = np.zeros(11)
        waves[5] = self.astigmatism * (v * v - u * u)  # Noll 6: Z(2, 2)
        waves[4] = self.astigmatism * 2 * u * v  # Noll 5: Z(2, -2)
        waves[7] = self.coma * v  # Noll 8: Z(3, 1)
        waves[6] = self.coma * u  # Noll 7: Z(3, -1)
        for noll, value in self.constant.items():
            waves[int(noll) - 1] += value
        return float(defocus), waves

    def optics(self) -> dict:
        """The optics a calibration may be told (keys as ``calibrate_from_beads`` takes them)."""
        return {"na": self.na, "wavelength_nm": self.wavelength_nm, "pixel_size_nm": self.pixel_size_nm,
                "immersion_index": self.immersion_index}


#: The test lenses. All are sampled at or above Nyquist (pixel <= wavelength / (4 NA)).
LENSES: dict[str, LensSpec] = {
    # Water-immersion NA 1.2: field curvature and astigmatism grow with rho**2, strong coma with rho.
    "coma": LensSpec(
        na=1.2, wavelength_nm=560.0, pixel_size_nm=110.0, immersion_index=1.333,
        defocus_nm=(0.0, 300.0), astigmatism=0.10, coma=0.12, constant={11: 0.02},
        description="NA 1.2 water, centred axis: defocus+astig ~rho^2, strong coma ~rho",
    ),
    # Dry NA 0.9 with its axis displaced up-left, weaker coma, a manufacturing astigmatism.
    "decentred": LensSpec(
        na=0.9, wavelength_nm=520.0, pixel_size_nm=130.0, immersion_index=1.0,
        axis=(-0.12, -0.12), defocus_nm=(0.0, 550.0), astigmatism=0.14, coma=0.06,
        constant={5: 0.04, 6: -0.02},
        description="NA 0.9 air, axis displaced by 17% of the half diagonal, astig-dominated",
    ),
    # Water-dipping NA 1.0 looking at a tilted sample: defocus linear in x, plus astigmatism.
    "tilted": LensSpec(
        na=1.0, wavelength_nm=600.0, pixel_size_nm=120.0, immersion_index=1.333,
        defocus_nm=(250.0, 0.0), tilt_nm=(150.0, 900.0), astigmatism=0.08, constant={8: 0.03},
        description="NA 1.0 water, tilted sample: defocus linear across x (and a little y), astig ~rho^2",
    ),
}

#: Optics of each lens, as a calibration would be told them.
OPTICS: dict[str, dict] = {name: spec.optics() for name, spec in LENSES.items()}


def _library_version() -> str:
    import pyotf

    return str(getattr(pyotf, "__version__", "unknown")).lstrip("v")


def library_psf(spec: LensSpec, defocus_nm: float, waves: np.ndarray, canvas: int = _CANVAS) -> np.ndarray:
    """Intensity PSF computed by pyotf on a ``canvas x canvas`` grid of camera pixels.

    Parameters
    ----------
    spec : LensSpec
        The optics.
    defocus_nm : float
        Axial defocus, propagated exactly by the library (``kz * z``).
    waves : (11,) ndarray
        Noll-ordered Zernike phase coefficients in waves RMS.
    canvas : int
        Grid size; the PSF is periodic with this period.

    Returns
    -------
    (canvas, canvas) ndarray
        Point samples of the (vectorial, unpolarised) intensity PSF, peak
        near ``(canvas // 2, canvas // 2)``, unit sum.
    """
    from pyotf.otf import HanserPSF, apply_aberration

    model = HanserPSF(spec.wavelength_nm, spec.na, spec.immersion_index, spec.pixel_size_nm, canvas,
                      zrange=[float(defocus_nm)], vec_corr="total", condition="sine")
    model = apply_aberration(model, np.zeros(len(waves)), 2 * np.pi * np.asarray(waves, float))
    intensity = np.asarray(model.PSFi, np.float64).reshape(canvas, canvas)
    return intensity / intensity.sum()


def _centroid(kernel: np.ndarray) -> np.ndarray:
    weights = np.clip(kernel, 0, None)
    rows, cols = np.indices(kernel.shape)
    total = weights.sum()
    return np.array([(weights * rows).sum() / total, (weights * cols).sum() / total])


def placed_kernel(intensity: np.ndarray, k: int, target: tuple[float, float] | None = None, *,
                  return_fraction: bool = False) -> np.ndarray | tuple[np.ndarray, float]:
    """Pixel-integrate a library PSF and cut a ``k x k`` kernel whose centroid is at ``target``.

    The PSF samples are band-limited (sampled at or above Nyquist), so a
    Fourier phase ramp shifts them exactly and a ``sinc`` factor integrates
    them over the square pixel. The shift is refined until the centroid of
    the cut-out kernel (not of the whole canvas) is at ``target`` to within
    1e-4 px.

    Parameters
    ----------
    intensity : (n, n) ndarray
        From :func:`library_psf`.
    k : int
        Odd kernel size, ``k < n``.
    target : (y, x), optional
        Wanted centroid in kernel coordinates; the centre ``(k // 2, k // 2)`` by default.
    return_fraction : bool
        Also return the fraction of the PSF's energy inside the kernel.

    Returns
    -------
    kernel : (k, k) ndarray
        Non-negative, unit sum.
    fraction : float
        Only with ``return_fraction``.
    """
    n = intensity.shape[0]
    target = np.array([k // 2, k // 2] if target is None else target, float)
    start = n // 2 - k // 2
    freq = np.fft.fftfreq(n)
    spectrum = np.fft.fft2(intensity) * np.sinc(freq)[:, None] * np.sinc(freq)[None, :]
    shift = start + target - _centroid(intensity)  # first guess: the whole-canvas centroid to the target
    for _ in range(10):
        ramp = np.exp(-2j * np.pi * shift[0] * freq)[:, None] * np.exp(-2j * np.pi * shift[1] * freq)[None, :]
        crop = np.clip(np.real(np.fft.ifft2(spectrum * ramp))[start:start + k, start:start + k], 0, None)
        error = target - _centroid(crop)
        shift = shift + error
        if np.max(np.abs(error)) < 1e-4:
            break
    fraction = float(crop.sum() / intensity.sum())
    kernel = crop / crop.sum()
    return (kernel, fraction) if return_fraction else kernel


def _psf_size(spec: LensSpec, field_shape: tuple[int, int]) -> int:
    """Smallest odd kernel holding ``_ENERGY_FRACTION`` of the energy of the worst PSF in the field."""
    H, W = field_shape
    # the worst PSFs sit on the border (the aberrations are low-order polynomials of the field position)
    probes = [(y, x) for y in (0, (H - 1) / 2, H - 1) for x in (0, (W - 1) / 2, W - 1)]
    limit = min(_CANVAS - 16, min(H, W) // 2 * 2 - 1)
    needed = 9
    for y, x in probes:
        intensity = library_psf(spec, *spec.aberrations(y, x, field_shape))
        while needed < limit and placed_kernel(intensity, needed, return_fraction=True)[1] < _ENERGY_FRACTION:
            needed += 2
    return int(needed)


@functools.lru_cache(maxsize=16)
def _cached_lens(name: str, field_shape: tuple[int, int], grid: tuple[int, int]) -> PSFField:
    spec = LENSES[name]
    k = _psf_size(spec, field_shape)
    gy, gx = grid
    ys, xs = node_coordinates(field_shape[0], gy), node_coordinates(field_shape[1], gx)
    psfs = np.empty((gy, gx, k, k))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            psfs[i, j] = placed_kernel(library_psf(spec, *spec.aberrations(y, x, field_shape)), k)
    H, W = field_shape
    corner_psfs = [placed_kernel(library_psf(spec, *spec.aberrations(y, x, field_shape)), k)
                   for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1))]
    centre = placed_kernel(library_psf(spec, *spec.aberrations((H - 1) / 2, (W - 1) / 2, field_shape)), k)
    corner_ab = [spec.aberrations(y, x, field_shape) for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1))]
    centre_ab = spec.aberrations((H - 1) / 2, (W - 1) / 2, field_shape)
    metadata = {
        "lens": name,
        "description": spec.description,
        "library": "pyotf",
        "library_version": _library_version(),
        "model": ("pyotf.otf.HanserPSF, vectorial (vec_corr='total', unpolarised isotropic emitter), sine "
                  "condition; defocus = exact axial propagation exp(2 pi i kz z); aberrations = Noll-ordered "
                  "RMS-normalised Zernike phase (pyotf.otf.apply_aberration); pixel-integrated; each PSF "
                  "Fourier-shifted so its intensity centroid is at the kernel centre"),
        **spec.optics(),
        "spec": {key: value for key, value in asdict(spec).items()},
        "aberration_law": LensSpec.__doc__.split("Attributes")[0].strip(),
        "psf_size": k,
        "grid": list(grid),
        "canvas_px": _CANVAS,
        "fwhm_centre_px": psf_fwhm(centre),
        "fwhm_corners_px": [psf_fwhm(p) for p in corner_psfs],
        "aberrations_centre": {"defocus_nm": centre_ab[0], "zernike_waves_rms": centre_ab[1].tolist()},
        "aberrations_corners": [{"defocus_nm": d, "zernike_waves_rms": w.tolist()} for d, w in corner_ab],
    }
    return PSFField(psfs, field_shape, kind="custom", metadata=metadata)


def independent_lens(name: str, field_shape: tuple[int, int] = (256, 256), grid: tuple[int, int] = (16, 16)) -> PSFField:
    """True PSF field of a test lens, computed with pyotf on a fine grid of nodes.

    Parameters
    ----------
    name : str
        A key of :data:`LENSES`.
    field_shape : (H, W)
        Field size in pixels.
    grid : (gy, gx)
        Grid cells; one library PSF at each cell centre.

    Returns
    -------
    PSFField
        ``kind="custom"``; each node PSF pixel-integrated and centroid-centred,
        the kernel holding at least 98 % of the worst PSF's energy.
        ``metadata`` records the library and version, the optics (``na``,
        ``wavelength_nm``, ``pixel_size_nm``, ``immersion_index``), the
        aberration model and coefficients, and FWHM at the centre and corners.
    """
    if name not in LENSES:
        raise ValueError(f"unknown lens {name!r}; choose one of {sorted(LENSES)}")
    field = _cached_lens(name, tuple(int(s) for s in field_shape), tuple(int(g) for g in grid))
    return PSFField(field.psfs, field.field_shape, kind=field.kind, metadata=field.metadata)


# ------------------------------------------------------------------------ bead slides
#: Bead-slide layouts understood by :func:`render_slide`.
LAYOUTS = ("dense", "grid", "partial", "clipped", "sparse", "sensor")
#: Beads on a ``"sensor"`` slide, whatever the field's size: a whole-sensor calibration slide (issue #21).
SENSOR_BEADS = 1000


def _dart_throw(rng: np.random.Generator, n: int, low: np.ndarray, high: np.ndarray, spacing: float,
                existing: np.ndarray | None = None) -> np.ndarray:
    points = np.empty((0, 2)) if existing is None else np.asarray(existing, float).reshape(-1, 2)
    placed = 0
    for _ in range(200 * max(n, 1)):
        if placed == n:
            break
        candidate = rng.uniform(low, high)
        if len(points) and np.min(np.hypot(*(points - candidate).T)) < spacing:
            continue
        points = np.vstack([points, candidate])
        placed += 1
    return points[len(points) - placed:]


def slide_positions(layout: str, field_shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Bead centres ``(y, x)`` for a layout (see :func:`render_slide`)."""
    H, W = field_shape
    scale = np.sqrt(H * W / 256.0**2)  # keep the bead density of a 256 x 256 slide
    if layout == "dense":
        return _dart_throw(rng, int(round(140 * scale**2)), np.array([2.0, 2.0]), np.array([H - 3.0, W - 3.0]), 8.0)
    if layout == "grid":
        step = 28.0
        ys = np.arange(step / 2 + 2, H - 2, step)
        xs = np.arange(step / 2 + 2, W - 2, step)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        points = np.stack([yy.ravel(), xx.ravel()], 1) + rng.uniform(-3, 3, size=(yy.size, 2))
        keep = rng.uniform(size=len(points)) > 0.05  # a few grid sites are empty
        return np.clip(points[keep], 1.0, [H - 2.0, W - 2.0])
    if layout == "sparse":  # the calibration issue's slide: about 150 beads at random on 384 x 384
        return _dart_throw(rng, int(round(66 * scale**2)), np.array([2.0, 2.0]), np.array([H - 3.0, W - 3.0]), 12.0)
    if layout == "sensor":  # about 1000 beads at random, at least 24 px apart, on a field of any size
        return _dart_throw(rng, SENSOR_BEADS, np.array([2.0, 2.0]), np.array([H - 3.0, W - 3.0]), 24.0)
    if layout == "partial":
        return _dart_throw(rng, int(round(75 * scale**2)), np.array([2.0, 2.0]), np.array([H - 3.0, 0.55 * W]), 10.0)
    if layout == "clipped":
        edge = []
        for _ in range(24):
            side = rng.integers(4)
            depth = rng.choice([-0.8, -0.3, 0.0, 0.4, 1.0, 2.0, 3.0])  # px inside the border (<0: outside)
            along = rng.uniform(4, (W if side < 2 else H) - 5)
            y, x = {0: (depth, along), 1: (H - 1 - depth, along), 2: (along, depth), 3: (along, W - 1 - depth)}[side]
            edge.append((y, x))
        edge = np.array(edge)
        for corner in ((0.5, 0.5), (0.0, W - 1.0), (H - 1.5, 1.0), (H - 1.0, W - 1.0)):
            edge = np.vstack([edge, corner])
        inner = _dart_throw(rng, int(round(60 * scale**2)), np.array([6.0, 6.0]), np.array([H - 7.0, W - 7.0]),
                            16.0, existing=edge)
        return np.vstack([edge, inner])
    raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")


def render_slide(
    lens: str | PSFField,
    layout: str = "dense",
    seed: int = 0,
    *,
    field_shape: tuple[int, int] = (256, 256),
    brightness: tuple[float, float] = (2e3, 2e4),
    background: float = 100.0,
    read_noise: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy bead slide imaged through a test lens.

    Every bead is a point source whose PSF the library computes for the
    bead's own field position (not interpolated from a field grid), then
    pixel-integrated and shifted so that the centroid of its ``k x k`` image
    (``k`` the lens field's kernel size) is exactly at the bead's true
    sub-pixel position. Beads near the border are cut off by it.

    Parameters
    ----------
    lens : str or PSFField
        A lens name, or a field made by :func:`independent_lens` (its lens and
        field shape are used).
    layout : {"dense", "grid", "partial", "clipped", "sparse"}
        ``dense``: ~140 random beads at least 8 px apart (neighbours' tails
        overlap). ``grid``: a jittered grid 28 px apart with ~5 % empty sites
        (~77 beads). ``partial``: ~75 beads only in the left 55 % of the field.
        ``clipped``: 28 beads whose centres are within 3 px of the border
        (some on it, some just outside) and ~60 sparse beads inside.
        ``sparse``: ~66 random beads at least 12 px apart (148 on a 384 x 384
        field: the calibration issue's slide of about 150 beads).
        ``sensor``: 1000 random beads at least 24 px apart, whatever the
        field's size (a whole-sensor slide).
        (Counts for 256 x 256; larger fields keep the density, except ``sensor``.)
    seed : int
        Seed for positions, brightness and noise.
    field_shape : (H, W)
        Used when ``lens`` is a name.
    brightness : (low, high)
        Photons per bead, uniform in this range.
    background : float
        Background photons per pixel.
    read_noise : float
        Gaussian read noise (photons, standard deviation).

    Returns
    -------
    image : (H, W) float32 ndarray
        Photons (Poisson) plus read noise.
    true_positions : (n, 2) ndarray
        ``(y, x)`` of every bead, including those partly outside the image.
    true_fluxes : (n,) ndarray
        Photons of each bead (before noise and border clipping).
    """
    if isinstance(lens, PSFField):
        name = lens.metadata.get("lens")
        if name not in LENSES or lens.metadata.get("library") != "pyotf":
            raise ValueError("render_slide needs a lens name or a field made by independent_lens")
        field_shape, k = lens.field_shape, lens.psf_size
    else:
        name = lens
        if name not in LENSES:
            raise ValueError(f"unknown lens {name!r}; choose one of {sorted(LENSES)}")
        k = _psf_size(LENSES[name], tuple(field_shape))
    spec = LENSES[name]
    H, W = (int(s) for s in field_shape)

    def kernel_at(y, x, target):
        return placed_kernel(library_psf(spec, *spec.aberrations(y, x, (H, W))), k, target)

    return noisy_slide(kernel_at, layout, (H, W), k, np.random.default_rng(seed), brightness, background, read_noise)


def noisy_slide(kernel_at, layout: str, field_shape: tuple[int, int], k: int, rng: np.random.Generator,
                brightness: tuple[float, float], background: float,
                read_noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bead slide of ``layout`` whose beads are drawn by ``kernel_at(y, x, target)`` (a ``k x k`` kernel, its
    centroid at ``target``), with Poisson and read noise: ``(image, true_positions, true_fluxes)`` as
    :func:`render_slide` returns them."""
    H, W = field_shape
    positions = slide_positions(layout, (H, W), rng)
    fluxes = rng.uniform(brightness[0], brightness[1], size=len(positions))
    expected = np.zeros((H + 2 * k, W + 2 * k))  # room for kernels hanging over the border
    r = k // 2
    for (y, x), flux in zip(positions, fluxes):
        iy, ix = int(np.round(y)), int(np.round(x))
        expected[k + iy - r:k + iy + r + 1, k + ix - r:k + ix + r + 1] += flux * kernel_at(y, x, (r + y - iy, r + x - ix))
    expected = expected[k:k + H, k:k + W] + background
    image = rng.poisson(expected) + rng.normal(0.0, read_noise, size=(H, W))
    return image.astype(np.float32), positions, fluxes


# -------------------------------------------------------------------------- specimens
def _napari_cells() -> dict[str, np.ndarray]:
    """The two fluorescence channels of the image inside napari's bundled screenshot (if napari is installed)."""
    try:
        from importlib.resources import files

        from skimage.io import imread

        rgba = imread(str(files("napari.resources") / "multichannel_cells.png"))
    except (ImportError, FileNotFoundError, OSError, ModuleNotFoundError):
        return {}
    canvas = rgba[85:905, 490:1305, :3].astype(np.float64)  # the viewer canvas, inside its black frame
    return {"napari_cells_nuclei": canvas[..., 1], "napari_cells_membrane": np.minimum(canvas[..., 0], canvas[..., 2])}


@functools.lru_cache(maxsize=1)
def _sources() -> tuple[tuple[str, np.ndarray], ...]:
    from skimage import data
    from skimage.color import rgb2hed

    hed = rgb2hed(data.immunohistochemistry())
    found = {
        "ihc_hematoxylin": hed[..., 0],  # nuclei of an immunohistochemistry section (stain density)
        "ihc_dab": hed[..., 2],  # DAB-stained membranes
        "cell": data.cell().astype(np.float64),  # a cell in saline (light microscope)
        "microaneurysms": 255.0 - data.microaneurysms().astype(np.float64),  # retinal vessels, made bright
    }
    found.update(_napari_cells())
    return tuple(found.items())


def specimen_sources() -> dict[str, np.ndarray]:
    """The real images :func:`specimens` draws from, by name (float, un-normalised).

    Only images inside installed wheels: scikit-image's ``immunohistochemistry``
    (its hematoxylin and DAB stain channels), ``cell`` and ``microaneurysms``
    (inverted), and, where napari is installed, the two fluorescence
    channels of the cell image in napari's ``multichannel_cells.png``.
    """
    return dict(_sources())


def specimens(field_shape: tuple[int, int] = (256, 256), n: int = 8, seed: int = 0) -> np.ndarray:
    """Sharp full-field specimens cut from real microscopy images.

    Each specimen comes from the next source image in turn: a random square
    crop (between 60 % and 100 % of the source's short side, or the whole
    source when it is smaller than the field), a random one of the 8 flips
    and rotations, resized to ``field_shape`` with anti-aliasing, and
    scaled so that its 0.1 and 99.9 percentiles map to 0 and 1 (clipped).

    Returns
    -------
    (n, H, W) float32 ndarray
        Values in [0, 1]; multiply by a photon count to simulate an exposure.
    """
    from skimage.transform import resize

    H, W = (int(s) for s in field_shape)
    rng = np.random.default_rng(seed)
    sources = _sources()
    out = np.empty((n, H, W), np.float32)
    first = int(rng.integers(len(sources)))
    for i in range(n):
        image = sources[(first + i) % len(sources)][1]
        side = min(image.shape)
        crop = int(side * rng.uniform(0.6, 1.0)) if side > max(H, W) else side
        y0 = int(rng.integers(0, image.shape[0] - crop + 1))
        x0 = int(rng.integers(0, image.shape[1] - crop + 1))
        piece = np.rot90(image[y0:y0 + crop, x0:x0 + crop], int(rng.integers(4)))
        if rng.uniform() < 0.5:
            piece = piece[:, ::-1]
        piece = resize(piece, (H, W), order=1, anti_aliasing=crop > max(H, W))
        low, high = np.percentile(piece, (0.1, 99.9))
        out[i] = np.clip((piece - low) / (high - low if high > low else 1.0), 0, 1)
    return out


# ---------------------------------------------------------------------------- metrics
def field_points(field_shape: tuple[int, int], n: int = 16) -> np.ndarray:
    """A dense ``n x n`` grid of field points spanning 5 %..95 % of each axis, as ``(n*n, 2)``."""
    H, W = field_shape
    ys = np.linspace(0.05 * (H - 1), 0.95 * (H - 1), n)
    xs = np.linspace(0.05 * (W - 1), 0.95 * (W - 1), n)
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def _corners(field_shape: tuple[int, int]) -> np.ndarray:
    H, W = field_shape
    a, b = 0.05 * (H - 1), 0.95 * (H - 1)
    c, d = 0.05 * (W - 1), 0.95 * (W - 1)
    return np.array([(a, c), (a, d), (b, c), (b, d)])


def _central(psf: np.ndarray, k: int) -> np.ndarray:
    s = (psf.shape[0] - k) // 2
    return psf[s:s + k, s:s + k]


def _true_psf_getter(truth: PSFField, exact: bool) -> Callable[[float, float], np.ndarray]:
    name = truth.metadata.get("lens")
    if exact and truth.metadata.get("library") == "pyotf" and name in LENSES:
        spec, k = LENSES[name], truth.psf_size
        return lambda y, x: placed_kernel(library_psf(spec, *spec.aberrations(y, x, truth.field_shape)), k)
    return truth.psf_at


def psf_metrics(calibrated: PSFField, truth: PSFField, *, n: int = 16, exact: bool = True) -> dict:
    """Compare a calibrated PSF field with the true one, across the field.

    At every field point the two PSFs are compared on their common central
    ``k x k`` (``k`` the smaller kernel):

    - ``corr``: Pearson correlation,
    - ``fwhm_err_px`` / ``fwhm_rel_err``: absolute (px) and relative error of the
      width (:func:`napari_coordgate.psf.kernels.psf_fwhm`),
    - ``centroid_err_px``: distance of the calibrated PSF's intensity centroid
      from its kernel centre (the true PSFs are centroid-centred, so any
      offset moves deblurred objects),
    - ``displacement_px``: the shift that lines the calibrated PSF up with the
      true one best (:func:`displacement`): a kernel that misses a comatic tail
      is centred on the wrong point even though its own centroid is central.

    Each is summarised as the median over ``all`` (an ``n x n`` grid over
    5-95 % of the field), over the four ``corners`` (5 % inside each corner;
    the worst corner is also given), and over ``between`` beads: the quarter
    of the grid points farthest from any bead the calibration used
    (``calibrated.metadata["beads"]``; skipped when absent).

    Parameters
    ----------
    calibrated, truth : PSFField
        Same field shape.
    n : int
        Points per axis of the dense grid.
    exact : bool
        For a truth made by :func:`independent_lens`, compute the true PSF at
        each point with the library instead of interpolating the truth's grid.

    Returns
    -------
    dict
    """
    if tuple(calibrated.field_shape) != tuple(truth.field_shape):
        raise ValueError(f"field shapes differ: {calibrated.field_shape} vs {truth.field_shape}")
    shape = truth.field_shape
    true_at = _true_psf_getter(truth, exact)
    k = min(calibrated.psf_size, truth.psf_size)
    c = (calibrated.psf_size - 1) / 2

    def measure(points: np.ndarray) -> dict[str, np.ndarray]:
        rows = []
        for y, x in points:
            a, b = calibrated.psf_at(y, x), true_at(y, x)
            ca, cb = _central(a, k), _central(b, k)
            fa, fb = psf_fwhm(a), psf_fwhm(b)
            rows.append((np.corrcoef(ca.ravel(), cb.ravel())[0, 1], abs(fa - fb), abs(fa - fb) / fb,
                         float(np.hypot(*(_centroid(a) - c))), displacement(a, b)))
        rows = np.array(rows)
        return {"corr": rows[:, 0], "fwhm_err_px": rows[:, 1], "fwhm_rel_err": rows[:, 2], "centroid_err_px": rows[:, 3],
                "displacement_px": rows[:, 4]}

    def summary(values: dict[str, np.ndarray], worst: bool = False) -> dict:
        out = {key: float(np.median(v)) for key, v in values.items()}
        if worst:
            out["corr_worst"] = float(np.min(values["corr"]))
            out["fwhm_err_px_worst"] = float(np.max(values["fwhm_err_px"]))
            out["centroid_err_px_worst"] = float(np.max(values["centroid_err_px"]))
            out["displacement_px_worst"] = float(np.max(values["displacement_px"]))
        return out

    points = field_points(shape, n)
    dense = measure(points)
    result = {"all": summary(dense, worst=True), "corners": summary(measure(_corners(shape)), worst=True),
              "psf_size": {"calibrated": calibrated.psf_size, "truth": truth.psf_size, "compared": k}}
    beads = np.asarray(calibrated.metadata.get("beads") or [], float).reshape(-1, 2)
    if len(beads):
        distance = np.min(np.hypot(points[:, None, 0] - beads[None, :, 0], points[:, None, 1] - beads[None, :, 1]), 1)
        far = distance >= np.quantile(distance, 0.75)
        result["between"] = {**summary({key: v[far] for key, v in dense.items()}),
                             "min_distance_px": float(distance[far].min()), "n_points": int(far.sum())}
    return result


def displacement(calibrated_psf: np.ndarray, true_psf: np.ndarray) -> float:
    """How far (px) the calibrated PSF must move to line up best with the true one (cross-correlation peak).

    Both kernels are zero-padded to a common size about the same centre; the
    shift is found to 0.05 px (:func:`skimage.registration.phase_cross_correlation`
    without normalisation, i.e. the plain cross-correlation). A field whose PSFs
    are displaced moves deblurred objects by that much, whatever its kernels'
    own centroids say.
    """
    from skimage.registration import phase_cross_correlation

    size = max(calibrated_psf.shape[0], true_psf.shape[0])
    a, b = (np.pad(p, (size - p.shape[0]) // 2) for p in (calibrated_psf, true_psf))
    shift, _, _ = phase_cross_correlation(b, a, upsample_factor=20, normalization=None)
    return float(np.hypot(*shift))


def blur_fidelity(calibrated: PSFField, truth: PSFField, sharp: np.ndarray) -> dict:
    """PSNR (dB, data range 1) of specimens blurred by the calibrated field against the truth's blur.

    Parameters
    ----------
    calibrated, truth : PSFField
    sharp : (n, H, W) ndarray
        Specimens in [0, 1] (e.g. :func:`specimens`).

    Returns
    -------
    dict
        ``psnr`` over the whole field, ``psnr_centre`` and ``psnr_edge`` (the
        regions of :func:`napari_coordgate.training.metrics.region_masks`).
    """
    from .scoring import psnr_by_region

    return psnr_by_region(np.asarray(calibrated.blur(sharp)), np.asarray(truth.blur(sharp)))
