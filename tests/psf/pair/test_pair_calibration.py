"""Calibration from a sharp pattern and the instrument's blurred image of it."""

import numpy as np
import pytest
from scipy import ndimage

from napari_coordgate.data import make_specimen
from _psf_checks import central, pearson
from napari_coordgate.psf import calibrate_from_pair, simulate_lens
from napari_coordgate.psf.pair import calibrate as pair
from napari_coordgate.psf.centroid import centre_on_centroid, centroid_offset
from napari_coordgate.psf.pair.registration import _resample

EXPLAINS_TOO_LITTLE = r"the sharp pattern explains only \d+% of the blurred image .*do not show the same pattern"


def node_correlations(measured, truth, *, centre_truth: bool = False) -> np.ndarray:
    """Pearson correlation of each grid PSF with the truth, on the smaller of the two kernel sizes."""
    size = min(measured.psf_size, truth.psf_size)
    gy, gx = truth.grid_shape

    def reference(i, j):
        kernel = truth.psfs[i, j]
        return centre_on_centroid(kernel) if centre_truth else kernel

    return np.array(
        [[pearson(central(measured.psfs[i, j], size), central(reference(i, j), size)) for j in range(gx)] for i in range(gy)]
    )


def pattern(shape, seed: int) -> np.ndarray:
    """Random binary blobs of a few pixels: broadband, like a printed calibration target."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), 1.2)
    return (noise > np.percentile(noise, 55)).astype(float) * 0.8 + 0.1


@pytest.fixture(scope="module")
def lens():
    """A lens with defocus and astigmatism growing towards the edge (FWHM 2.8 px centre, 6 px corners)."""
    return simulate_lens((256, 256), grid=(4, 4), psf_size=21, defocus_edge=0.8, astigmatism_edge=0.5)


# -- good pairs --------------------------------------------------------------------------------------
def test_pair_recovers_the_psf_field(lens):
    rng = np.random.default_rng(5)
    sharp = pattern((256, 256), seed=6)
    seen = ndimage.shift(sharp, (1.3, -0.7), order=3, mode="reflect")  # the slide sits slightly off
    blurred = lens.blur(seen) * 1000 + 50 + rng.normal(0, 10, (256, 256))  # 1 % noise
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4))
    assert field.kind == "pair"
    np.testing.assert_allclose(field.metadata["registration"]["shift"], (1.3, -0.7), atol=0.1)
    correlation = node_correlations(field, lens)
    assert correlation.min() >= 0.8, correlation
    assert field.metadata["explained_fraction"] >= 0.95
    assert field.metadata["warnings"] == [] and field.metadata["pattern_coverage"] >= 0.95


def test_pair_with_a_magnification_difference(lens):
    rng = np.random.default_rng(7)
    sharp = pattern((300, 300), seed=8)
    seen, _ = _resample(sharp, 1.06, (0.4, -1.1), (256, 256))  # 1.06 pattern pixels per camera pixel
    blurred = lens.blur(seen) + rng.normal(0, 0.01, (256, 256))
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4), psf_size=21)
    assert field.metadata["registration"]["scale"] == pytest.approx(1.06, abs=0.005)
    assert node_correlations(field, lens).min() >= 0.8


def test_a_noisy_pair_is_accepted(lens):
    """5 % noise still leaves the pattern explaining most of the image (about 0.9), far above the threshold."""
    rng = np.random.default_rng(5)
    sharp = pattern((256, 256), seed=6)
    blurred = lens.blur(sharp) * 1000 + 50 + rng.normal(0, 50, (256, 256))
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4), psf_size=21)
    assert field.metadata["explained_fraction"] >= 0.8 > pair.MIN_EXPLAINED_FRACTION


def test_node_psfs_are_centred_on_their_centroids():
    """A comatic lens moves each PSF's centroid off its peak; every measured PSF is re-centred on its centroid."""
    coma = simulate_lens((256, 256), grid=(4, 4), psf_size=25, defocus_edge=0.8, astigmatism_edge=0.5, coma_edge=0.6)
    rng = np.random.default_rng(11)
    sharp = pattern((256, 256), seed=12)
    blurred = coma.blur(sharp) * 1000 + 50 + rng.normal(0, 10, (256, 256))
    messages = []
    field = calibrate_from_pair(sharp, blurred, grid=(4, 4), psf_size=25, report=messages.append)
    offsets = np.array([[centroid_offset(p) for p in row] for row in field.psfs])
    assert np.abs(offsets).max() <= 0.05, offsets
    shifts = np.array(field.metadata["centroid_shift_px"])
    assert shifts.shape == (4, 4, 2) and np.all(np.isfinite(shifts))
    assert any("centred on their centroids" in m for m in messages)
    # Re-centring keeps the shape: the measured PSFs match the truth centred the same way (the
    # comatic corners less well, about 0.72; uncentred, measured and model kernels correlate at 0.3
    # there, as the registration absorbs the mean displacement of the blur).
    correlation = node_correlations(field, coma, centre_truth=True)
    assert np.median(correlation) >= 0.8 and correlation.min() >= 0.6, correlation


# -- refusals ----------------------------------------------------------------------------------------
def test_unrelated_images_cannot_be_registered():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="could not register the blurred image to the sharp pattern"):
        calibrate_from_pair(rng.random((128, 128)), ndimage.gaussian_filter(rng.random((128, 128)), 2))


def test_unrelated_specimens_that_register_are_refused(lens):
    """These two specimens pass the low-pass registration check but their node residuals are about 1."""
    sharp = make_specimen((256, 256), np.random.default_rng(2))
    other = make_specimen((256, 256), np.random.default_rng(13))
    with pytest.raises(ValueError, match=EXPLAINS_TOO_LITTLE + r".*magnification within 0\.85-1\.18 and no rotation"):
        calibrate_from_pair(sharp, lens.blur(other), grid=(4, 4))


def test_a_rotated_pattern_is_refused(lens):
    """Rotated by 5 degrees, the pattern registers (0.40) but explains about 8 % of the image.

    (With small node windows, e.g. ``psf_size=21``, a local shift of the kernel absorbs much of
    the rotation and the fraction rises to about 0.47: rotation is caught only with large windows.)
    """
    sharp = pattern((256, 256), seed=6)
    rotated = ndimage.rotate(sharp, 5, reshape=False, mode="reflect")
    with pytest.raises(ValueError, match=EXPLAINS_TOO_LITTLE):
        calibrate_from_pair(sharp, lens.blur(rotated) * 1000 + 50, grid=(4, 4))


def _textures(seed):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random((256, 256)), 4), ndimage.gaussian_filter(rng.random((256, 256)), 4)


def _camera_and_moon():
    data = pytest.importorskip("skimage.data")
    return data.camera()[100:356, 100:356].astype(float), data.moon()[100:356, 100:356].astype(float)


@pytest.mark.parametrize(
    "make_pair",
    [
        pytest.param(lambda: _textures(1), id="smooth-random-textures"),
        pytest.param(lambda: (pattern((256, 256), 1), pattern((256, 256), 21)), id="two-blob-patterns"),
        pytest.param(_camera_and_moon, id="camera-vs-moon"),
    ],
)
def test_pairs_of_different_images_explain_too_little(lens, make_pair, monkeypatch):
    """With the registration check out of the way, the explained fraction alone refuses unrelated pairs."""
    monkeypatch.setattr(pair, "MIN_REGISTRATION_SCORE", -1.0)
    sharp, other = make_pair()
    with pytest.raises(ValueError, match=EXPLAINS_TOO_LITTLE):
        calibrate_from_pair(sharp, lens.blur(other), grid=(4, 4), psf_size=21)


@pytest.mark.parametrize(
    "sharp, blurred, message",
    [
        (np.zeros((2, 64, 64)), np.zeros((64, 64)), "sharp image must be 2D"),
        (np.random.default_rng(0).random((64, 64)), np.ones((64, 64)) + 1j, "blurred image must hold real numbers"),
        (np.ones((64, 64)), np.ones((64, 64)), "sharp image is constant"),
    ],
)
def test_unusable_pairs_are_errors(sharp, blurred, message):
    with pytest.raises(ValueError, match=message):
        calibrate_from_pair(sharp, blurred)


# -- partial coverage --------------------------------------------------------------------------------
FILL_THE_FIELD = (
    r"the pattern must fill the whole field of view: use a larger pattern, or a smaller field "
    r"\(crop the blurred image to rows \d+-\d+ and columns \d+-\d+\)"
)


@pytest.fixture(scope="module")
def pattern_seen(lens):
    """A 256 x 256 pattern and its image through the lens (1 % noise)."""
    rng = np.random.default_rng(5)
    sharp = pattern((256, 256), seed=6)
    return sharp, lens.blur(sharp) * 1000 + 50 + rng.normal(0, 10, (256, 256))


@pytest.mark.parametrize(
    "crop, grid, message",
    [
        pytest.param(
            (slice(64, 192), slice(64, 192)),
            (4, 4),
            r"the registered sharp pattern covers only 25% of the field: rows 6[34]-19[01] and columns 6[34]-19[01] of "
            r"the 256 x 256 blurred image, leaving 12 of the 16 grid cells \(row, column: \(0, 0\), \(0, 1\), .*\) "
            r"mostly uncovered, where the PSF cannot be measured \(at least 80% of the field and half of every grid "
            r"cell must be covered\)",
            id="half-size-pattern-in-the-middle",
        ),
        pytest.param(
            (slice(None), slice(0, 154)),
            (4, 4),
            r"covers only 60% of the field: rows 0-255 and columns [01]-15[34] of the 256 x 256 blurred image, leaving "
            r"8 of the 16 grid cells \(row, column: \(0, 2\), \(0, 3\), \(1, 2\), .*\) mostly uncovered",
            id="left-60%",
        ),
        pytest.param(
            (slice(None), slice(0, 200)),
            (2, 2),
            r"covers only 78% of the field: rows 0-255 and columns [01]-(199|200) of the 256 x 256 blurred image; the "
            r"PSF cannot be measured where the image does not show the pattern \(at least 80%",
            id="left-78%-coarse-grid",
        ),
    ],
)
def test_a_pattern_that_does_not_fill_the_field_is_refused(pattern_seen, crop, grid, message, monkeypatch):
    """The camera saw the whole pattern, but the sharp image given holds only part of it.

    Refused after the registration, before any PSF is measured (the node PSFs outside the pattern
    would be noise: median correlation with the truth 0.2-0.3 for the pattern in the middle).
    """
    sharp, blurred = pattern_seen
    monkeypatch.setattr(pair, "_node_psfs", lambda *args, **kwargs: pytest.fail("node PSFs measured"))
    with pytest.raises(ValueError, match=message + r".*" + FILL_THE_FIELD):
        calibrate_from_pair(sharp[crop], blurred, grid=grid, psf_size=21, allow_scale=False)


def test_a_pattern_on_a_blank_background_is_refused(lens):
    """A small target in the middle of an otherwise empty field: the crop it fills is named."""
    rng = np.random.default_rng(5)
    target = pattern((128, 128), seed=6)
    scene = np.full((256, 256), 0.1)
    scene[64:192, 64:192] = target
    blurred = lens.blur(scene) * 1000 + 50 + rng.normal(0, 10, (256, 256))
    with pytest.raises(ValueError, match=r"covers only 25% of the field.*crop the blurred image to rows 6[34]-19[01] "
                                         r"and columns 6[34]-19[01]"):
        calibrate_from_pair(target, blurred, grid=(4, 4))


def test_a_pattern_covering_most_of_the_field_is_warned_about(lens, pattern_seen):
    sharp, blurred = pattern_seen
    messages = []
    # The sharp pattern holds the left 88 % of what the camera saw: more than half of every grid cell.
    field = calibrate_from_pair(
        sharp[:, :225], blurred, grid=(4, 4), psf_size=21, allow_scale=False, report=messages.append
    )
    meta = field.metadata
    assert meta["pattern_coverage"] == pytest.approx(0.88, abs=0.01)
    assert len(meta["warnings"]) == 1
    warning = meta["warnings"][0]
    assert "covers only 88% of the field" in warning
    assert any(warning in m for m in messages)
    # The nodes the pattern covers fully are measured well.
    assert node_correlations(field, lens)[:, :3].min() >= 0.8


def test_a_pattern_not_filling_the_field_is_refused_after_a_weak_registration(pattern_seen, monkeypatch):
    """A registration not trusted to place the pattern: the explained fraction is checked first, then the coverage."""
    monkeypatch.setattr(pair, "_TRUSTED_REGISTRATION_SCORE", 1.01)
    sharp, blurred = pattern_seen
    messages = []
    with pytest.raises(ValueError, match=r"covers only 60% of the field.*" + FILL_THE_FIELD):
        calibrate_from_pair(sharp[:, :154], blurred, grid=(4, 4), psf_size=21, allow_scale=False,
                            report=messages.append)
    assert any("the sharp pattern explains" in m for m in messages)
