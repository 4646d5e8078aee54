"""``coordgate demo``: the whole workflow on a simulated lens, end to end.

1. A simulated lens (sharp on axis, defocused towards the edge) images a bead
   slide; the PSF field is calibrated from that bead image alone.
2. A CG U-Net is trained for the calibrated field, under a wall-clock budget.
3. A held-out specimen, blurred by the *true* lens with camera noise, is
   deblurred; PSNR / SSIM before and after are printed (whole field, centre
   and edge), and a figure and the images are written to the output folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files.atomic import atomic_write
from ..files.images import write_image

__all__ = ["run_demo", "DemoSettings", "FULL", "QUICK"]

OUTPUT_FILES = ("beads.tif", "psf_field.npz", "model.safetensors", "blurred.tif", "deblurred.tif", "truth.tif",
                "figure.png", "metrics.json")


@dataclass(frozen=True)
class DemoSettings:
    field_shape: tuple[int, int]
    grid: tuple[int, int] | None  # None: sampled on cells of about 32 px
    defocus_edge: float
    astigmatism_edge: float
    coma_edge: float
    n_beads: int
    bead_photons: tuple[float, float]
    depth: int
    base_channels: int
    patch_size: int
    n_specimens: int
    batch_size: int
    steps: int | None  # None: train for --minutes


# The lens is the napari sample's (defocus, astigmatism and coma growing to the corners); the
# beads are calibrated with the pupil model, told the lens's optics as a user would be.
FULL = DemoSettings((256, 256), None, 1.0, 0.4, 0.2, 120, (5e3, 5e4), 3, 16, 64, 16, 8, None)
QUICK = DemoSettings((128, 128), None, 1.0, 0.0, 0.0, 40, (5e3, 5e4), 2, 4, 32, 4, 4, 12)


def _prepare_folder(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    clash = [name for name in OUTPUT_FILES if (out / name).exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{out} already holds demo results ({', '.join(clash[:3])}...); use --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _scores(pred, truth, scale, masks) -> dict:
    from ..training.metrics import psnr, regional_psnr, ssim

    p, t = scale.normalize(pred), scale.normalize(truth)
    regions = regional_psnr(p, t, masks)
    return {"psnr": psnr(p, t), "ssim": ssim(p, t), "psnr_centre": regions["centre"], "psnr_edge": regions["edge"]}


def _figure(path: Path, blurred, deblurred, truth, gate, metrics) -> str:
    """Write the figure; return "" or, without matplotlib, a note on the plainer figure written."""
    try:
        import matplotlib
    except ImportError:
        from ..image_strip import save_strip

        low, high = np.percentile(truth, (0.5, 99.8))
        spread = max(float(np.abs(gate - 1).max()), 1e-3)
        atomic_write(path, lambda tmp: save_strip(tmp, [blurred, deblurred, truth, gate],
                                                  [(low, high)] * 3 + [(1 - spread, 1 + spread)],
                                                  ["gray"] * 3 + ["diverging"]), suffix=".png")
        return ("figure without titles (blurred | deblurred | truth | gate map): matplotlib is not installed; "
                "pip install 'napari-coordgate[napari]' for the full figure")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    low, high = np.percentile(truth, (0.5, 99.8))
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), constrained_layout=True)
    before, after = metrics["before"], metrics["after"]
    panels = [(blurred, f"blurred  {before['psnr']:.2f} dB / SSIM {before['ssim']:.3f}"),
              (deblurred, f"deblurred  {after['psnr']:.2f} dB / SSIM {after['ssim']:.3f}"),
              (truth, "truth")]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        ax.set_title(title, fontsize=10)
    im = axes[3].imshow(gate, cmap="RdBu_r")
    axes[3].set_title("gate map (full-resolution encoder block,\nchannel with the most spatial variation)", fontsize=10)
    fig.colorbar(im, ax=axes[3], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")
    plt.close(fig)
    return ""


def _strongest_gate(model) -> np.ndarray:
    from ..export.cover import strongest_gate

    return strongest_gate(model)[2]


def run_demo(args) -> int:
    from ..inference import deblur
    from ..data import DEFAULT_NOISE, add_poisson_gaussian, make_specimen
    from ..normalization import IntensityScale
    from ..model_files import save_model
    from ..psf.optics.bead_slide import render_bead_target
    from ..psf.beads.calibrate import calibrate_from_beads
    from ..psf.optics.simulate import simulate_lens
    from ..training.metrics import region_masks
    from .training import train_model

    if not args.minutes > 0:
        raise ValueError("--minutes must be positive")
    out = _prepare_folder(Path(args.out), args.overwrite)
    s = QUICK if args.quick else FULL
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    t_start = time.perf_counter()

    say(f"1/4 simulated lens: field {s.field_shape[0]}x{s.field_shape[1]} px, aberrations growing to the corners")
    lens = simulate_lens(s.field_shape, grid=(8, 8), defocus_edge=s.defocus_edge,
                         astigmatism_edge=s.astigmatism_edge, coma_edge=s.coma_edge)
    beads, _ = render_bead_target(lens, n_beads=s.n_beads, brightness=s.bead_photons, seed=args.seed)
    report = None if args.quiet else (lambda text: print(f"    {text}", flush=True))
    optics = {key: lens.metadata[key] for key in ("na", "wavelength_nm", "pixel_size_nm")}
    field = calibrate_from_beads(beads, grid=s.grid, report=report, **optics)
    true_s, cal_s = lens.summary(), field.summary()
    say(f"    calibrated from {s.n_beads} simulated beads: FWHM centre {cal_s['fwhm_centre_px']:.2f} px "
        f"(true {true_s['fwhm_centre_px']:.2f}), corners {cal_s['fwhm_corners_mean_px']:.2f} px (true {true_s['fwhm_corners_mean_px']:.2f})")

    budget = "" if s.steps else f", {args.minutes:g} min budget"
    say(f"2/4 training a CG U-Net({s.depth}), {s.base_channels} channels{budget}")
    trained = train_model(field, arch="cgunet", depth=s.depth, base_channels=s.base_channels, steps=s.steps,
                          start_from=args.start_from,
                          minutes=None if s.steps else args.minutes, batch_size=s.batch_size, patch_size=s.patch_size,
                          n_specimens=s.n_specimens, device=args.device, seed=args.seed, quiet=args.quiet)
    model, tm = trained.model, trained.metadata["training"]
    say(f"    from {tm['started_from']}: {tm['steps']} steps in {tm['elapsed_s']:.0f} s on {tm['device']}; validation PSNR "
        f"{tm['input_psnr']:.2f} -> {tm['val_psnr']:.2f} dB")

    say("3/4 deblurring a held-out specimen blurred by the true lens, with camera noise")
    rng = np.random.default_rng(args.seed + 10_000)
    truth = make_specimen(s.field_shape, rng)
    blurred = add_poisson_gaussian(lens.blur(truth), DEFAULT_NOISE["photons"], DEFAULT_NOISE["read_noise"], rng)
    t0 = time.perf_counter()
    deblurred = deblur(blurred, model, device=args.device)
    deblur_s = time.perf_counter() - t0
    scale = IntensityScale.from_percentiles(blurred, model.percentiles)
    masks = region_masks(s.field_shape)
    metrics = {"before": _scores(blurred, truth, scale, masks), "after": _scores(deblurred, truth, scale, masks),
               "deblur_s": deblur_s, "training": tm, "psf_true": true_s, "psf_calibrated": cal_s,
               "settings": {**s.__dict__, "minutes": args.minutes, "quick": args.quick}}
    b, a = metrics["before"], metrics["after"]
    for name, key in (("PSNR", "psnr"), ("SSIM", "ssim"), ("PSNR centre", "psnr_centre"), ("PSNR edge", "psnr_edge")):
        unit = "" if key == "ssim" else " dB"
        say(f"    {name:12s} {b[key]:7.3f}{unit} -> {a[key]:7.3f}{unit}")

    say(f"4/4 writing results to {out}/")
    write_image(out / "beads.tif", beads, overwrite=True)
    field.save(out / "psf_field.npz")
    save_model(model, out / "model.safetensors", **trained.metadata)
    for name, image in (("blurred", blurred), ("deblurred", deblurred), ("truth", truth)):
        write_image(out / f"{name}.tif", np.asarray(image, np.float32), overwrite=True)
    note = _figure(out / "figure.png", blurred, deblurred, truth, _strongest_gate(model), metrics)
    if note:
        say(f"    {note}")
    text = json.dumps(metrics, indent=1, default=float)
    atomic_write(out / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    say(f"done in {time.perf_counter() - t_start:.0f} s: see {out / 'figure.png'}")
    return 0
