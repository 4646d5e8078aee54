"""The sample images of one simulated microscope (napari's File > Open Sample), Qt-free.

Three views of one instrument, a simulated lens that is sharp on axis and
blurred by defocus, astigmatism and coma towards the field edge, all made
with fixed seeds:

- ``"beads"``: a bead slide seen through the lens, with noise;
- ``"blurred_specimen"``: a fluorescence-like specimen seen through the lens, with noise;
- ``"ground_truth"``: the same specimen without blur or noise.

Making them takes a second or more (the lens's pupil PSFs), and napari asks
for a sample on its GUI thread, so the images are also shipped, made by this
module, in ``sample_images.npz`` beside it: :func:`sample_images` reads that
file when it was made from the current recipe (:data:`SAMPLE_RECIPE`) and
makes the images otherwise. Remake the file after changing the recipe::

    python -m napari_coordgate.data.samples
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..files.atomic import atomic_write
from .noise import add_poisson_gaussian
from .specimens import make_specimen

__all__ = ["SAMPLE_LENS", "SAMPLE_RECIPE", "SAMPLE_NAMES", "make_sample_images", "sample_images", "write_sample_file"]

#: The simulated lens of all samples (arguments of :func:`~napari_coordgate.psf.simulate_lens`).
SAMPLE_LENS = dict(
    field_shape=(256, 256), grid=(8, 8), defocus_edge=1.0, astigmatism_edge=0.4, coma_edge=0.2, seed=0
)
#: Everything the images depend on besides the code: the lens, photons at the specimen's bright
#: level, the camera's read noise (electrons), the seeds and the bead slide.
SAMPLE_RECIPE = dict(lens=SAMPLE_LENS, photons=300.0, read_noise=2.0, specimen_seed=6, noise_seed=2, bead_seed=3,
                     n_beads=90, bead_brightness=(2000, 20000))
#: The samples, by key.
SAMPLE_NAMES = ("beads", "blurred_specimen", "ground_truth")
#: The shipped images.
SAMPLE_FILE = Path(__file__).with_name("sample_images.npz")


def _recipe_digest() -> str:
    return hashlib.sha256(json.dumps(SAMPLE_RECIPE, sort_keys=True).encode()).hexdigest()[:16]


def make_sample_images() -> tuple[dict[str, np.ndarray], dict]:
    """Make the three sample images (float32, photon units) and the lens's metadata."""
    from ..psf.optics.bead_slide import render_bead_target
    from ..psf.optics.simulate import simulate_lens

    r = SAMPLE_RECIPE
    lens = simulate_lens(**r["lens"])
    specimen = make_specimen(r["lens"]["field_shape"], np.random.default_rng(r["specimen_seed"]))
    beads, _ = render_bead_target(lens, n_beads=r["n_beads"], brightness=r["bead_brightness"], seed=r["bead_seed"])
    blurred = lens.blur(specimen)
    noisy = add_poisson_gaussian(blurred, r["photons"], r["read_noise"], np.random.default_rng(r["noise_seed"]))
    images = {"beads": beads, "blurred_specimen": noisy * r["photons"],
              "ground_truth": specimen * np.float32(r["photons"])}
    return {key: np.asarray(image, np.float32) for key, image in images.items()}, dict(lens.metadata)


def write_sample_file(path: str | Path = SAMPLE_FILE) -> Path:
    """Make the sample images and write them, with the recipe's digest, to ``path`` (atomically)."""
    images, lens = make_sample_images()
    path = Path(path)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, recipe=np.array(_recipe_digest()), lens=np.array(json.dumps(lens)), **images)

    atomic_write(path, write)
    return path


@lru_cache(maxsize=1)
def _images() -> tuple[dict[str, np.ndarray], dict]:
    try:
        with np.load(SAMPLE_FILE, allow_pickle=False) as stored:
            if str(stored["recipe"]) == _recipe_digest():
                return {key: stored[key] for key in SAMPLE_NAMES}, json.loads(str(stored["lens"]))
    except (OSError, KeyError, ValueError):
        pass  # missing, unreadable or another recipe's: make them
    return make_sample_images()


def sample_images() -> tuple[dict[str, np.ndarray], dict]:
    """The sample images by key (fresh float32 copies) and the lens's metadata.

    Read from the shipped file when it holds the current recipe's images, else made (a second or more).
    """
    images, lens = _images()
    return {key: image.copy() for key, image in images.items()}, dict(lens)


if __name__ == "__main__":
    print(f"wrote {write_sample_file()}")
