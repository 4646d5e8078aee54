"""PSFField: the spatially varying PSF of an instrument, its fast blur and its file format."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft

from ..files.atomic import atomic_write
from .field_grid import node_coordinates, tent_weights
from .kernels import psf_fwhm, unit_sum

__all__ = ["PSFField", "FIELD_KINDS", "is_psf_field_file"]

#: Where a PSF field came from.
FIELD_KINDS = ("simulated", "beads", "pair", "custom")
_FILE_FORMAT = "napari-coordgate.psf-field"
_FILE_VERSION = 1


def _to_jsonable(value):
    """Convert NumPy scalars/arrays (also nested in dicts/lists) to plain Python."""
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


class PSFField:
    """Spatially varying PSF of an instrument over a field of shape ``(H, W)``.

    The PSF is known at the centres of a ``gy x gx`` grid of equal cells
    (:meth:`node_positions`) and interpolated bilinearly in between; beyond
    the outermost nodes it is held constant.

    Centring convention: the calibrations of this package (beads, pairs)
    return every PSF with its intensity centroid at the kernel centre
    (:mod:`.centroid`), so blurring with the field does not move an
    object's centre of mass, and a network trained on it does not shift
    the image. Simulated lenses keep the pupil's own centre (coma written
    with zero mean wavefront slope), which differs only by the part of the
    tails the kernel cuts.

    Parameters
    ----------
    psfs : (gy, gx, k, k) ndarray
        PSF at each grid node; ``k`` odd, the PSF centre at ``(k // 2, k // 2)``.
        Each PSF is rescaled to unit sum.
    field_shape : (H, W)
        Shape of the field in pixels.
    kind : {"simulated", "beads", "pair", "custom"}
        Where the field came from.
    metadata : dict, optional
        JSON-able extras (lens parameters, bead count, coverage, ...). NumPy
        values are converted to plain Python.

    Attributes
    ----------
    psfs : (gy, gx, k, k) float32 ndarray
    field_shape : (H, W) tuple of int
    grid_shape : (gy, gx) tuple of int
    psf_size : int
    kind : str
    metadata : dict
    """

    def __init__(
        self,
        psfs: np.ndarray,
        field_shape: tuple[int, int],
        *,
        kind: str = "custom",
        metadata: dict | None = None,
    ) -> None:
        psfs = np.asarray(psfs, dtype=np.float64)
        if psfs.ndim != 4 or psfs.shape[2] != psfs.shape[3] or psfs.shape[2] % 2 == 0:
            raise ValueError(f"psfs must have shape (gy, gx, k, k) with k odd; got {psfs.shape}")
        if min(psfs.shape[:2]) < 1 or not np.all(np.isfinite(psfs)):
            raise ValueError("psfs must hold at least one finite PSF")
        field_shape = tuple(int(s) for s in field_shape)
        if len(field_shape) != 2 or min(field_shape) < 1:
            raise ValueError(f"field_shape must be (H, W) with positive sizes; got {field_shape}")
        if kind not in FIELD_KINDS:
            raise ValueError(f"kind must be one of {FIELD_KINDS}; got {kind!r}")
        metadata = _to_jsonable(dict(metadata or {}))
        try:
            json.dumps(metadata)
        except TypeError as err:
            raise ValueError(f"metadata must be JSON-able: {err}") from None
        gy, gx, k, _ = psfs.shape
        normalised = np.stack([unit_sum(p) for p in psfs.reshape(gy * gx, k, k)])
        self.psfs = normalised.reshape(psfs.shape).astype(np.float32)
        self.field_shape: tuple[int, int] = field_shape
        self.grid_shape: tuple[int, int] = (gy, gx)
        self.psf_size: int = k
        self.kind = kind
        self.metadata: dict = metadata

    def __repr__(self) -> str:
        return (
            f"PSFField(kind={self.kind!r}, field_shape={self.field_shape}, "
            f"grid_shape={self.grid_shape}, psf_size={self.psf_size})"
        )

    # ------------------------------------------------------------------ geometry
    def node_positions(self) -> np.ndarray:
        """Field ``(y, x)`` of each grid PSF, as a ``(gy, gx, 2)`` array."""
        ys = node_coordinates(self.field_shape[0], self.grid_shape[0])
        xs = node_coordinates(self.field_shape[1], self.grid_shape[1])
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        return np.stack([yy, xx], axis=-1)

    def _weights(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wy = tent_weights(ys, self.field_shape[0], self.grid_shape[0])
        wx = tent_weights(xs, self.field_shape[1], self.grid_shape[1])
        return wy, wx

    def psf_at(self, y: float, x: float) -> np.ndarray:
        """PSF at field position ``(y, x)``: a ``(k, k)`` unit-sum kernel.

        Bilinear interpolation of the grid PSFs, with the weights :meth:`blur`
        uses, so blurring a point at ``(y, x)`` reproduces it (see the notes
        of :meth:`blur` for the normalisation).
        """
        wy, wx = self._weights(np.array([y]), np.array([x]))
        kernel = np.einsum("i,j,ijkl->kl", wy[:, 0], wx[:, 0], self.psfs.astype(np.float64))
        return unit_sum(kernel)

    # ---------------------------------------------------------------------- blur
    def blur(self, image: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """Blur an image (or a crop of the field) with the spatially varying PSF.

        Computes ``sum_k conv(w_k * image, psf_k) / sum_k conv(w_k, psf_k)``
        where ``w_k`` are the bilinear node weights (a partition of unity).
        The numerator sends every source pixel through its own interpolated
        PSF, :meth:`psf_at`. The denominator (the same operation on a flat
        image) is within a few per cent of one; dividing by it keeps flat
        regions exactly flat, which the numerator alone misses where
        neighbouring grid PSFs differ a lot (ripples up to ~5 % for strongly
        varying fields). A point source therefore gives ``psf_at(p)`` to within
        a few per cent of its peak in such fields (exactly where the grid
        PSFs are equal).

        Each term is an FFT convolution over the support of ``w_k`` only
        (about two cells per axis), so the cost is that of a few FFTs of the
        whole image.

        Parameters
        ----------
        image : (h, w) or (n, h, w) array_like
            A crop of the field whose top-left pixel is at ``offset``, or the
            whole field; a 3D array is a batch of crops at the same offset.
        offset : (y, x)
            Field position of the crop's top-left pixel.

        Returns
        -------
        ndarray of float32, same shape as ``image``

        Notes
        -----
        The image is extended by reflection (``numpy.pad(mode="reflect")``)
        by the PSF radius ``k // 2`` on each side before blurring, so the
        result of a crop equals the matching crop of the whole-field result
        wherever the crop is at least ``k // 2`` pixels from its border.
        """
        image = np.asarray(image)
        if image.ndim not in (2, 3):
            raise ValueError(f"image must be (h, w) or (n, h, w); got shape {image.shape}")
        h, w = image.shape[-2:]
        # The flat image rides along as the last batch item: it gives the normaliser.
        batch = np.concatenate([image.astype(np.float32, copy=False).reshape(-1, h, w), np.ones((1, h, w), np.float32)])
        r = self.psf_size // 2
        padded = np.pad(batch, ((0, 0), (r, r), (r, r)), mode="reflect" if min(h, w) > 1 else "edge")
        wy, wx = self._weights(offset[0] - r + np.arange(h + 2 * r), offset[1] - r + np.arange(w + 2 * r))
        wy, wx = wy.astype(np.float32), wx.astype(np.float32)
        # Full linear convolution of the padded image, accumulated piece by piece.
        canvas = np.zeros((batch.shape[0], h + 4 * r, w + 4 * r), dtype=np.float32)
        k = self.psf_size
        for i, y_span in _supports(wy):
            for j, x_span in _supports(wx):
                (y0, y1), (x0, x1) = y_span, x_span
                piece = padded[:, y0:y1, x0:x1] * (wy[i, y0:y1, None] * wx[j, None, x0:x1])
                fft_shape = tuple(sp_fft.next_fast_len(n + k - 1, real=True) for n in (y1 - y0, x1 - x0))
                spectrum = sp_fft.rfft2(piece, s=fft_shape, workers=-1)
                spectrum *= sp_fft.rfft2(self.psfs[i, j], s=fft_shape, workers=-1)
                conv = sp_fft.irfft2(spectrum, s=fft_shape, workers=-1)
                canvas[:, y0 : y1 + k - 1, x0 : x1 + k - 1] += conv[:, : y1 - y0 + k - 1, : x1 - x0 + k - 1]
        # Full-convolution index of image pixel q is q + 2r.
        result = canvas[:, 2 * r : 2 * r + h, 2 * r : 2 * r + w]
        return (result[:-1] / result[-1]).reshape(image.shape)

    # --------------------------------------------------------------- summaries
    def fwhm_map(self) -> np.ndarray:
        """FWHM in pixels of each grid PSF, as a ``(gy, gx)`` array (see :func:`psf_fwhm`)."""
        return self._widths()["grid"].copy()

    def _widths(self) -> dict:
        """The FWHM figures (grid, centre, corners), computed once per ``psfs`` array.

        They take a fraction of a second on a fine grid, and widgets ask for
        them on the GUI thread, so the first call (in the worker that made the
        field) keeps them.
        """
        cached = getattr(self, "_width_cache", None)
        if cached is not None and cached[0] is self.psfs:
            return cached[1]
        gy, gx = self.grid_shape
        H, W = self.field_shape
        corners = {"top_left": (0, 0), "top_right": (0, W - 1), "bottom_left": (H - 1, 0),
                   "bottom_right": (H - 1, W - 1)}
        widths = {
            "grid": np.array([[psf_fwhm(self.psfs[i, j]) for j in range(gx)] for i in range(gy)]),
            "centre": psf_fwhm(self.psf_at((H - 1) / 2, (W - 1) / 2)),
            "corners": {name: psf_fwhm(self.psf_at(*pos)) for name, pos in corners.items()},
        }
        self._width_cache = (self.psfs, widths)
        return widths

    def montage(self, size: int | None = None) -> np.ndarray:
        """All grid PSFs side by side, each scaled to its maximum: a ``(gy*s, gx*s)`` image.

        Parameters
        ----------
        size : int, optional
            Odd side ``s`` of the central part of each PSF shown. The default
            is the smallest box that holds 90 % of every PSF's light (at least
            9 px): a kernel sized for faint tails would show each PSF as a dot.
        """
        gy, gx = self.grid_shape
        k = self.psf_size
        if size is None:
            size = self.visible_size()
        size = int(min(max(size, 1), k)) | 1
        start = (k - size) // 2
        psfs = self.psfs[:, :, start : start + size, start : start + size]
        peaks = psfs.max(axis=(2, 3), keepdims=True)
        scaled = psfs / np.where(peaks > 0, peaks, 1.0)
        return scaled.transpose(0, 2, 1, 3).reshape(gy * size, gx * size)

    def visible_size(self, fraction: float = 0.9) -> int:
        """Smallest odd box (at least 9 px, at most the kernel) holding ``fraction`` of every PSF's light."""
        k, centre = self.psf_size, self.psf_size // 2
        flat = self.psfs.reshape(-1, k, k)
        needed = fraction * flat.sum(axis=(1, 2))
        for half in range(4, centre + 1):
            box = flat[:, centre - half : centre + half + 1, centre - half : centre + half + 1].sum(axis=(1, 2))
            if np.all(box >= needed):
                return 2 * half + 1
        return k

    def summary(self) -> dict:
        """JSON-able description: kind, shapes, FWHM at the centre and corners, metadata."""
        widths = self._widths()
        corner_fwhm, fwhm = dict(widths["corners"]), widths["grid"]
        return {
            "kind": self.kind,
            "field_shape": list(self.field_shape),
            "grid_shape": list(self.grid_shape),
            "psf_size": self.psf_size,
            "fwhm_centre_px": widths["centre"],
            "fwhm_corners_px": corner_fwhm,
            "fwhm_corners_mean_px": float(np.mean(list(corner_fwhm.values()))),
            "fwhm_grid_min_px": float(np.nanmin(fwhm)),
            "fwhm_grid_max_px": float(np.nanmax(fwhm)),
            "metadata": self.metadata,
        }

    # ------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> None:
        """Write the field to one ``.npz`` file (arrays + a JSON header), atomically."""
        path = Path(path)
        header = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "kind": self.kind,
            "field_shape": list(self.field_shape),
            "metadata": self.metadata,
        }
        text = json.dumps(header)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez would add ".npz" to a name
                np.savez(fh, psfs=self.psfs, header=np.array(text))

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PSFField:
        """Read a field written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a readable PSF-field file.
        """
        name = repr(os.fspath(path))
        try:
            with np.load(path, allow_pickle=False) as data:
                if not hasattr(data, "files") or not {"psfs", "header"} <= set(data.files):
                    raise ValueError(f"{name} is not a napari-coordgate PSF-field file (no PSF field in it)")
                psfs = np.array(data["psfs"])
                header = json.loads(str(data["header"]))
        except FileNotFoundError:
            raise
        except ValueError as err:
            if str(err).startswith(name):
                raise
            # numpy's own message for object arrays suggests unpickling: never pass that on.
            raise ValueError(f"{name} is not a napari-coordgate PSF-field file (it holds data of another kind)") from None
        except (OSError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{name} is not a napari-coordgate PSF-field file (not a readable .npz archive, or "
                             "damaged)") from None
        if not isinstance(header, dict) or header.get("format") != _FILE_FORMAT:
            raise ValueError(f"{name} is not a napari-coordgate PSF-field file")
        version = header.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"{name} is damaged: its file version is {version!r}, not a whole number")
        if version > _FILE_VERSION:
            raise ValueError(f"{name} was written by a newer napari-coordgate (file version {version}); update it")
        if psfs.dtype.kind not in "fiu" or not np.isfinite(psfs).all():
            raise ValueError(f"{name} is damaged: its PSFs are not finite real numbers")
        try:
            return cls(psfs, tuple(header["field_shape"]), kind=header["kind"], metadata=header.get("metadata"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{name} holds an invalid PSF field: {err}") from None


def is_psf_field_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PSF-field ``.npz`` written by this package (only its
    small JSON header is read)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files") or not {"psfs", "header"} <= set(data.files):
                return False
            header = json.loads(str(data["header"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and header.get("format") == _FILE_FORMAT


def _supports(weights: np.ndarray):
    """Yield ``(node, (start, stop))`` for each node with non-zero weight somewhere."""
    for node, row in enumerate(weights):
        nonzero = np.flatnonzero(row > 0)
        if nonzero.size:
            yield node, (int(nonzero[0]), int(nonzero[-1]) + 1)
