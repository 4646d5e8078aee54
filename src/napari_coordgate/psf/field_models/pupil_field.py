"""A pupil-function model of a lens across its field, differentiable (torch), for fitting to beads.

The PSF at a field position is the intensity of the Fourier transform of a
circular pupil whose phase is a sum of aberrations (conventions of
:mod:`~napari_coordgate.psf.optics.pupil`: over the normalised pupil radius ``rho`` and angle ``phi``,
in waves):

========== =============================== ==================================
term       pupil phase                     field dependence (polynomial in u, v)
========== =============================== ==================================
defocus    ``rho**2`` (high-NA form below) quadratic (field curvature, tilt)
astig 0°   ``rho**2 cos 2phi``             quadratic
astig 45°  ``rho**2 sin 2phi``             quadratic
coma x     ``(3 rho**3 - 3 rho) cos phi``  linear
coma y     ``(3 rho**3 - 3 rho) sin phi``  linear
spherical  ``6 rho**4 - 6 rho**2 + 1``     linear (a tilted sample's depth)
sph. 2nd   ``20 rho**6 - 30 rho**4 + ...`` linear
trefoil    ``rho**3 cos 3phi``, ``sin``    constant
========== =============================== ==================================

Full quadratic and linear polynomials contain the displaced versions of
``r**2`` and ``r`` laws, so a decentred optical axis and a tilted sample
(defocus linear in the field) are part of the model; nothing here assumes
rotational symmetry (:mod:`.axial_pupil_field` ties the terms the way a
rotationally symmetric lens does, and is what a calibration fits first). Tilt is left out: the coma term is written with zero
mean wavefront slope, so no term moves the PSF's centroid, and a bead's
position parameter is its image's centroid (see :mod:`~napari_coordgate.psf.centroid`).

Sign convention. One in-focus image cannot tell a pupil phase ``E + O``
(``E`` the terms even in the pupil: defocus, astigmatism, spherical; ``O``
the odd ones: coma, trefoil) from ``-E + O``: the two give exactly the same
intensity PSF (complex conjugation and a point reflection of the pupil map
one onto the other, for any real, centro-symmetric pupil amplitude, scalar
or vectorial). Which of the two a fit finds depends on its start and on the
floating-point path. :meth:`PupilFieldModel.canonicalise` picks one by
convention: **the defocus averaged over the field is non-negative** (the
even terms' signs are flipped together when it is not), so fitted
coefficients are reproducible on any machine.

With an immersion index ``n`` the defocus term is the exact high-NA phase
``(n - sqrt(n**2 - NA**2 rho**2)) / (n - sqrt(n**2 - NA**2))`` (equal to
``rho**2`` at low NA), which defocus of a high-NA objective follows. An
amplitude term ``exp(b rho**2)`` absorbs apodisation.

With the immersion index known the PSF is also vectorial (Richards-Wolf
optics of an aplanatic objective, as in Hanser et al. 2004): a ray
leaving the pupil at ``sin(theta) = NA rho / n`` carries the field of an
isotropic (freely rotating) emitter into three components, each of which
makes its own image; the PSF is the sum of their intensities. The
sine-condition amplitude ``cos(theta)**-0.5`` is applied too. At high NA
this broadens the focal spot and fills the first dark ring, which no
scalar pupil reproduces. The pixel response is
a uniform square. When the image is sampled above Nyquist (an intensity
band limit ``2 * cutoff`` below :data:`PIXEL_FILTER_BAND` cycles per pixel,
the usual case), the intensity is computed at the pixel centres only, on a
window :data:`PIXEL_FILTER_TAPS` pixels wider on each side, and integrated
over the square pixel by a short separable filter whose frequency response
matches ``sinc(f)`` over the band to 0.6 % (a longer one,
:data:`WIDE_PIXEL_FILTER`, up to a band of 0.48 cycles per pixel): exact for a band-limited PSF up
to that error, and several times cheaper than a finer grid. Undersampled
lenses fall back to a grid ``oversample`` times finer than the pixels,
summed over each pixel.
"""

from __future__ import annotations

import numpy as np
import torch

from .polynomials import monomial_names, monomials, n_monomials

__all__ = ["PupilFieldModel", "ABERRATIONS", "EVEN_TERMS"]

#: (name, largest field order) of each aberration term, in the order of the phase basis.
ABERRATIONS = (
    ("defocus", 2),
    ("astigmatism_0", 2),
    ("astigmatism_45", 2),
    ("coma_x", 1),
    ("coma_y", 1),
    ("spherical", 1),
    ("spherical_2", 1),
    ("trefoil_0", 0),
    ("trefoil_30", 0),
)

#: Half-width (pixels) of the filter that integrates a pixel-centre sampled intensity over the square pixel.
PIXEL_FILTER_TAPS = 6
#: Intensity band (cycles per pixel, below the Nyquist 0.5) over which that filter matches the pixel's sinc.
PIXEL_FILTER_BAND = 0.46
#: A longer filter for a band up to 0.48 cycles per pixel (a lens sampled just above Nyquist), which matches
#: the sinc to 0.8 % there: a cut-off estimated 3 % above 0.23 would otherwise fall back to the oversampled
#: grid, 5x slower and less exact (1.2 % of the peak).
WIDE_PIXEL_FILTER = (8, 0.48)
#: Range of a fitted aperture NA / n (the sine of the largest ray angle).
_APERTURE_RANGE = (0.05, 0.98)
#: Range of a fitted cut-off, as factors of its starting value.
_CUTOFF_RANGE = (1.0 / 3.0, 1.45)


def _pixel_filter(taps: int = PIXEL_FILTER_TAPS, band: float = PIXEL_FILTER_BAND) -> np.ndarray:
    """Symmetric FIR filter ``(2 taps + 1,)`` whose response is ``sinc(f)`` over ``|f| <= band`` (least squares).

    Applied to point samples of a band-limited intensity at the pixel centres,
    it gives the intensity integrated over each (unit, square) pixel: the
    pixel's box has the transfer function ``sinc(f)``, and nothing of the
    sampled intensity lies between ``band`` and ``1 - band``.
    """
    f = np.linspace(0.0, band, 4000)
    design = np.concatenate([np.ones((f.size, 1)), 2 * np.cos(2 * np.pi * f[:, None] * np.arange(1, taps + 1))], axis=1)
    half, *_ = np.linalg.lstsq(design, np.sinc(f), rcond=None)
    return np.concatenate([half[:0:-1], half])


#: Terms even in the pupil (unchanged by a point reflection); their joint sign is fixed by convention.
EVEN_TERMS = ("defocus", "astigmatism_0", "astigmatism_45", "spherical", "spherical_2")


class PupilFieldModel(torch.nn.Module):
    """Pupil-function PSFs whose aberrations are low-order polynomials of the field position.

    Parameters
    ----------
    window : int
        Odd side of the rendered kernels, in pixels.
    cutoff : float
        ``NA * pixel_size / wavelength``: the pupil radius in cycles per
        pixel (the coherent cut-off frequency).
    na : float
        Numerical aperture (only the high-NA defocus form uses it).
    immersion_index : float, optional
        Refractive index of the immersion medium; enables the high-NA defocus form.
    fit_cutoff : bool
        Fit ``cutoff`` too (when the optics were not given).
    vectorial : bool, optional
        Vectorial high-NA imaging (see the module notes). The default is on
        whenever ``immersion_index`` is given (and ``cutoff`` is not fitted),
        and with ``fit_aperture``.
    fit_aperture : bool
        For unknown optics: fit the aperture ``NA / n`` (the sine of the
        largest ray angle), the only combination of NA and immersion index
        the vectorial factors and the high-NA defocus depend on. The pupil is
        then vectorial, and reduces to the scalar one where the fitted
        aperture is small. ``na`` is the starting aperture; ``immersion_index``
        must be left out.

    Notes
    -----
    Parameters: ``coefficients`` (one polynomial per aberration, in waves),
    ``log_cutoff_scale``, ``aperture_logit`` and ``apodisation``.
    """

    #: How the aberrations depend on the field position: free low-order polynomials (see the module notes).
    field_law = "polynomial"

    def __init__(
        self,
        window: int,
        *,
        cutoff: float,
        na: float = 1.0,
        immersion_index: float | None = None,
        fit_cutoff: bool = False,
        vectorial: bool | None = None,
        fit_aperture: bool = False,
    ) -> None:
        super().__init__()
        if window < 3 or window % 2 == 0:
            raise ValueError(f"window must be an odd size of at least 3; got {window}")
        self.window = int(window)
        self.cutoff = float(cutoff)
        self.na = float(na)
        self.fit_aperture = bool(fit_aperture)
        if self.fit_aperture:
            if immersion_index is not None:
                raise ValueError("fit_aperture is for unknown optics: leave immersion_index out")
            if vectorial is False:
                raise ValueError("a fitted aperture is vectorial")
            if not _APERTURE_RANGE[0] < self.na < _APERTURE_RANGE[1]:
                raise ValueError(f"the starting aperture NA / n must lie in {_APERTURE_RANGE}; got {self.na}")
            immersion_index, vectorial = 1.0, True
        self.immersion_index = immersion_index
        if vectorial is None:
            vectorial = immersion_index is not None and not fit_cutoff
        if vectorial and (immersion_index is None or (fit_cutoff and not self.fit_aperture)):
            raise ValueError("a vectorial pupil needs the immersion index and a known cut-off")
        self.vectorial = bool(vectorial)
        # The largest cut-off the model can reach: a fitted one may grow by up to 1.45, but not past
        # the sampling limit of the fast pixel integration when it starts below it (a lens imaged
        # above Nyquist stays so).
        low, high = _CUTOFF_RANGE
        if fit_cutoff and 2 * self.cutoff <= PIXEL_FILTER_BAND:
            high = min(high, PIXEL_FILTER_BAND / (2 * self.cutoff))
        self._cutoff_range = (low, high) if fit_cutoff else (1.0, 1.0)
        band = 2 * self.cutoff * self._cutoff_range[1]
        taps, filter_band = (PIXEL_FILTER_TAPS, PIXEL_FILTER_BAND) if band <= PIXEL_FILTER_BAND + 1e-12 else WIDE_PIXEL_FILTER
        self._pixel_filter = band <= filter_band + 1e-12
        if self._pixel_filter:
            oversample = 1
            fine = self.window + 2 * taps
            self.register_buffer("_filter", torch.as_tensor(_pixel_filter(taps, filter_band), dtype=torch.float32))
        else:
            # Samples per pixel for the pixel integration (odd, so the window centre is a sample).
            oversample = 3
            while 1.0 / oversample > 0.45 / (1.5 * self.cutoff):
                oversample += 2
            fine = self.window * oversample
        self.oversample = oversample
        # The pupil is sampled every 1 / (2 window) cycles per pixel, so the image repeats only
        # every two windows (no wrapped tails), and covers the largest cut-off the model can reach.
        self._df = 1.0 / (2 * self.window)
        n_pupil = int(np.ceil(2 * self._cutoff_range[1] * self.cutoff / self._df)) + 3
        n_pupil += 1 - n_pupil % 2
        self._orders = [order for _, order in ABERRATIONS]
        self.coefficients = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.zeros(n_monomials(order), dtype=torch.float64)) for order in self._orders]
        )
        self.log_cutoff_scale = torch.nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=fit_cutoff)
        self.apodisation = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        low, high = _APERTURE_RANGE
        start = (self.na - low) / (high - low) if self.fit_aperture else 0.5
        self.aperture_logit = torch.nn.Parameter(torch.tensor(float(np.log(start / (1 - start))), dtype=torch.float64),
                                                 requires_grad=self.fit_aperture)
        freqs = (np.arange(n_pupil) - n_pupil // 2) * self._df  # cycles per pixel
        fy, fx = np.meshgrid(freqs, freqs, indexing="ij")
        self.register_buffer("_freqs", torch.as_tensor(freqs))
        self.register_buffer("_fy", torch.as_tensor(fy))
        self.register_buffer("_fx", torch.as_tensor(fx))
        self.register_buffer("_phi", torch.atan2(self._fy, self._fx))
        self.register_buffer("_samples", torch.as_tensor((np.arange(fine) - fine // 2) / oversample))
        self._basis: torch.Tensor | None = None
        self._transforms: tuple[torch.Tensor, torch.Tensor] | None = None
        rho = torch.sqrt(self._fy**2 + self._fx**2) / self.cutoff
        self.register_buffer("_polarisation", _polarisation(rho, self._phi, self.na, immersion_index, self.vectorial))

    # ----------------------------------------------------------------- aberrations
    def canonicalise(self) -> bool:
        """Apply the sign convention (see the module notes): make the field-averaged defocus non-negative.

        Flips the signs of every even aberration polynomial (defocus,
        astigmatism, spherical) together, which leaves every PSF unchanged.
        The average is taken over a square field (``|u|, |v| <= 1/sqrt(2)``);
        where it is zero, the largest even coefficient decides.

        Returns
        -------
        bool
            Whether the signs were flipped.
        """
        with torch.no_grad():
            side = torch.linspace(-1.0, 1.0, 9, dtype=torch.float64) / np.sqrt(2.0)
            uv = torch.cartesian_prod(side, side)
            mean_defocus = float((monomials(uv, self._orders[0]) @ self.coefficients[0]).mean())
            if abs(mean_defocus) < 1e-9:
                even = torch.cat([c for (name, _), c in zip(ABERRATIONS, self.coefficients) if name in EVEN_TERMS])
                mean_defocus = float(even[torch.argmax(even.abs())]) if even.numel() else 0.0
            if mean_defocus >= 0:
                return False
            for (name, _), coefficients in zip(ABERRATIONS, self.coefficients):
                if name in EVEN_TERMS:
                    coefficients.neg_()
        return True

    def aberrations(self, uv: torch.Tensor) -> torch.Tensor:
        """Aberration coefficients in waves at normalised field positions: ``(n, n_terms)``."""
        columns = []
        for order, coefficients in zip(self._orders, self.term_coefficients()):
            columns.append(monomials(uv, order) @ coefficients)
        return torch.stack(columns, dim=1)

    def term_coefficients(self) -> list[torch.Tensor]:
        """Each aberration's polynomial coefficients (waves), in :data:`ABERRATIONS` order."""
        return list(self.coefficients)

    def describe(self) -> dict:
        """The fitted aberrations: polynomial coefficients (waves) per term, and the optics."""
        out = {}
        for (name, order), coefficients in zip(ABERRATIONS, self.coefficients):
            out[name] = dict(zip(monomial_names(order), (float(c) for c in coefficients.detach())))
        described = {
            "aberration_polynomials_waves": out,
            "cutoff_cycles_per_px": float(self.fitted_cutoff().detach()),
            "apodisation": float(self.apodisation.detach()),
            "vectorial": self.vectorial,
            "field_law": self.field_law,
        }
        if self.fit_aperture:
            described["aperture_na_over_n"] = float(self.fitted_aperture().detach())
        if getattr(self, "estimated_optics", None):
            described["estimated_optics"] = dict(self.estimated_optics)
        return described

    def fitted_aperture(self) -> torch.Tensor:
        """``NA / n`` in use: fitted with ``fit_aperture``, else the given optics' (1 for a scalar pupil)."""
        if not self.fit_aperture:
            return torch.tensor(self.na / self.immersion_index if self.immersion_index else 1.0, dtype=torch.float64)
        low, high = _APERTURE_RANGE
        return low + (high - low) * torch.sigmoid(self.aperture_logit)

    def with_window(self, window: int) -> PupilFieldModel:
        """The same PSFs rendered in another window, with the fitted optics fixed (nothing left to fit)."""
        if self.fit_aperture:
            na, index = float(self.fitted_aperture().detach()), 1.0
        else:
            na, index = self.na, self.immersion_index
        copy = PupilFieldModel(window, cutoff=float(self.fitted_cutoff().detach()), na=na, immersion_index=index,
                               vectorial=self.vectorial)
        with torch.no_grad():
            for target, source in zip(copy.coefficients, self.coefficients):
                target.copy_(source)
            copy.apodisation.copy_(self.apodisation)
        return copy

    # ------------------------------------------------------------------- rendering
    def fitted_cutoff(self) -> torch.Tensor:
        """The cut-off in use (the pupil grid covers the largest one the model can reach)."""
        low, high = self._cutoff_range
        return self.cutoff * torch.exp(torch.clamp(self.log_cutoff_scale, np.log(low), np.log(high)))

    def kernels(self, uv: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """PSFs at field positions ``uv``, each displaced by ``shift`` pixels from the window centre.

        Parameters
        ----------
        uv : (n, 2) tensor
            Normalised field positions.
        shift : (n, 2) tensor
            Sub-pixel ``(dy, dx)`` of each PSF's centroid from the window centre.

        Returns
        -------
        (n, window, window) tensor of float64
            Each PSF (computed in float32) as a fraction of the whole PSF's energy (so a window that
            cuts tails sums to less than one).
        """
        cutoff = self.fitted_cutoff()
        rho = torch.sqrt(self._fy**2 + self._fx**2) / cutoff
        inside = rho <= 1.0
        varying = cutoff.requires_grad or self.fit_aperture
        if self.fit_aperture:
            aperture = self.fitted_aperture()  # NA / n, with n = 1
            basis = _phase_basis(rho, self._phi, aperture, 1.0) * inside
            polarisation = _polarisation(rho, self._phi, aperture, 1.0, True)
        else:
            if self._basis is None or varying:
                basis = _phase_basis(rho, self._phi, self.na, self.immersion_index) * inside
                if not varying:
                    self._basis = basis.to(torch.float32)
            polarisation = self._polarisation
        basis = self._basis if (self._basis is not None and not varying) else basis.to(torch.float32)
        coefficients = self.aberrations(uv)  # (n, terms)
        waves = torch.einsum("nt,tyx->nyx", coefficients.to(torch.float32), basis)
        # A shift of the PSF by (dy, dx) is a linear phase over the pupil (in cycles: fy dy + fx dx), so one
        # constant matrix Fourier transform serves every bead: exact sub-pixel positions, computed as two
        # large matrix products rather than many small ones.
        shift32 = shift.to(torch.float32)
        fy, fx = self._fy.to(torch.float32), self._fx.to(torch.float32)
        waves = waves + shift32[:, 0, None, None] * fy + shift32[:, 1, None, None] * fx
        amplitude = torch.exp(self.apodisation * rho**2) * inside
        # One pupil per field component (a single one for scalar imaging): (n, components, p, p).
        components = (amplitude[None] * polarisation).to(torch.float32)
        phase = 2 * torch.pi * waves
        pupil = torch.complex(components[None] * torch.cos(phase)[:, None], components[None] * torch.sin(phase)[:, None])
        to_image, binning = self._image_transforms()
        n, c, p = pupil.shape[0], pupil.shape[1], pupil.shape[-1]
        fine = to_image.shape[0]
        # field = T P T^T for each pupil P, with T (fine, p): first P T^T for all pupils at once, then T on the
        # other side (as (P T^T)^T T^T = field^T; the intensity is transposed back at the end).
        half = pupil.reshape(n * c * p, p) @ to_image.T  # rows of P T^T: (n c p, fine)
        half = half.reshape(n * c, p, fine).transpose(1, 2).reshape(n * c * fine, p)
        field_t = (half @ to_image.T).reshape(n, c, fine, fine)
        parts = torch.view_as_real(field_t).square().reshape(n, c, fine * fine * 2).sum(dim=1).reshape(n, fine, fine, 2)
        intensity = parts[..., 0] + parts[..., 1]  # (n, fine, fine), transposed
        # Parseval: the PSF's whole energy over one period of the sampled pupil's image.
        total = components.square().sum() / self._df**2 * self.oversample**2
        # Integrate over each (square) pixel: one matrix along each axis (a short filter on pixel-centre
        # samples, or a sum over the oversampled grid).
        binned = (intensity.reshape(n * fine, fine) @ binning.T).reshape(n, fine, self.window)
        binned = (binned.transpose(1, 2).reshape(n * self.window, fine) @ binning.T).reshape(n, self.window, self.window)
        return (binned / total).to(torch.float64)

    def _image_transforms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix Fourier transform ``(fine, p)`` from pupil to image samples, and the pixel binning ``(window, fine)``."""
        if self._transforms is None:
            samples = self._samples.to(torch.float64)
            freqs = self._freqs.to(torch.float64)
            to_image = torch.exp(-2j * torch.pi * samples[:, None] * freqs[None, :]).to(torch.complex64)
            fine = samples.numel()
            binning = torch.zeros((self.window, fine), dtype=torch.float32)
            if self._pixel_filter:
                taps = self._filter  # symmetric
                for row in range(self.window):
                    binning[row, row : row + taps.numel()] = taps
            else:
                for row in range(self.window):
                    binning[row, row * self.oversample : (row + 1) * self.oversample] = 1.0
            self._transforms = (to_image, binning)
        return self._transforms

    def initialise_defocus(self, uv: np.ndarray, widths_px: np.ndarray) -> None:
        """Start the defocus polynomial from bead widths: ``|d| ~ sqrt(w**2 - w0**2) * cutoff / 4``.

        A defocused spot's diameter is about ``4 |d| / cutoff`` pixels; the
        narrowest beads give the in-focus width ``w0``.
        """
        widths = np.asarray(widths_px, dtype=float)
        good = np.isfinite(widths)
        if good.sum() < 6:
            return
        w0 = np.percentile(widths[good], 5)
        target = np.sqrt(np.clip(widths[good] ** 2 - w0**2, 0, None)) * self.cutoff / 4
        design = monomials(torch.as_tensor(uv[good]), 2).numpy()
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        with torch.no_grad():
            self.coefficients[0].copy_(torch.as_tensor(solution))


def _polarisation(rho, phi, na, immersion_index, vectorial) -> torch.Tensor:
    # ``na`` may be a tensor (a fitted aperture), so everything stays differentiable.
    """Amplitude factors of each imaged field component over the pupil: ``(components, p, p)``.

    Scalar imaging has one component of factor one. Vectorial imaging of an
    isotropic emitter sums two orthogonal dipole polarisations, each making
    in-plane (x, y) and axial (z) field components; the two cross terms are
    equal, so five distinct factors remain, the cross term weighted by
    ``sqrt(2)`` (its intensity counts twice). All include the sine condition.
    """
    if not vectorial:
        return torch.ones((1,) + rho.shape, dtype=rho.dtype)
    sin_t = torch.clamp(na * rho.clamp(max=1.0) / immersion_index, max=0.999)
    cos_t = torch.sqrt(1 - sin_t**2)
    c, s = torch.cos(phi), torch.sin(phi)
    factors = torch.stack(
        [
            cos_t * c**2 + s**2,  # x dipole, x field
            cos_t * s**2 + c**2,  # y dipole, y field
            np.sqrt(2.0) * (cos_t - 1) * s * c,  # cross terms (x->y and y->x)
            sin_t * c,  # x dipole, z field
            sin_t * s,  # y dipole, z field
        ]
    )
    return factors / torch.sqrt(cos_t)


def _phase_basis(rho: torch.Tensor, phi: torch.Tensor, na: float, immersion_index: float | None) -> torch.Tensor:
    if immersion_index is not None and immersion_index > na:
        n = immersion_index
        na = torch.as_tensor(na, dtype=rho.dtype)
        rim = torch.clamp(rho, max=1.0)  # the pupil ends at rho = 1 (the outside is masked)
        defocus = (n - torch.sqrt(torch.clamp(n**2 - (na * rim) ** 2, min=0))) / (n - torch.sqrt(n**2 - na**2))
    else:
        defocus = rho**2
    return torch.stack(
        [
            defocus,
            rho**2 * torch.cos(2 * phi),
            rho**2 * torch.sin(2 * phi),
            (3 * rho**3 - 3 * rho) * torch.cos(phi),
            (3 * rho**3 - 3 * rho) * torch.sin(phi),
            6 * rho**4 - 6 * rho**2 + 1,
            20 * rho**6 - 30 * rho**4 + 12 * rho**2 - 1,
            rho**3 * torch.cos(3 * phi),
            rho**3 * torch.sin(3 * phi),
        ]
    )
