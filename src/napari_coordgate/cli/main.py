"""The ``coordgate`` command: argument parsing and error reporting.

Each subcommand lives in its own function in :mod:`.commands` (or
:mod:`.demo`), imported only when it runs, so ``coordgate --help`` is fast.
Errors the user can fix (a missing file, a wrong shape, an existing output)
are printed as one line, ``coordgate: error: ...``, with a non-zero exit
status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__

__all__ = ["main", "build_parser"]

#: Exit statuses: 1 for errors while running, 2 for bad command lines (as argparse), 130 on Ctrl-C.
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line long."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"coordgate: error: {message} (see '{self.prog} --help')\n")


def _pair(kind=int):
    def parse(text: str):
        parts = text.replace("x", ",").replace(" ", ",").split(",")
        parts = [p for p in parts if p]
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected N or N,M, got {text!r}")
        try:
            return tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None

    parse.__name__ = "pair"
    return parse


def _common(debug_default) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=debug_default, help="show tracebacks on errors")
    common.add_argument("--quiet", "-q", action="store_true", default=debug_default, help="no progress bars")
    common.add_argument("--threads", type=int, default=None if debug_default is False else debug_default, metavar="N",
                        help="CPU threads for torch (default: half the CPU cores, at least 1)")
    return common


def _add_output(p, help_text):
    p.add_argument("-o", "--output", required=True, help=help_text)
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")


def _add_calibrate(sub, common):
    cal = sub.add_parser("calibrate", parents=[common], help="measure or simulate a PSF field (.npz)")
    how = cal.add_subparsers(dest="method", metavar="{beads,pair,simulate}", parser_class=_Parser, required=True)
    beads = how.add_parser("beads", parents=[common], help="from an image of sub-resolution beads")
    beads.add_argument("image", help="bead image (TIFF, Zarr, .npy), one 2D plane")
    beads.add_argument("--bead-size", type=float, default=1.0, help="bead diameter in pixels (default 1)")
    beads.add_argument("--min-snr", type=float, default=10.0, help="ignore beads below this SNR (default 10)")
    beads.add_argument("--grid", type=_pair(), default=None,
                       help="grid the fitted PSF field is sampled on, e.g. 8 or 8,6 (default: cells of about 32 px, 4 to 16 per side)")
    beads.add_argument("--model", choices=("auto", "pupil", "empirical", "nodes"), default="auto",
                       help="PSF model: pupil (known optics), empirical (unknown optics), nodes (per-node average) "
                            "or auto (pupil when NA, wavelength and pixel size are given or recorded in the image "
                            "file; default)")
    beads.add_argument("--na", type=float, default=None,
                       help="numerical aperture of the objective (default: as the image file records it, if it does)")
    beads.add_argument("--wavelength", type=float, default=None,
                       help="emission wavelength in nm (default: from the file)")
    beads.add_argument("--pixel-size", type=float, default=None,
                       help="pixel size in the sample plane, in nm (default: from the file)")
    beads.add_argument("--immersion-index", type=float, default=None,
                       help="refractive index of the immersion medium (1.0 air, 1.33 water, 1.515 oil): makes the pupil "
                       "model vectorial; without it the pupil is scalar, with low-NA defocus (default: from the file)")
    beads.add_argument("--ignore-file-optics", action="store_true",
                       help="do not take the optics the image file records (OME-XML objective NA, channel emission "
                            "wavelength, pixel size, immersion; ImageJ or TIFF resolution)")
    pair = how.add_parser("pair", parents=[common], help="from a sharp / blurred image pair")
    pair.add_argument("sharp", help="sharp reference image")
    pair.add_argument("blurred", help="the same scene through the instrument")
    pair.add_argument("--grid", type=_pair(), default=(4, 4), help="PSF grid (default 4)")
    sim = how.add_parser("simulate", parents=[common], help="a simulated lens (defocus growing to the edge)")
    sim.add_argument("--field", type=_pair(), default=(256, 256), help="field shape H,W (default 256)")
    sim.add_argument("--grid", type=_pair(), default=(8, 8), help="PSF grid (default 8)")
    sim.add_argument("--na", type=float, default=0.8, help="numerical aperture (default 0.8)")
    sim.add_argument("--wavelength", type=float, default=520.0, help="wavelength in nm (default 520)")
    sim.add_argument("--pixel-size", type=float, default=130.0, help="pixel size in nm (default 130)")
    sim.add_argument("--defocus-edge", type=float, default=2.0, help="defocus at the corners, in waves (default 2)")
    sim.add_argument("--astigmatism-edge", type=float, default=0.0, help="astigmatism at the corners (default 0)")
    sim.add_argument("--coma-edge", type=float, default=0.0, help="coma at the corners (default 0)")
    sim.add_argument("--seed", type=int, default=None)
    for p in (beads, pair, sim):
        p.add_argument("--psf-size", type=int, default=None, help="PSF side in pixels (odd; default automatic)")
        _add_output(p, "PSF field file to write (.npz)")
        p.set_defaults(func="calibrate")


def _add_train(sub, common):
    p = sub.add_parser("train", parents=[common], help="fine-tune a model for a PSF field (.safetensors)")
    p.add_argument("psf_field", help="PSF field file (.npz) from 'coordgate calibrate'")
    _add_output(p, "model file to write (.safetensors)")
    p.add_argument("--arch", choices=("cgunet", "unet", "coordconv"), default="cgunet", help="architecture (default cgunet)")
    p.add_argument("--depth", type=int, default=3, help="U-Net depth (default 3)")
    p.add_argument("--channels", type=int, default=16, help="channels at full resolution (default 16)")
    p.add_argument("--start-from", default="auto", metavar="FROM",
                   help="auto (default: the shipped base model when it has this architecture, CGUNet(3) with 16 "
                        "channels; else a new model), base, scratch, or a model file (.safetensors) to fine-tune further")
    p.add_argument("--gates", choices=("base", "identity", "reinit"), default="base",
                   help="how a base model's gates start: as learned over many lenses (default), 1 everywhere, or new")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 2000, or as many as --minutes allows)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much wall-clock time")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 3e-3 when fine-tuning the shipped base model, else 1e-3)")
    p.add_argument("--patch", type=int, default=64, help="training patch side (default 64)")
    p.add_argument("--specimens", type=int, default=16, help="number of synthetic specimens (default 16)")
    p.add_argument("--sharp", nargs="+", default=None, metavar="IMAGE", help="your own sharp images to train on")
    p.add_argument("--noise-from", default=None, metavar="IMAGE",
                   help="estimate the camera noise to train for from this raw image, best one like those you will "
                        "deblur (default: a typical camera, 200 photons at the bright level)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func="train")


def _add_deblur(sub, common):
    p = sub.add_parser("deblur", parents=[common], help="remove the blur from images (TIFF, OME-TIFF, Zarr, .npy)")
    p.add_argument("image", help="input image (..., Y, X); or a folder, or a quoted glob such as 'run1/*.tif', "
                                 "to deblur every image in it")
    p.add_argument("model", help="model file (.safetensors) from 'coordgate train'")
    _add_output(p, "output image (.tif, .ome.tif, .zarr or .npy); for a folder or glob of inputs, the output folder "
                   "(one file per input, same names)")
    p.add_argument("--dtype", default=None, metavar="DTYPE",
                   help="output dtype: float32 (default), input (the input's dtype; integers rounded and saturated, "
                        "never wrapped, and the clipped pixels counted), or e.g. uint16, uint8, float64")
    p.add_argument("--offset", type=_pair(), default=(0, 0), help="field position Y,X of the image's top-left pixel")
    p.add_argument("--tile", type=int, default=None, help="tile side in pixels (default 1024)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--range", type=_pair(float), default=None, metavar="LOW,HIGH",
                   help="raw intensities mapped to 0 and 1 (default: each plane's model percentiles)")
    p.add_argument("--chunks", type=int, default=None, metavar="N",
                   help="work chunk by chunk with dask, chunks of N px (default for Zarr and large TIFF: 1024)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask scheduler: a dask.distributed address (tcp://...), or threads / processes / sync")
    p.set_defaults(func="deblur")


def build_parser() -> argparse.ArgumentParser:
    """The ``coordgate`` argument parser."""
    parser = _Parser(prog="coordgate", description="Remove your microscope's static, spatially varying blur with CoordGate U-Nets.",
                     parents=[_common(False)])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = _common(argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)
    _add_calibrate(sub, common)
    _add_train(sub, common)
    _add_deblur(sub, common)
    demo = sub.add_parser("demo", parents=[common], help="calibrate, train and deblur on a simulated lens, with a figure")
    demo.add_argument("--out", default="coordgate-demo", help="output folder (default ./coordgate-demo)")
    demo.add_argument("--minutes", type=float, default=2.0, help="training budget in minutes (default 2)")
    demo.add_argument("--quick", action="store_true", help="a tiny run of a few seconds (for tests)")
    demo.add_argument("--start-from", choices=("auto", "scratch"), default="auto",
                      help="auto (default): fine-tune the shipped base model; scratch: train a new model")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="replace files in an existing output folder")
    demo.set_defaults(func="demo")
    export = sub.add_parser("export", parents=[common], help="export a model as a BioImage.IO package (.zip)")
    export.add_argument("model", help="model file (.safetensors)")
    _add_output(export, "package to write (.zip)")
    export.add_argument("--name", default=None, help="model name in the package (default: from the file name)")
    export.add_argument("--description", default=None, help="one-sentence description")
    export.add_argument("--author", action="append", default=None, metavar="NAME",
                        help="an author (repeat for several; default: the user name)")
    export.add_argument("--license", default="BSD-3-Clause", help="SPDX licence identifier (default BSD-3-Clause)")
    export.add_argument("--cite", action="append", default=None, metavar="TEXT=DOI_OR_URL",
                        help="an extra citation, e.g. 'Our paper=10.1234/abcd' (the CoordGate paper and this "
                             "project are always cited)")
    export.add_argument("--sample", default=None, metavar="IMAGE",
                        help="a blurred image of the full field for the test tensors and cover (default: a simulated one)")
    export.set_defaults(func="export")
    info = sub.add_parser("info", parents=[common], help="describe model, PSF field or image files, or the devices")
    info.add_argument("paths", nargs="*", metavar="PATH", help=".safetensors, .npz or image files (none: devices)")
    info.add_argument("--devices", action="store_true", help="list the compute devices found")
    info.add_argument("--full", action="store_true", help="print long metadata (a calibration's bead list...) in full")
    info.set_defaults(func="info")
    return parser


_USER_ERRORS = (ValueError, TypeError, OSError, MemoryError, LookupError, ImportError, RuntimeError)


#: The extra that installs an optional module.
_EXTRAS = {"dask": "scale", "distributed": "scale", "zarr": "scale", "matplotlib": "napari", "bioimageio": "bioimageio"}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    module = (getattr(err, "name", None) or "").split(".")[0]
    if isinstance(err, ImportError) and module in _EXTRAS and f"[{_EXTRAS[module]}]" not in text:
        text += f" (install it: pip install 'napari-coordgate[{_EXTRAS[module]}]')"
    return text


def _default_threads() -> int:
    import os

    return max(1, (os.cpu_count() or 2) // 2)


def main(argv: list[str] | None = None) -> int:
    """Run ``coordgate`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.threads is not None and args.threads < 1:
            raise ValueError("--threads must be at least 1")
        import torch

        # torch's default (every core) slows CPU training 10-20x as soon as anything
        # else runs beside it (measured on 2 cores, docs/benchmarks.md); half the cores
        # loses little on an idle machine.
        torch.set_num_threads(args.threads or _default_threads())
        if args.func == "demo":
            from .demo import run_demo as run
        else:
            from . import commands

            run = getattr(commands, f"run_{args.func}")
        from ..psf.fit_threads import calibration_threads

        # A calibration fits with the same threads as in the dock and the API unless --threads was given.
        with calibration_threads(args.threads):
            status = run(args)
    except KeyboardInterrupt:
        print("coordgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            raise
        message = _one_line(err)
        if not isinstance(err, _USER_ERRORS):
            message = f"{message} (internal error {type(err).__name__}; rerun with --debug for the traceback)"
        print(f"coordgate: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return int(status or 0)
