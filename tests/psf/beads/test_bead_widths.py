"""Bead widths, which set the calibration's fit window: the beads' own, not the noise around them."""

import threading

import numpy as np
import pytest

from napari_coordgate import calibrate_from_beads
from napari_coordgate.cancellation import Cancelled
from napari_coordgate.psf.beads.detection import detect_beads
from napari_coordgate.psf.beads.nodes import bead_widths
from napari_coordgate.psf.kernels import psf_fwhm
from napari_coordgate.psf.optics.bead_slide import render_bead_target
from napari_coordgate.psf.optics.simulate import simulate_lens

SIZE = 512


@pytest.fixture(scope="module")
def sparse_slide():
    """20 beads on 512 x 512: the detection's footprints are about 35 px across, the beads 3 px wide."""
    lens = simulate_lens((SIZE, SIZE), grid=(2, 2), psf_size=15, defocus_edge=0.3, seed=1)
    image, _ = render_bead_target(lens, n_beads=20, brightness=(2000, 20000), seed=2)
    return lens, image


def gaussian(size: int, sigma: float) -> np.ndarray:
    yy, xx = np.indices((size, size)) - size // 2
    g = np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    return g / g.sum()


def test_counting_negative_pixels_removes_the_noise_inflation():
    sigma = 1.5
    fwhm = 2 * np.sqrt(2 * np.log(2)) * sigma
    clean = gaussian(61, sigma)
    assert psf_fwhm(clean, keep_negative=True) == pytest.approx(psf_fwhm(clean), rel=0.05)
    assert psf_fwhm(clean) == pytest.approx(fwhm, rel=0.05)
    rng = np.random.default_rng(0)
    clipped, signed = [], []
    for _ in range(20):  # a faint bead: 2000 photons on a background-subtracted noise of 10 per pixel
        noisy = 2000 * clean + rng.normal(0, 10, clean.shape)
        clipped.append(psf_fwhm(noisy))
        signed.append(psf_fwhm(noisy, keep_negative=True))
    assert np.median(clipped) > 3 * fwhm  # ignoring the negative half of the noise: mostly noise
    assert np.median(signed) == pytest.approx(fwhm, rel=0.25)


def test_psf_fwhm_refuses_a_patch_with_no_light():
    assert np.isnan(psf_fwhm(np.zeros((9, 9)), keep_negative=True))
    patch = -gaussian(9, 1.0)
    patch[4, 4] = 1e-3  # a positive pixel, but less light than dark
    assert np.isnan(psf_fwhm(patch, keep_negative=True))


def test_a_sparse_slides_bead_widths_are_the_beads(sparse_slide):
    lens, image = sparse_slide
    found = detect_beads(image)
    assert np.median(found.diameters) > 25  # the footprints: far wider than the beads
    widths = bead_widths(found, np.ones(len(found.centres), bool), image.astype(float), SIZE // 2 - 1)
    true = psf_fwhm(lens.psf_at(SIZE / 2, SIZE / 2))
    assert len(widths) >= 10
    assert np.median(widths) == pytest.approx(true, rel=0.3)
    assert np.percentile(widths, 95) < 2 * true


def test_a_sparse_slides_fit_window_follows_the_beads(sparse_slide):
    _, image = sparse_slide
    windows, cancel = [], threading.Event()

    def report(message: str) -> None:
        if "px window" in message:  # the window is chosen right after detection: stop there
            windows.append(int(message.split("fitted in a ")[1].split(" px")[0]))
            cancel.set()

    with pytest.raises(Cancelled):
        calibrate_from_beads(image, report=report, cancel=cancel)
    assert windows and windows[0] <= 25  # 5 widths of the widest beads (before: 157 px, 5 x the width of the noise)
