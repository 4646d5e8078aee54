"""The beads a large slide's field models are chosen on: spread over the field, the best of each region."""

import numpy as np

from napari_coordgate.psf.beads.subset import spread_subset


def test_every_bead_is_chosen_when_there_are_few():
    positions = np.random.default_rng(0).uniform(0, 100, (30, 2))
    assert spread_subset(positions, np.ones(30), (100, 100), 30).all()


def test_a_crowded_region_does_not_take_the_subset_over():
    rng = np.random.default_rng(1)
    spread = rng.uniform(0, 2048, (600, 2))
    crowd = rng.uniform(900, 1100, (600, 2))  # a cluster at the centre, as bright as the rest
    positions = np.r_[spread, crowd]
    significance = rng.uniform(10, 100, len(positions))
    chosen = spread_subset(positions, significance, (2048, 2048), 400)
    assert chosen.sum() == 400
    # Every 512 px block of the field keeps its share: about 400 / 16 = 25 beads.
    counts, _, _ = np.histogram2d(*positions[chosen].T, bins=4, range=[[0, 2048], [0, 2048]])
    assert counts.min() >= 15
    assert chosen[600:].sum() < 60  # the cluster covers 1 % of the field


def test_the_most_significant_bead_of_each_region_comes_first():
    # Two beads a cell: with one pick a cell, each cell gives its brighter bead.
    cells = np.array([[y, x] for y in (25, 75) for x in (25, 75)], float)
    positions = np.r_[cells, cells + 3]
    significance = np.r_[np.full(4, 50.0), np.full(4, 80.0)]
    chosen = spread_subset(positions, significance, (100, 100), 4)
    assert chosen[4:].all() and not chosen[:4].any()
