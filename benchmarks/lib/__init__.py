"""Code the benchmark scripts share; the scripts themselves are the files one folder up.

Every benchmark script runs as ``python benchmarks/<script>.py`` or, from this
folder's parent, ``python <script>.py``; either way the script's own folder is
on ``sys.path``, so ``from lib.<module> import ...`` finds this package.

Modules
-------
- :mod:`lib.common`: where results go (one folder per script under
  ``benchmarks/results/``), the machine a number was measured on, writing a
  JSON result or appending a JSON line, the held-out test seed.
- :mod:`lib.scoring`: PSNR / SSIM of predictions (pooled over a stack, or per
  image for paired comparisons), by field region, of a model's predictions,
  an 8 x 8 PSNR map, and blur fidelity (a calibrated field's blur against the
  true lens's).
- :mod:`lib.stats`: paired per-image differences (mean and standard error).
- :mod:`lib.timing`: wall-clock timing of a call, once or the median of repeats.
- :mod:`lib.heldout`: held-out test images: the paper's simulated lens and its
  test set, real specimens through a true lens with camera noise.
- :mod:`lib.training`: the training settings of ``train_quality.py``, training
  under a wall-clock budget, training the CG U-Net / U-Net pair on a field.
- :mod:`lib.calibration`: bead calibration as the benchmarks run it (the cases
  ``library:lens:layout``, a slide and its true lens, ``calibrate_from_beads``
  tolerant of an older signature, the field the default flow calibrates).
- :mod:`lib.classical`: classical deconvolution baselines (Wiener,
  Richardson-Lucy, patch-wise Richardson-Lucy), each parameter tuned.
- :mod:`lib.independent_lens`: test lenses, bead slides, real specimens and
  metrics computed with pyotf (not this project's pupil code).
- :mod:`lib.psfmodels_lens`: test lenses from a second library, psfmodels.
"""
