"""Training data for one instrument: sharp specimens blurred through its PSF field.

A bank of full-field specimens is blurred once each (and refreshed over time);
a training patch is a crop of a bank entry at a global, aligned offset (never
flipped or rotated: the blur depends on position), scaled to a random
brightness, given fresh Poisson-Gaussian noise, and normalised, like inference
normalises, by the percentiles of the whole noisy blurred field image it came
from (estimated on a fixed random subset of at most 4096 field pixels with
their own noise draw). Validation pairs are whole fields up to
:data:`FULL_FIELD_VALIDATION` pixels per side; a larger field (a 2048 x 2048
camera) is validated on crops of :data:`VALIDATION_CROP` pixels, each made
and blurred at its own place in the field (centre, corners, edges in turn),
so that a validation costs seconds rather than minutes on a CPU. See
``docs/training.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..normalization import DEFAULT_PERCENTILES, IntensityScale
from ..psf.psf_field import PSFField
from ..validation import check_percentiles, integer, number
from .noise import add_poisson_gaussian, add_poisson_gaussian_torch, resolve_noise
from .specimens import SPECIMEN_KINDS, check_sharp_images, fit_to_field, make_specimen

__all__ = ["TrainingSet", "ValidationSet", "make_training_set"]

_PERCENTILE_SAMPLE = 4096
#: Fields up to this many pixels per side are validated on whole-field images.
FULL_FIELD_VALIDATION = 1024
#: Side of the validation crops of a larger field.
VALIDATION_CROP = 512
#: Where the validation crops of a large field lie, in turn: (row, column) of the field's 3 x 3 parts.
_CROP_PLACES = ((1, 1), (0, 0), (2, 2), (0, 2), (2, 0), (0, 1), (2, 1), (1, 0), (1, 2))


@dataclass
class ValidationSet:
    """Held-out pairs, normalised as inference would normalise them.

    Attributes
    ----------
    blurred, sharp : (n, h, w) float32 ndarray
        Noisy blurred images and their sharp truth, both normalised by the
        percentiles of the noisy blurred image: the whole field, or crops of a
        large one (see :data:`FULL_FIELD_VALIDATION`).
    scales : list of IntensityScale
        The normalisation of each pair.
    offsets : list of (y, x)
        Field position of each image's top-left pixel ((0, 0) for whole fields).
    """

    blurred: np.ndarray
    sharp: np.ndarray
    scales: list[IntensityScale]
    offsets: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.offsets:
            self.offsets = [(0, 0)] * len(self.blurred)

    def __len__(self) -> int:
        return len(self.blurred)


class TrainingSet:
    """Endless random training patches for one PSF field (see the module notes).

    Build it with :func:`make_training_set`.

    Attributes
    ----------
    psf_field : PSFField
    field_shape : (H, W)
    patch_size : int
    alignment : int
    noise : dict or None
        ``{"photons": ..., "read_noise": ...}``, or None for noise-free data.
    validation : ValidationSet
    bank_sharp, bank_blurred : (n_specimens, H, W) float32 ndarray
        The current bank: sharp specimens and their noise-free blurred images.
    """

    def __init__(
        self, psf_field, *, patch_size: int, n_specimens: int, n_val: int, noise: dict | None,
        sharp_images: list[np.ndarray], alignment: int, seed: int, refresh_every: int,
        intensity_range: float, specimen_kind: str | None, percentiles: Sequence[float],
    ) -> None:
        self.psf_field = psf_field
        self.field_shape: tuple[int, int] = tuple(int(s) for s in psf_field.field_shape)
        self.patch_size, self.alignment = int(patch_size), int(alignment)
        self.noise = noise
        self.seed, self.refresh_every = int(seed), int(refresh_every)
        self.intensity_range = float(intensity_range)
        self.specimen_kind = specimen_kind
        self.percentiles = tuple(float(p) for p in percentiles)
        self._sharp_images = sharp_images
        bank_seq, val_seq, val_noise_seq, pixel_seq = np.random.SeedSequence(self.seed).spawn(4)
        self._bank_rng = np.random.default_rng(bank_seq)
        self._n_made = self._n_user = self._drawn = 0
        self._next_refresh = self.refresh_every
        H, W = self.field_shape
        self.bank_sharp = np.stack([self._new_specimen() for _ in range(n_specimens)])
        self.bank_blurred = np.asarray(psf_field.blur(self.bank_sharp), np.float32)
        n_pix, a, p = H * W, self.alignment, self.patch_size
        self._pixel_subset = np.arange(n_pix) if n_pix <= _PERCENTILE_SAMPLE else np.sort(
            np.random.default_rng(pixel_seq).choice(n_pix, _PERCENTILE_SAMPLE, replace=False))
        # offsets: multiples of the alignment, the last clipped to keep the patch inside
        self._starts_y, self._starts_x = (np.unique(np.minimum(np.arange(0, n - p + a, a), n - p)) for n in (H, W))
        self.validation = self._make_validation(
            n_val, np.random.default_rng(val_seq), np.random.default_rng(val_noise_seq))

    # -- specimens -------------------------------------------------------------------
    def _new_specimen(self) -> np.ndarray:
        """Next specimen of the bank: user images and procedural ones alternate."""
        self._n_made += 1
        rng = self._bank_rng
        if self._sharp_images and (self.specimen_kind is None or self._n_made % 2 == 1):
            image = self._sharp_images[self._n_user % len(self._sharp_images)]
            self._n_user += 1
            return fit_to_field(image, self.field_shape, rng)
        return make_specimen(self.field_shape, rng, self.specimen_kind or "mixed")

    def _refresh_one(self) -> None:
        slot = (self._n_made) % len(self.bank_sharp)
        sharp = self._new_specimen()
        self.bank_sharp[slot] = sharp
        self.bank_blurred[slot] = self.psf_field.blur(sharp)

    def _add_noise(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.noise is None:
            return np.asarray(image, np.float32)
        return add_poisson_gaussian(image, self.noise["photons"], self.noise["read_noise"], rng)

    def _make_validation(self, n_val: int, rng: np.random.Generator, noise_rng: np.random.Generator) -> ValidationSet:
        # separate streams: the same seed gives the same specimens whatever the noise level
        blurred, sharp, scales, offsets = [], [], [], []
        H, W = self.field_shape
        crop = (H, W) if max(H, W) <= FULL_FIELD_VALIDATION else (min(H, VALIDATION_CROP), min(W, VALIDATION_CROP))
        for i in range(n_val):
            offset = (0, 0) if crop == (H, W) else self._crop_offset(i, crop)
            truth, clean = self._blurred_region(offset, crop, rng)
            noisy = self._add_noise(clean, noise_rng)
            scale = IntensityScale.from_percentiles(noisy, self.percentiles)
            blurred.append(scale.normalize(noisy))
            sharp.append(scale.normalize(truth))
            scales.append(scale)
            offsets.append(offset)
        empty = np.zeros((0, *crop), np.float32)
        return ValidationSet(np.stack(blurred) if n_val else empty, np.stack(sharp) if n_val else empty, scales,
                             offsets)

    def _crop_offset(self, index: int, crop: tuple[int, int]) -> tuple[int, int]:
        """Offset of validation crop ``index``: the centre, the corners, the edges in turn, on the alignment grid."""
        row, col = _CROP_PLACES[index % len(_CROP_PLACES)]
        a = self.alignment
        return tuple(int((n - c) * part // 2 // a * a) for n, c, part in zip(self.field_shape, crop, (row, col)))

    def _blurred_region(self, offset, shape, rng) -> tuple[np.ndarray, np.ndarray]:
        """A new specimen over the region and its blur through the field there, exact as a crop of the whole field's."""
        H, W = self.field_shape
        (oy, ox), (h, w), m = offset, shape, self.psf_field.psf_size // 2
        y0, x0, y1, x1 = max(0, oy - m), max(0, ox - m), min(H, oy + h + m), min(W, ox + w + m)
        specimen = make_specimen((y1 - y0, x1 - x0), rng, self.specimen_kind or "mixed")
        blurred = self.psf_field.blur(specimen, offset=(y0, x0))
        inner = np.s_[oy - y0 : oy - y0 + h, ox - x0 : ox - x0 + w]
        return specimen[inner], blurred[inner]

    # -- batches ---------------------------------------------------------------------
    def sample_batch(
        self,
        batch_size: int,
        rng: np.random.Generator,
        *,
        device: str | torch.device | None = None,
        return_info: bool = False,
    ) -> tuple:
        """Draw a batch of normalised (blurred, sharp) patches and their offsets.

        Parameters
        ----------
        batch_size : int
            Number of patches (>= 1).
        rng : numpy.random.Generator
            Chooses specimens, offsets, brightness and noise. With the same
            training set state and generator state the batch is identical.
        device : torch device, optional
            If given, noise and normalisation run there (fast on a GPU; the
            noise then comes from a torch generator seeded from ``rng``) and
            the tensors are returned on it.
        return_info : bool
            Also return a dict with, per sample, ``bank_index``, ``brightness``
            and the normalisation ``low`` and ``high`` (raw units).

        Returns
        -------
        blurred, sharp : (B, 1, p, p) float32 tensors
        offsets : (B, 2) int64 tensor
            Field position ``(y, x)`` of each patch's top-left pixel.
        info : dict, only if ``return_info``
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._drawn += batch_size
        while self.refresh_every > 0 and self._drawn >= self._next_refresh:
            self._refresh_one()
            self._next_refresh += self.refresh_every
        p = self.patch_size
        index = rng.integers(0, len(self.bank_sharp), batch_size)
        oy = self._starts_y[rng.integers(0, len(self._starts_y), batch_size)]
        ox = self._starts_x[rng.integers(0, len(self._starts_x), batch_size)]
        log_range = np.log(self.intensity_range)
        brightness = np.exp(rng.uniform(-log_range, log_range, batch_size)).astype(np.float32)
        rows = oy[:, None, None] + np.arange(p)[None, :, None]
        cols = ox[:, None, None] + np.arange(p)[None, None, :]
        gain = brightness[:, None, None]
        blurred = self.bank_blurred[index[:, None, None], rows, cols] * gain
        sharp = self.bank_sharp[index[:, None, None], rows, cols] * gain
        field_pixels = self.bank_blurred.reshape(len(self.bank_blurred), -1)[index[:, None], self._pixel_subset]
        field_pixels *= brightness[:, None]
        offsets = torch.from_numpy(np.stack([oy, ox], axis=1).astype(np.int64))
        if device is None:
            blurred, sharp, low, high = self._noise_and_normalise(blurred, sharp, field_pixels, rng)
        else:
            blurred, sharp, low, high = self._noise_and_normalise_torch(blurred, sharp, field_pixels, rng, device)
            offsets = offsets.to(device)
        out = (blurred[:, None], sharp[:, None], offsets)
        if return_info:
            low, high = (x.cpu().numpy() if torch.is_tensor(x) else np.asarray(x) for x in (low, high))
            info = {"bank_index": index, "brightness": brightness, "low": low, "high": high}
            return (*out, info)
        return out

    def _noise_and_normalise(self, blurred, sharp, field_pixels, rng):
        blurred = self._add_noise(blurred, rng)
        noisy_field = self._add_noise(field_pixels, rng)
        low, high = np.percentile(noisy_field, self.percentiles, axis=1).astype(np.float32)
        high = np.where(high > low, high, low + 1.0)  # flat image: unit range, as IntensityScale
        span = (high - low)[:, None, None]
        blurred = (blurred - low[:, None, None]) / span
        sharp = (sharp - low[:, None, None]) / span
        return torch.from_numpy(blurred.astype(np.float32)), torch.from_numpy(sharp.astype(np.float32)), low, high

    def _noise_and_normalise_torch(self, blurred, sharp, field_pixels, rng, device):
        device = torch.device(device)
        pin = device.type == "cuda"  # pinned host memory: the copies overlap with GPU work
        blurred, sharp, field = ((torch.from_numpy(a).pin_memory() if pin else torch.from_numpy(a)).to(
            device, non_blocking=pin) for a in (blurred, sharp, field_pixels))
        if self.noise is not None:
            gen = torch.Generator(device).manual_seed(int(rng.integers(2**62)))
            photons, read_noise = self.noise["photons"], self.noise["read_noise"]
            blurred = add_poisson_gaussian_torch(blurred, photons, read_noise, gen)
            field = add_poisson_gaussian_torch(field, photons, read_noise, gen)
        q = torch.tensor(self.percentiles, device=device) / 100.0
        low, high = torch.quantile(field, q, dim=1)
        high = torch.where(high > low, high, low + 1.0)
        span = (high - low)[:, None, None]
        blurred = (blurred - low[:, None, None]) / span
        sharp = (sharp - low[:, None, None]) / span
        return blurred, sharp, low, high  # tensors: no device sync unless info is asked for

    def summary(self) -> dict:
        """JSON-able description of how the data were made."""
        noise = None if self.noise is None else {k: float(v) for k, v in self.noise.items()}
        return {
            "field_shape": list(self.field_shape), "patch_size": self.patch_size, "alignment": self.alignment,
            "n_specimens": len(self.bank_sharp), "n_val": len(self.validation), "noise": noise,
            "validation_shape": list(self.validation.blurred.shape[-2:]),
            "specimen_kind": self.specimen_kind, "n_user_images": len(self._sharp_images),
            "refresh_every": self.refresh_every, "intensity_range": self.intensity_range,
            "percentiles": list(self.percentiles), "seed": self.seed, "psf_field": self.psf_field.summary(),
        }


def make_training_set(
    psf_field,
    *,
    patch_size: int = 64,
    n_specimens: int = 16,
    n_val: int = 4,
    noise: str | float | dict | None = "auto",
    sharp_images: np.ndarray | Sequence[np.ndarray] | None = None,
    calibration_image: np.ndarray | None = None,
    alignment: int = 32,
    seed: int = 0,
    refresh_every: int | None = None,
    intensity_range: float = 2.0,
    specimen_kind: str | None = "mixed",
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> TrainingSet:
    """Build the training data for one PSF field.

    Parameters
    ----------
    psf_field : PSFField
        The instrument's spatially varying PSF; its ``field_shape`` is the field.
    patch_size : int
        Side of the square training patches; at most the field's smaller side.
        Use a multiple of the model's ``alignment``.
    n_specimens : int
        Size of the bank of full-field specimens (>= 1).
    n_val : int
        Number of held-out full-field validation specimens (>= 0).
    noise : "auto", float, dict or None
        ``"auto"``: estimated from ``calibration_image`` if given, else
        :data:`~napari_coordgate.data.noise.DEFAULT_NOISE`. A float: photons
        at intensity 1.0 (read noise 2 e-). A dict with ``photons`` and
        ``read_noise``. None: noise-free.
    sharp_images : (Y, X) array, (N, Y, X) array or list of (Y, X) arrays, optional
        The user's own sharp images (any size: mirror-padded or randomly
        cropped to the field). They alternate with procedural specimens in the
        bank unless ``specimen_kind`` is None (then only they are used).
    calibration_image : (Y, X) array, optional
        A raw image from the instrument, for ``noise="auto"``.
    alignment : int
        Patch offsets are multiples of this (32 suits every depth up to 6).
    seed : int
        Seeds the bank, its refreshes and the validation set.
    refresh_every : int, optional
        Replace the oldest bank specimen after every this many patches
        drawn (0: never). Each refresh costs one specimen and one blur of
        the whole field, so the default, ``max(256, H * W // 256)``, keeps
        that cost per patch independent of the field size.
    intensity_range : float
        Brightness of each patch is scaled by a log-uniform factor in
        ``[1 / intensity_range, intensity_range]`` (>= 1).
    specimen_kind : str or None
        Kind of procedural specimens (see :func:`make_specimen`).
    percentiles : (low, high)
        Normalisation percentiles (those of the model).

    Returns
    -------
    TrainingSet
    """
    if not isinstance(psf_field, PSFField):
        raise TypeError(f"psf_field must be a PSFField (calibrated or simulated), got {type(psf_field).__name__}")
    field_shape = tuple(int(s) for s in psf_field.field_shape)
    if psf_field.psf_size > min(field_shape):
        raise ValueError(f"the PSF field's kernels ({psf_field.psf_size} px) are larger than its field {field_shape}: "
                         "calibrate on a larger field or with a smaller psf_size")
    patch_size = integer("patch_size", patch_size, low=8, high=min(field_shape))
    n_specimens = integer("n_specimens", n_specimens, low=1, high=4096)
    n_val = integer("n_val", n_val, low=0, high=4096)
    alignment = integer("alignment", alignment, low=1, high=min(field_shape))
    seed = integer("seed", seed)
    if refresh_every is None:
        refresh_every = max(256, field_shape[0] * field_shape[1] // 256)
    refresh_every = integer("refresh_every", refresh_every, low=0)
    intensity_range = number("intensity_range", intensity_range, low=1.0, high=1e6)
    percentiles = check_percentiles(percentiles)
    if specimen_kind is not None and specimen_kind not in SPECIMEN_KINDS:
        raise ValueError(f"unknown specimen_kind {specimen_kind!r}; choose one of {SPECIMEN_KINDS} or None")
    images = check_sharp_images(sharp_images)
    if specimen_kind is None and not images:
        raise ValueError("specimen_kind=None uses only sharp_images, but none were given")
    return TrainingSet(
        psf_field, patch_size=patch_size, n_specimens=int(n_specimens), n_val=int(n_val),
        noise=resolve_noise(noise, calibration_image), sharp_images=images, alignment=alignment, seed=seed,
        refresh_every=refresh_every, intensity_range=intensity_range, specimen_kind=specimen_kind,
        percentiles=percentiles,
    )
