"""The ``coordgate`` subcommands (``run_<name>(args) -> exit status``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .._generators import drive
from ..files.images import check_output, image_format, open_image
from .progress import progress_bar

__all__ = ["run_calibrate", "run_train", "run_deblur", "run_export", "run_info"]


def _say(text: str) -> None:
    print(text, flush=True)


def _require_suffix(path: str, suffixes: tuple[str, ...], what: str) -> None:
    if not str(path).lower().endswith(suffixes):
        raise ValueError(f"{path}: {what} must end in {' or '.join(suffixes)}")


# -- calibrate ----------------------------------------------------------------------------------
def _read_plane(path: str, what: str) -> np.ndarray:
    image = np.asarray(open_image(path, lazy=False).array)
    image = np.squeeze(image)
    if image.ndim != 2:
        raise ValueError(f"{path}: the {what} must be one 2D plane, got shape {image.shape}")
    return image.astype(np.float32)


#: The command-line option of each optical value.
_OPTICS_OPTIONS = {"na": "--na", "wavelength_nm": "--wavelength", "pixel_size_nm": "--pixel-size",
                   "immersion_index": "--immersion-index"}
_OPTICS_NAMES = {"na": "NA", "wavelength_nm": "emission wavelength", "pixel_size_nm": "pixel size"}


def _note(text: str) -> None:
    print(f"coordgate: note: {text}", file=sys.stderr, flush=True)


def _bead_optics(args) -> tuple[dict, dict[str, str]]:
    """The optics of a bead calibration: those given, completed from what the image file records.

    Returns the four values (None where unknown) and, when the file gave any,
    where each value used came from. A value given always wins; the file's
    values are used only when NA, wavelength and pixel size are then all known.
    """
    given = {"na": args.na, "wavelength_nm": args.wavelength, "pixel_size_nm": args.pixel_size,
             "immersion_index": args.immersion_index}
    if args.ignore_file_optics or image_format(args.image) != "tiff":
        return given, {}
    from ..psf.optics.parameters import check_optics
    from ..psf.optics.metadata import describe_value, read_optics

    recorded = read_optics(args.image)
    name = Path(args.image).name
    for note in recorded.notes:
        _note(f"{name}: {note}")
    for key, value in recorded.values().items():
        if given[key] is not None and abs(given[key] - value) > 1e-6 * abs(value):
            _say(f"optics: {_OPTICS_OPTIONS[key]} {given[key]:g} given; the file records {value:g} "
                 f"({recorded.sources[key]})")
    taken = {key: value for key, value in recorded.values().items() if given[key] is None}
    if not taken:
        return given, {}
    optics = {**given, **taken}
    lacking = [key for key in _OPTICS_NAMES if optics[key] is None]
    if lacking:
        _note(f"{name} records {', '.join(describe_value(k, v) for k, v in taken.items())} but not the "
              f"{' or '.join(_OPTICS_NAMES[k] for k in lacking)}; the calibration needs NA, wavelength and pixel "
              f"size together (or none), so the file's optics are not used (give "
              f"{' and '.join(_OPTICS_OPTIONS[k] for k in lacking)} to use them)")
        return given, {}
    for key, value in taken.items():
        _say(f"optics from the file: {describe_value(key, value)} ({recorded.sources[key]})")
    try:
        check_optics(optics["na"], optics["wavelength_nm"], optics["pixel_size_nm"], optics["immersion_index"])
    except ValueError as err:
        raise ValueError(f"{err} (taken from {name}: {', '.join(describe_value(k, v) for k, v in taken.items())}; "
                         f"give the right values with {', '.join(_OPTICS_OPTIONS[k] for k in taken)}, or use "
                         "--ignore-file-optics)") from None
    sources = {key: f"{recorded.sources[key]} ({name})" if key in taken else _OPTICS_OPTIONS[key]
               for key, value in optics.items() if value is not None}
    return optics, sources


def _reporter(args):
    """Calibration notes go to stdout, indented (not with --quiet)."""
    return None if args.quiet else (lambda text: print(f"  {text}", flush=True))


def run_calibrate(args) -> int:
    _require_suffix(args.output, (".npz",), "a PSF field file")
    inputs = [getattr(args, n, None) for n in ("image", "sharp", "blurred")]
    check_output(args.output, overwrite=args.overwrite, inputs=inputs)
    from ..psf.calibration_report import calibration_report

    t0 = time.perf_counter()
    if args.method == "simulate":
        from ..psf.optics.simulate import simulate_lens

        field = simulate_lens(
            args.field, grid=args.grid, psf_size=args.psf_size, na=args.na, wavelength_nm=args.wavelength,
            pixel_size_nm=args.pixel_size, defocus_edge=args.defocus_edge, astigmatism_edge=args.astigmatism_edge,
            coma_edge=args.coma_edge, seed=args.seed,
        )
    elif args.method == "beads":
        from ..psf.beads.calibrate import calibrate_from_beads

        image = _read_plane(args.image, "bead image")
        optics, sources = _bead_optics(args)
        field = calibrate_from_beads(
            image, method=args.model, **optics, psf_size=args.psf_size, bead_size_px=args.bead_size, grid=args.grid,
            min_snr=args.min_snr, report=_reporter(args),
        )
        if sources:
            field.metadata["optics_sources"] = sources
    else:
        from ..psf.pair.calibrate import calibrate_from_pair

        sharp, blurred = _read_plane(args.sharp, "sharp image"), _read_plane(args.blurred, "blurred image")
        if sharp.shape != blurred.shape:
            raise ValueError(f"the sharp {sharp.shape} and blurred {blurred.shape} images differ in shape")
        field = calibrate_from_pair(sharp, blurred, psf_size=args.psf_size, grid=args.grid, report=_reporter(args))
    check_output(args.output, overwrite=args.overwrite)
    field.save(args.output)
    s = field.summary()
    _say(f"wrote {args.output}: {_describe_field(s)} ({time.perf_counter() - t0:.1f} s)")
    for line in calibration_report(field):
        _say(f"  {line}")
    for warning in field.metadata.get("warnings") or []:
        print(f"coordgate: warning: {' '.join(str(warning).split())}", file=sys.stderr, flush=True)
    return 0


def _describe_field(s: dict) -> str:
    return (
        f"{s['kind']} PSF field {s['field_shape'][0]}x{s['field_shape'][1]} px, grid {s['grid_shape'][0]}x{s['grid_shape'][1]}, "
        f"PSF {s['psf_size']} px, FWHM {s['fwhm_centre_px']:.2f} px at the centre, {s['fwhm_corners_mean_px']:.2f} px at the corners"
    )


# -- train --------------------------------------------------------------------------------------
def run_train(args) -> int:
    from .training import train_model

    _require_suffix(args.output, (".safetensors",), "a model file")
    check_output(args.output, overwrite=args.overwrite, inputs=[args.psf_field])
    if args.steps is not None and args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError("--minutes must be positive")
    from ..psf.psf_field import PSFField

    field = PSFField.load(args.psf_field)
    sharp = [_read_plane(p, "sharp image") for p in args.sharp] if args.sharp else None
    noise_image = _read_plane(args.noise_from, "image to estimate the noise from") if args.noise_from else None
    result = train_model(
        field, arch=args.arch, depth=args.depth, base_channels=args.channels, start_from=args.start_from,
        gates=args.gates, steps=args.steps, minutes=args.minutes,
        batch_size=args.batch_size, lr=args.lr, patch_size=args.patch, n_specimens=args.specimens, sharp_images=sharp,
        calibration_image=noise_image,
        device=args.device, seed=args.seed, quiet=args.quiet,
    )
    from ..model_files import save_model

    check_output(args.output, overwrite=args.overwrite)
    save_model(result.model, args.output, **result.metadata)
    m = result.metadata["training"]
    _say(f"wrote {args.output}: {result.model.arch}({result.model.depth}), {result.model.n_parameters():,} parameters, "
         f"started from {m['started_from']}; "
               f"{m['steps']} steps in {m['elapsed_s']:.0f} s; validation PSNR {m['input_psnr']:.2f} -> {m['val_psnr']:.2f} dB")
    return 0


# -- deblur -------------------------------------------------------------------------------------
def _check_device(args) -> None:
    from ..device import resolve_device

    if args.scheduler is None or args.scheduler in ("threads", "processes", "sync", "synchronous"):
        resolve_device(args.device)  # fail early on a device that is not here


def _file_options(args):
    from ..files.batch import FileOptions

    return FileOptions(offset=tuple(args.offset), tile_shape=None if args.tile is None else (args.tile, args.tile),
                       device=args.device, intensity_range=args.range, output_dtype=args.dtype, chunks=args.chunks,
                       scheduler=args.scheduler, overwrite=args.overwrite)


def run_deblur(args) -> int:
    from ..inference.output_dtype import output_dtype_for
    from ..model_files import load_model
    from ..files.batch import is_batch, iter_deblur_file

    output_dtype_for(args.dtype, np.float32)  # a bad --dtype fails before any work
    if is_batch(args.image):
        return _deblur_batch(args)
    image_format(args.output)
    check_output(args.output, overwrite=args.overwrite, inputs=[args.image, args.model])
    model = load_model(args.model)
    _check_device(args)
    if args.range is None and args.chunks is not None and not args.quiet and sys.stderr.isatty():
        print("measuring each plane's intensity range ...", file=sys.stderr, flush=True)
    with progress_bar("deblur", unit="tile", quiet=args.quiet) as bar:
        line = drive(iter_deblur_file(Path(args.image), Path(args.output), model, _file_options(args)),
                     lambda event: bar.update_to(event.done, event.total))
    _say(line)
    return 0


def _deblur_batch(args) -> int:
    """Deblur every image of a folder or glob into the output folder, past bad files."""
    from tqdm.auto import tqdm

    from ..model_files import load_model
    from ..files.batch import iter_deblur_files, plan_batch

    jobs, skipped = plan_batch(args.image, args.output, overwrite=args.overwrite)
    model = load_model(args.model)
    _check_device(args)
    for path in skipped:
        print(f"coordgate: note: skipped {path}: not an image file this command reads", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with progress_bar("files", unit="file", total=len(jobs), quiet=args.quiet, position=0) as files, \
            progress_bar("tiles", unit="tile", quiet=args.quiet, position=1) as tiles:

        def show(event) -> None:
            if event.kind == "tiles":
                tiles.set_description(event.source.name, refresh=False)
                tiles.update_to(event.done, event.total)
                return
            if event.kind == "failed":
                if args.debug:
                    raise event.extra["error"]
                tqdm.write(f"coordgate: error: {event.source}: {event.message}", file=sys.stderr)
            else:
                tqdm.write(event.message)
            files.update_to(event.index + 1)

        failed = drive(iter_deblur_files(jobs, model, _file_options(args)), show)
    done = len(jobs) - len(failed)
    _say(f"deblurred {done} of {len(jobs)} files into {args.output} ({time.perf_counter() - t0:.1f} s)")
    if failed:
        names = ", ".join(str(p.name) for p, _ in failed[:5]) + (" ..." if len(failed) > 5 else "")
        print(f"coordgate: error: {len(failed)} of {len(jobs)} files failed: {names}", file=sys.stderr, flush=True)
        return 1
    return 0


# -- export -------------------------------------------------------------------------------------
def _citations(entries: list[str] | None) -> list[dict] | None:
    """``TEXT=DOI_OR_URL`` options as citations, after the default ones."""
    if not entries:
        return None
    from ..export.bioimageio import DEFAULT_CITATIONS

    cite = [dict(c) for c in DEFAULT_CITATIONS]
    for entry in entries:
        text, sep, ref = entry.rpartition("=")
        if not sep or not text.strip() or not ref.strip():
            raise ValueError(f"--cite {entry!r}: expected TEXT=DOI or TEXT=URL, e.g. 'Our paper=10.1234/abcd'")
        ref = ref.strip()
        cite.append({"text": text.strip(), "url" if ref.startswith(("http://", "https://")) else "doi": ref})
    return cite


def run_export(args) -> int:
    from ..export import export_bioimageio
    from ..model_files import load_model

    _require_suffix(args.output, (".zip",), "a BioImage.IO package")
    check_output(args.output, overwrite=args.overwrite, inputs=[args.model])
    model = load_model(args.model)
    sample = _read_plane(args.sample, "sample image") if args.sample else None
    t0 = time.perf_counter()
    path = export_bioimageio(model, args.output, name=args.name, description=args.description,
                             authors=args.author, license=args.license, cite=_citations(args.cite), sample=sample,
                             overwrite=args.overwrite)
    field = "x".join(map(str, model.field_shape))
    _say(f"wrote {path}: BioImage.IO model package ({path.stat().st_size / 2**20:.1f} MB), {model.arch}({model.depth}), "
         f"input fixed at the full {field} field, pytorch_state_dict and torchscript weights "
         f"({time.perf_counter() - t0:.1f} s); check it with: bioimageio test {path}")
    return 0


# -- info ---------------------------------------------------------------------------------------
def _info_devices() -> list[str]:
    from ..device import available_devices, describe_device

    lines = ["devices:"]
    for name in available_devices():
        lines.append(f"  {name:8s} {describe_device(name)}")
    return lines


def _info_model(path: str, full: bool = False) -> list[str]:
    from ..model_files import read_model_info
    from ..models.unet import build_model

    if path.lower().endswith(".zip"):  # a BioImage.IO package exported by this package
        from ..model_files import load_model

        model = load_model(path)
        cfg, meta = model.config, model.metadata
        info = {"normalization": {"percentiles": list(model.percentiles)}}
        kind = "BioImage.IO package of the"
    else:
        info = read_model_info(path)
        cfg = info["config"]
        model = build_model(cfg)
        meta = info.get("metadata", {})
        kind = "model"
    lines = [
        f"{path}: {kind} {cfg['arch']}(depth {cfg['depth']}, {cfg['base_channels']} channels)",
        f"  parameters       {model.n_parameters():,}",
        f"  field shape      {cfg.get('field_shape')}",
        f"  receptive radius {model.receptive_radius} px, alignment {model.alignment} px",
        f"  normalisation    percentiles {info.get('normalization', {}).get('percentiles')}",
    ]
    return lines + _training_lines(meta) + _other_metadata(meta, shown=("training", "psf_field"), full=full)


def _training_lines(meta: dict) -> list[str]:
    """How a model was trained, what it reached on validation, and the calibration it was trained for."""
    lines = []
    training = meta.get("training") or {}
    if training:
        steps = training.get("steps", training.get("steps_done"))
        text = f"  trained          {steps} steps"
        if training.get("best_step") is not None:
            text += f", best at step {training['best_step']}"
        if training.get("stopped_by"):
            text += f", stopped by {training['stopped_by']}"
        if training.get("elapsed_s") is not None:
            text += f", {float(training['elapsed_s']):.0f} s"
        if training.get("device"):
            text += f" on {training['device']}"
        lines.append(text)
        if training.get("started_from"):
            lines.append(f"  started from     {training['started_from']}")
        metrics = {**training, **(training.get("metrics") or {})}
        if metrics.get("val_psnr") is not None:
            text = f"  validation PSNR  {metrics['val_psnr']:.2f} dB"
            if metrics.get("input_psnr") is not None:
                text += f" (blurred input {metrics['input_psnr']:.2f} dB: {metrics['val_psnr'] - metrics['input_psnr']:+.2f} dB)"
            if metrics.get("val_psnr_centre") is not None and metrics.get("val_psnr_edge") is not None:
                text += f"; centre {metrics['val_psnr_centre']:.2f}, edge {metrics['val_psnr_edge']:.2f} dB"
            lines.append(text)
    field = meta.get("psf_field")
    if isinstance(field, dict) and "field_shape" in field:
        method = (field.get("metadata") or {}).get("method")
        lines.append(f"  trained for      {_describe_field(field)}" + (f" ({method} model)" if method else ""))
    return lines


def _other_metadata(meta: dict, *, shown: tuple[str, ...], full: bool) -> list[str]:
    """The remaining metadata: plain values as they are; long ones summarised unless ``full``."""
    lines = []
    for key, value in meta.items():
        if key in shown:
            continue
        text = json.dumps(value)
        if not full and len(text) > 100:
            size = f"{len(value)} entries" if isinstance(value, (dict, list)) else f"{len(text)} characters"
            text = f"({size}; --full shows it)"
        lines.append(f"  {key:16s} {text}")
    return lines


def _info_field(path: str, full: bool = False) -> list[str]:
    from ..psf.calibration_report import calibration_report
    from ..psf.psf_field import PSFField

    field = PSFField.load(path)
    s = field.summary()
    lines = [f"{path}: {_describe_field(s)}"]
    if field.kind in ("beads", "pair"):
        lines += [f"  {line}" for line in calibration_report(field)]
    return lines + _other_metadata(s.get("metadata", {}), shown=_REPORTED, full=full)


#: Metadata of a calibration that its report (:func:`~napari_coordgate.psf.calibration_report.calibration_report`)
#: already shows.
_REPORTED = ("method", "method_reason", "n_used", "n_detected", "rejected", "held_out", "centroid_check",
             "aberrations", "explained_fraction")


def _info_image(path: str) -> list[str]:
    source = open_image(path)
    a = source.array
    nbytes = int(np.prod(a.shape, dtype=np.int64)) * np.dtype(a.dtype).itemsize
    lazy = f", read lazily in chunks {a.chunksize}" if source.lazy else ""
    axes = f", axes {source.axes}" if source.axes else ""
    return [f"{path}: {source.format} image {'x'.join(map(str, a.shape))} {a.dtype}{axes}, {nbytes / 2**20:.1f} MiB{lazy}"]


def run_info(args) -> int:
    lines: list[str] = []
    if args.devices or not args.paths:
        lines += _info_devices()
    for path in args.paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such file")
        low = path.lower()
        if low.endswith((".safetensors", ".zip")):
            lines += _info_model(path, args.full)
        elif low.endswith(".npz"):
            lines += _info_field(path, args.full)
        else:
            lines += _info_image(path)
    _say("\n".join(lines))
    return 0
