"""calibrate_from_pair: measure a PSF field from a known sharp pattern and the instrument's image of it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ...cancellation import cancellable, check_cancelled
from ...validation import int_pair, integer, number

from ..centroid import centre_on_centroid, centroid_offset
from ..field_grid import node_coordinates
from ..kernels import clean_psf_tails, psf_fwhm
from ..image_checks import as_real_image, checked_psf_size
from ..psf_field import PSFField
from .registration import MIN_REGISTRATION_SCORE, register_pattern, taper_window

__all__ = ["calibrate_from_pair", "MIN_EXPLAINED_FRACTION", "MIN_PATTERN_COVERAGE", "REQUIRED_PATTERN_COVERAGE"]

#: Smallest fraction of the blurred image's variance (``1 - median(relative_residual)**2``) that the
#: registered pattern must explain for a pair to be accepted. Measured: images of the same pattern give
#: 0.97-1.0 at 1 % noise, 0.88-0.97 at 5 %, 0.80 at 10 % and 0.53 at 20 %; unrelated specimens, textures,
#: random-blob patterns or natural images give 0.15 or less (mostly below 0), a pattern rotated by 5 degrees 0.08.
MIN_EXPLAINED_FRACTION = 0.4
#: Below this fraction of the field covered by the registered pattern, a warning is given.
MIN_PATTERN_COVERAGE = 0.9
#: Below this fraction of the field covered by the registered pattern, the pair is refused: the PSF is
#: measured only where the blurred image shows the pattern.
REQUIRED_PATTERN_COVERAGE = 0.8
#: A node whose window (or grid cell) holds less than this fraction of covered pixels is uncovered: its PSF
#: cannot be measured, and the pair is refused.
_MIN_NODE_COVERAGE = 0.5
#: A registration at least this good is trusted to place the pattern, so a pattern that does not fill the field
#: is refused before any PSF is measured. Measured: images of the same pattern 0.87-0.99 (1-40 % noise, a pattern
#: on a blank background included); unrelated images that pass MIN_REGISTRATION_SCORE 0.30-0.32, their
#: footprint a random 46-74 % of the field (they are refused as explaining too little of the image, first).
_TRUSTED_REGISTRATION_SCORE = 0.6

def _as_image(array, name: str) -> np.ndarray:
    image = as_real_image(array, name)
    if min(image.shape) < 32:
        raise ValueError(f"the {name} image of shape {image.shape} is too small (at least 32 x 32 needed)")
    if image.std() == 0:
        raise ValueError(f"the {name} image is constant: there is nothing to register or measure")
    return image


@cancellable
def calibrate_from_pair(
    sharp: np.ndarray,
    blurred: np.ndarray,
    *,
    psf_size: int | None = None,
    grid: tuple[int, int] = (4, 4),
    regularization: float = 1e-2,
    allow_scale: bool = True,
    report: Callable[[str], None] | None = None,
) -> PSFField:
    """Measure a PSF field from a sharp pattern and the instrument's blurred image of it.

    The pattern is registered to the blurred image (which defines the field):
    a scale (if ``allow_scale``) and a sub-pixel shift, see
    :func:`.registration.register_pattern`. Intensities are matched by a
    least-squares gain and offset on low-pass filtered copies. Then, for each
    grid node, a window around it (one cell wide, at least three PSF sizes,
    moved inside the field at the edges, Tukey-apodised) gives the local PSF
    by Tikhonov-regularised division in Fourier space::

        H = conj(S) B / (|S|**2 + regularization * mean(|S|**2))

    cropped to ``psf_size``, with its residual background and noise floor
    removed, negatives clipped and unit sum.

    Every node PSF is then shifted (sub-pixel) so that its intensity centroid
    sits at the kernel centre ``(k // 2, k // 2)``, the convention of every
    PSF in this package (:mod:`~napari_coordgate.psf.centroid`): blurring with the field does not
    move an object's centre of mass, so a network trained with it does not
    shift images across the field. The offset removed at each node is kept
    in ``metadata["centroid_shift_px"]``; a large shift common to all nodes
    is a registration offset between the pattern and the image, not a
    property of the lens.

    The pair is refused when the registered pattern does not fill the
    field: when it covers less than :data:`REQUIRED_PATTERN_COVERAGE` of the
    blurred image, or less than half of any grid cell (that node's PSF
    would be measured mostly outside the pattern). With a convincing
    registration (low-pass correlation 0.6 or more) this is checked before
    any PSF is measured; otherwise after the check below, as the footprint
    of a pattern that is not in the image means nothing. It is also refused
    when the registered pattern explains too little of
    the blurred image: the *explained fraction* ``1 - median(r)**2``, with
    ``r`` the node windows' relative residuals
    ``||observed - predicted|| / ||observed||`` (nodes whose windows the
    pattern covers), must be at least :data:`MIN_EXPLAINED_FRACTION`.
    Images of the same pattern give 0.88-1.0 with up to 5 % noise (0.5 at
    20 %); unrelated images, or a pattern rotated by 5 degrees, give 0.15 or
    less.

    Parameters
    ----------
    sharp : (h, w) array_like
        The known pattern (e.g. the image sent to a display, a printed target).
    blurred : (H, W) array_like
        The instrument's image of it; its shape is the field shape.
    psf_size : int, optional
        Odd kernel size. By default four times the largest node PSF width
        (:func:`.psf_fwhm`) measured with a probe kernel of half a grid cell
        (grown while the PSFs do not fit).
    grid : (gy, gx)
        Grid of the returned field.
    regularization : float
        Tikhonov weight relative to the mean power of the pattern.
    allow_scale : bool
        Also estimate a magnification difference (0.85 to 1.18).
    report : callable, optional
        Called with progress messages.
    cancel : threading.Event, optional
        Set it (from another thread) to stop the calibration: it raises
        :class:`~napari_coordgate.cancellation.Cancelled` soon after.

    Returns
    -------
    PSFField
        ``kind="pair"``; ``metadata`` holds the registration (scale, shift,
        score), the gain and offset, each node's relative residual
        (``"relative_residual"``), the ``"explained_fraction"``, the
        centroid offset removed at each node (``"centroid_shift_px"``,
        ``(gy, gx, 2)`` in ``(dy, dx)`` pixels), the fraction of the field the
        registered pattern covers (``"pattern_coverage"``) and of each node
        window (``"node_coverage"``), and ``"warnings"``: human-readable
        sentences (empty when all is well), e.g. when the pattern covers
        less than :data:`MIN_PATTERN_COVERAGE` of the field.

    Raises
    ------
    ValueError
        If an image is unusable, the pair cannot be registered, the
        registered pattern does not fill the field (see above; the message
        gives the fraction covered and the crop of the blurred image that
        the pattern fills), or it explains less than
        :data:`MIN_EXPLAINED_FRACTION` of the blurred image.
    ~napari_coordgate.cancellation.Cancelled
        When ``cancel`` was set.
    """
    say = report or (lambda message: None)
    sharp_image = _as_image(sharp, "sharp")
    blurred_image = _as_image(blurred, "blurred")
    regularization = number("regularization", regularization, low=0, high=1e6, low_open=True)
    if psf_size is not None:
        psf_size = integer("psf_size", psf_size, low=3)
    H, W = blurred_image.shape
    gy, gx = int_pair("grid", grid, low=1)

    registration = register_pattern(sharp_image, blurred_image, allow_scale=allow_scale, report=say)
    if registration.score < MIN_REGISTRATION_SCORE:
        raise ValueError(
            "could not register the blurred image to the sharp pattern "
            f"(low-pass correlation {registration.score:.2f} after alignment, {MIN_REGISTRATION_SCORE} needed): "
            "check that both images show the same pattern, with no rotation and a magnification within 0.85-1.18"
        )
    if registration.score >= _TRUSTED_REGISTRATION_SCORE:
        _check_pattern_fills_field(registration.valid, (gy, gx))
    aligned = registration.aligned
    gain, offset = _match_intensity(aligned, blurred_image, registration.valid)
    target = (blurred_image - offset) / gain
    say(f"intensity match: blurred = {gain:.4g} x sharp + {offset:.4g}")

    largest = max(min(H, W) // 4 - 1 + (min(H, W) // 4) % 2, 3)
    if psf_size is not None:
        psf_size = checked_psf_size(psf_size, largest, (H, W))
    else:
        psf_size = _default_psf_size(aligned, target, (gy, gx), regularization, largest)
    psfs, residuals, window_shape = _node_psfs(aligned, target, (gy, gx), psf_size, regularization)
    say(f"PSF size {psf_size} px; node residuals {np.nanmin(residuals):.3f}-{np.nanmax(residuals):.3f}")

    coverage = float(registration.valid.mean())
    node_coverage = _node_coverage(registration.valid, (gy, gx), window_shape)
    covered = node_coverage >= _MIN_NODE_COVERAGE
    judged = residuals[covered] if covered.any() else residuals.ravel()
    median_residual = float(np.median(judged))
    explained = 1.0 - median_residual**2
    if not explained >= MIN_EXPLAINED_FRACTION:
        raise ValueError(
            f"the sharp pattern explains only {max(explained, 0.0):.0%} of the blurred image "
            f"(median node residual {median_residual:.2f}, at least {MIN_EXPLAINED_FRACTION:.0%} needed): "
            "the two images do not show the same pattern, or it is misregistered; give the pattern that was imaged, "
            "at a magnification within 0.85-1.18 and no rotation (or, if the blurred image is mostly noise, "
            "average several frames)"
        )
    say(f"the sharp pattern explains {explained:.1%} of the blurred image")
    _check_pattern_fills_field(registration.valid, (gy, gx))  # a registration not trusted above
    warnings = []
    if coverage < MIN_PATTERN_COVERAGE:
        warning = f"the registered sharp pattern covers only {coverage:.0%} of the field"
        outside = np.argwhere(~covered)
        if len(outside):
            nodes = ", ".join(f"({i}, {j})" for i, j in outside)
            warning += (
                f"; the windows of nodes {nodes} (row, column) lie mostly outside it, "
                "so their PSFs are not measured and should not be trusted"
            )
        warning += ": give a sharp pattern that covers the whole field of the blurred image"
        warnings.append(warning)
        say(f"warning: {warning}")

    centroid_shifts = np.array([[centroid_offset(p) for p in row] for row in psfs])
    # More passes than the default: isolated noise specks left far out in a measured kernel slow the convergence.
    psfs = np.array([[centre_on_centroid(p, passes=10) for p in row] for row in psfs])
    largest_shift = float(np.hypot(*centroid_shifts.reshape(-1, 2).T).max())
    say(f"node PSFs centred on their centroids (largest shift {largest_shift:.2f} px)")
    metadata = {
        "registration": {
            "scale": registration.scale,
            "shift": registration.shift.tolist(),
            "score": registration.score,
        },
        "gain": gain,
        "offset": offset,
        "regularization": float(regularization),
        "psf_size": int(psf_size),
        "window_shape": list(window_shape),
        "relative_residual": residuals.tolist(),
        "explained_fraction": explained,
        "centroid_shift_px": centroid_shifts.tolist(),
        "pattern_coverage": coverage,
        "node_coverage": node_coverage.tolist(),
        "warnings": warnings,
    }
    return PSFField(psfs, (H, W), kind="pair", metadata=metadata)


def _match_intensity(aligned: np.ndarray, blurred: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Least-squares ``blurred ~ gain * aligned + offset`` on low-pass copies (blur leaves those alike)."""
    a = ndimage.gaussian_filter(aligned, 4.0)[valid]
    b = ndimage.gaussian_filter(blurred, 4.0)[valid]
    gain, offset = np.polyfit(a, b, 1)
    if not gain > 0:
        raise ValueError(
            "could not register the blurred image to the sharp pattern: its intensities do not increase with the pattern's"
        )
    return float(gain), float(offset)


def _node_psfs(aligned, target, grid, k: int, regularization: float):
    """Cleaned ``(gy, gx, k, k)`` node PSFs, their relative residuals and the window shape used."""
    H, W = target.shape
    gy, gx = grid
    window_shape = tuple(int(min(n, max(n / g, 3 * k))) for n, g in ((H, gy), (W, gx)))
    psfs = np.empty((gy, gx, k, k))
    residuals = np.empty((gy, gx))
    for i, y in enumerate(node_coordinates(H, gy)):
        check_cancelled()
        for j, x in enumerate(node_coordinates(W, gx)):
            window = _window_slices((y, x), window_shape, (H, W))
            psfs[i, j], residuals[i, j] = _local_psf(aligned[window], target[window], k, regularization)
    return clean_psf_tails(psfs), residuals, window_shape


def _node_coverage(valid: np.ndarray, grid, window_shape) -> np.ndarray:
    """Fraction of each node window's pixels that the registered pattern covers, ``(gy, gx)``."""
    H, W = valid.shape
    return np.array(
        [
            [valid[_window_slices((y, x), window_shape, (H, W))].mean() for x in node_coordinates(W, grid[1])]
            for y in node_coordinates(H, grid[0])
        ]
    )


def _cell_coverage(valid: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each grid cell's pixels that the registered pattern covers, ``(gy, gx)``."""
    rows = np.linspace(0, valid.shape[0], grid[0] + 1).round().astype(int)
    cols = np.linspace(0, valid.shape[1], grid[1] + 1).round().astype(int)
    return np.array(
        [[valid[r0:r1, c0:c1].mean() for c0, c1 in zip(cols[:-1], cols[1:])] for r0, r1 in zip(rows[:-1], rows[1:])]
    )


def _check_pattern_fills_field(valid: np.ndarray, grid: tuple[int, int]) -> None:
    """Refuse a registered pattern that leaves part of the field unmeasured.

    Parameters
    ----------
    valid : (H, W) ndarray of bool
        Pixels of the blurred image that the registered pattern covers.
    grid : (gy, gx)
        Grid of the field to measure.

    Raises
    ------
    ValueError
        When the pattern covers less than :data:`REQUIRED_PATTERN_COVERAGE`
        of the field, or less than half of a grid cell. The message gives the
        fraction covered, the rows and columns of the blurred image the
        pattern fills (the crop that would make a usable pair) and the grid
        cells it leaves out.
    """
    H, W = valid.shape
    coverage = float(valid.mean())
    uncovered = np.argwhere(_cell_coverage(valid, grid) < _MIN_NODE_COVERAGE)
    if coverage >= REQUIRED_PATTERN_COVERAGE and not len(uncovered):
        return
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if not len(rows):
        raise ValueError(
            "the registered sharp pattern covers none of the blurred image: the pattern must fill the whole field of "
            "view; give the pattern that was imaged"
        )
    region = f"rows {rows[0]}-{rows[-1]} and columns {cols[0]}-{cols[-1]}"
    if len(uncovered):
        cells = ", ".join(f"({i}, {j})" for i, j in uncovered[:6]) + (", ..." if len(uncovered) > 6 else "")
        unmeasured = (
            f", leaving {len(uncovered)} of the {grid[0] * grid[1]} grid cells (row, column: {cells}) mostly "
            "uncovered, where the PSF cannot be measured"
        )
    else:
        unmeasured = "; the PSF cannot be measured where the image does not show the pattern"
    raise ValueError(
        f"the registered sharp pattern covers only {coverage:.0%} of the field: {region} of the {H} x {W} blurred "
        f"image{unmeasured} (at least {REQUIRED_PATTERN_COVERAGE:.0%} of the field and half of every grid cell must "
        "be covered); the pattern must fill the whole field of view: use a larger pattern, or a smaller field "
        f"(crop the blurred image to {region})"
    )


def _default_psf_size(aligned, target, grid, regularization: float, largest: int) -> int:
    """Four times the widest node PSF's width, found with growing probe kernels."""
    H, W = target.shape
    probe = min(largest, max(15, int(min(H / grid[0], W / grid[1]) // 2) | 1))
    while True:
        psfs, _, _ = _node_psfs(aligned, target, grid, probe, regularization)
        widest = np.nanmax([psf_fwhm(p) for p in psfs.reshape(-1, probe, probe)])
        size = int(np.ceil(4 * widest)) | 1
        if size <= probe or probe >= largest:
            return int(np.clip(size, 7, probe))
        probe = min(largest, 2 * probe + 1)


def _window_slices(centre, window_shape, field_shape) -> tuple[slice, slice]:
    """A window of ``window_shape`` around ``centre``, moved inside the field where needed."""
    slices = []
    for c, size, n in zip(centre, window_shape, field_shape):
        start = int(np.clip(round(c - size / 2), 0, n - size))
        slices.append(slice(start, start + size))
    return tuple(slices)


def _local_psf(sharp_patch: np.ndarray, blurred_patch: np.ndarray, k: int, regularization: float):
    """Tikhonov estimate of the kernel taking ``sharp_patch`` to ``blurred_patch``, cropped to ``k``."""
    taper = taper_window(sharp_patch.shape, 0.5)
    level = sharp_patch.mean()
    s = np.fft.rfft2((sharp_patch - level) * taper)
    b = np.fft.rfft2((blurred_patch - level) * taper)
    power = np.abs(s) ** 2
    transfer = np.conj(s) * b / (power + regularization * power.mean())
    kernel = np.fft.fftshift(np.fft.irfft2(transfer, s=sharp_patch.shape))
    cy, cx = sharp_patch.shape[0] // 2, sharp_patch.shape[1] // 2
    half = k // 2
    cropped = kernel[cy - half : cy + half + 1, cx - half : cx + half + 1]
    predicted = np.fft.irfft2(s * np.fft.rfft2(np.fft.ifftshift(_embed(cropped, sharp_patch.shape))), s=sharp_patch.shape)
    observed = (blurred_patch - level) * taper
    residual = float(np.linalg.norm(observed - predicted) / (np.linalg.norm(observed) + 1e-30))
    return cropped, residual


def _embed(kernel: np.ndarray, shape) -> np.ndarray:
    """``kernel`` centred in a zero array of ``shape`` (centre at ``shape // 2``)."""
    out = np.zeros(shape)
    half = kernel.shape[0] // 2
    cy, cx = shape[0] // 2, shape[1] // 2
    out[cy - half : cy + half + 1, cx - half : cx + half + 1] = kernel
    return out
