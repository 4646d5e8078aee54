"""The centroid self-check: calibrated PSFs must put each bead's light where it is."""

import numpy as np
from scipy import ndimage

from napari_coordgate.psf import PSFField
from napari_coordgate.psf.centroid import centre_on_centroid
from napari_coordgate.psf.beads.centroid_check import check_centroids, describe_centroid_check


def _comatic(k=41, tail=0.35):
    """A bright core and a one-sided tail 9 px away, centred on its whole centroid."""
    yy, xx = np.indices((k, k)) - k // 2
    core = np.exp(-(yy**2 + xx**2) / (2 * 1.5**2))
    blob = np.exp(-((yy - 6) ** 2 + (xx - 6) ** 2) / (2 * 3.0**2))
    psf = core / core.sum() * (1 - tail) + blob / blob.sum() * tail
    return centre_on_centroid(psf)


def _slide(kernel, rng, shape=(160, 160)):
    positions = np.array([(y, x) for y in range(25, 140, 22) for x in range(25, 140, 22)], float)
    positions += rng.uniform(-0.5, 0.5, positions.shape)
    fluxes = rng.uniform(2e4, 4e4, len(positions))
    k = kernel.shape[0]
    image = np.full(shape, 100.0)
    for (y, x), f in zip(positions, fluxes):
        iy, ix = int(round(y)), int(round(x))
        placed = ndimage.shift(kernel, (y - iy, x - ix), order=3)
        image[iy - k // 2 : iy + k // 2 + 1, ix - k // 2 : ix + k // 2 + 1] += f * placed
    return rng.poisson(image).astype(float), positions, fluxes


def _field(kernel, shape=(160, 160)):
    return PSFField(np.broadcast_to(kernel, (2, 2, *kernel.shape)).copy(), shape)


def test_a_field_that_misses_a_tail_is_caught_and_the_true_one_passes():
    rng = np.random.default_rng(0)
    truth = _comatic()
    image, positions, fluxes = _slide(truth, rng)
    significance = np.full(len(positions), 100.0)
    args = dict(read_variance=100.0, gain=1.0, window=41)

    good = check_centroids(image, _field(truth), positions, fluxes, significance, **args)
    assert good["passed"] and good["n_beads"] == len(positions)
    assert good["median_px"] < 0.15 and len(good["regions"]) == 9

    # The core alone, centred on its own centroid: it fits the bright pixels but sits off the whole image's centroid.
    k = truth.shape[0]
    yy, xx = np.indices((k, k)) - k // 2
    core = centre_on_centroid(np.exp(-(yy**2 + xx**2) / (2 * 1.5**2)))
    shift = np.array([6.0, 6.0]) * 0.35  # where the truth's core sits relative to its centroid, roughly
    bad = check_centroids(image, _field(core), positions - shift, fluxes, significance, **args)
    assert not bad["passed"]
    assert bad["median_px"] > 1.5
    assert len(bad["worst"]) == 3 and all(len(row) == 5 for row in bad["worst"])
    assert all(row[4] > 1.5 for row in bad["worst"])


def test_faint_beads_are_not_judged():
    rng = np.random.default_rng(1)
    truth = _comatic()
    image, positions, fluxes = _slide(truth, rng)
    result = check_centroids(image, _field(truth), positions, fluxes, np.full(len(positions), 5.0),
                             read_variance=100.0, gain=1.0, window=41)
    assert result["n_beads"] == 0 and result["passed"] and result["median_px"] is None and result["regions"] == []


def test_beads_on_and_beyond_the_border_are_handled():
    """Clipped beads (centres just outside the image) are rendered as neighbours but not judged."""
    rng = np.random.default_rng(2)
    truth = _comatic()
    image, positions, fluxes = _slide(truth, rng)
    positions = np.vstack([positions, [[-2.4, 80.0], [80.0, 161.6], [0.3, 0.2]]])
    fluxes = np.concatenate([fluxes, [3e4, 3e4, 3e4]])
    result = check_centroids(image, _field(truth), positions, fluxes, np.full(len(positions), 100.0),
                             read_variance=100.0, gain=1.0, window=41)
    assert result["n_beads"] == len(positions) - 3


def test_a_bead_next_to_light_the_fit_left_out_is_not_judged():
    rng = np.random.default_rng(3)
    truth = _comatic()
    image, positions, fluxes = _slide(truth, rng)
    args = dict(read_variance=100.0, gain=1.0, window=41)
    everyone = check_centroids(image, _field(truth), positions, fluxes, np.full(len(positions), 100.0), **args)
    saturated_neighbour = positions[:1] + [5.0, 5.0]
    fewer = check_centroids(image, _field(truth), positions, fluxes, np.full(len(positions), 100.0),
                            unmodelled=saturated_neighbour, **args)
    assert fewer["n_beads"] < everyone["n_beads"]


def test_the_report_line_gives_the_figures_and_names_the_worst_regions():
    check = {"n_beads": 40, "regions": [], "median_px": 0.3, "max_px": 2.6, "passed": False,
             "worst": [[300.0, 40.0, 2.0, 1.6, 2.56]]}
    line = describe_centroid_check(check, (384, 384))
    assert "40 bright beads" in line and "median 0.30 px, at most 2.60 px" in line
    assert "beyond 2 px: bottom left (300, 40) 2.6 px" in line
    passed = describe_centroid_check({**check, "max_px": 0.5, "worst": [], "passed": True}, (384, 384))
    assert "beyond" not in passed
    assert describe_centroid_check({"n_beads": 0, "regions": [], "median_px": None, "max_px": None, "worst": [],
                                    "passed": True}) is None
    assert describe_centroid_check(None) is None
