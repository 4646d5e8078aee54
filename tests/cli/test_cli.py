"""The ``coordgate`` command: each subcommand on tiny inputs, errors, file formats."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch

from napari_coordgate import CGUNet, deblur, load_model, save_model
from napari_coordgate.cli import main
from napari_coordgate.files.images import open_image, write_image

FIELD = (96, 80)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small random CG U-Net file and a 2-plane uint16 image that fits its field."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = CGUNet(depth=2, field_shape=FIELD, base_channels=4)
    save_model(model, root / "model.safetensors", note="test")
    rng = np.random.default_rng(0)
    image = (rng.random((2, 72, 64)) * 1000).astype(np.uint16)
    tifffile.imwrite(root / "image.ome.tif", image, ome=True, metadata={"axes": "ZYX"})
    return root, image


def run(capsys, *argv):
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("coordgate: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


# -- info ---------------------------------------------------------------------------------------
def test_info_devices_model_and_image(capsys, files):
    root, _ = files
    code, out, _ = run(capsys, "info", "--devices", root / "model.safetensors", root / "image.ome.tif")
    assert code == 0
    assert "cpu" in out and "CGUNet" in out and "parameters" in out and "2x72x64 uint16" in out and "ZYX" in out


# -- deblur -------------------------------------------------------------------------------------
def test_deblur_tiff_matches_library(capsys, files, tmp_path):
    root, image = files
    out = tmp_path / "out.ome.tif"
    code, stdout, _ = run(capsys, "deblur", root / "image.ome.tif", root / "model.safetensors", "-o", out, "--device", "cpu")
    assert code == 0 and "wrote" in stdout
    result = tifffile.imread(out)
    expected = deblur(image, load_model(root / "model.safetensors"), device="cpu")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-3)


def test_deblur_chunked_to_zarr_matches_library(capsys, files, tmp_path):
    root, image = files
    out = tmp_path / "out.zarr"
    code, _, _ = run(capsys, "deblur", root / "image.ome.tif", root / "model.safetensors", "-o", out,
                     "--chunks", "32", "--range", "0,1000", "--device", "cpu")
    assert code == 0
    result = np.asarray(open_image(out).array)
    expected = deblur(image, load_model(root / "model.safetensors"), device="cpu", intensity_range=(0, 1000))
    np.testing.assert_allclose(result, expected, atol=1e-5 * 1000)


def test_existing_output_needs_overwrite(capsys, files, tmp_path):
    root, _ = files
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "deblur", root / "image.ome.tif", root / "model.safetensors", "-o", out)
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    code, _, _ = run(capsys, "deblur", root / "image.ome.tif", root / "model.safetensors", "-o", out, "--overwrite", "-q")
    assert code == 0 and tifffile.imread(out).shape == (2, 72, 64)


@pytest.mark.parametrize("problem", ["missing image", "missing model", "wrong dims", "too big", "bad format", "not a model"])
def test_bad_input_is_one_line(capsys, files, tmp_path, problem):
    root, _ = files
    image, model = root / "image.ome.tif", root / "model.safetensors"
    out = tmp_path / "out.tif"
    words = ()
    if problem == "missing image":
        image, words = tmp_path / "nope.tif", ("nope.tif",)
    elif problem == "missing model":
        model, words = tmp_path / "nope.safetensors", ("nope.safetensors",)
    elif problem == "wrong dims":
        image, words = tmp_path / "line.npy", ("2D",)
        np.save(image, np.zeros(50, np.float32))
    elif problem == "too big":
        image, words = tmp_path / "big.tif", ("does not fit",)
        tifffile.imwrite(image, np.zeros((128, 128), np.float32))
    elif problem == "bad format":
        out, words = tmp_path / "out.png", ("unknown image format",)
    else:
        model, words = tmp_path / "fake.safetensors", ("not a napari-coordgate model",)
        model.write_bytes(b"\x00" * 64)
    code, _, err = run(capsys, "deblur", image, model, "-o", out)
    assert_one_line_error(code, err, *words)
    assert not out.exists()


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["deblur", "only-one-argument.tif"])
    assert exit_info.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, "required")


@pytest.mark.slow
def test_console_script_no_traceback_unless_debug(files, tmp_path):
    root, _ = files
    argv = [sys.executable, "-m", "napari_coordgate.cli", "deblur", str(tmp_path / "missing.tif"),
            str(root / "model.safetensors"), "-o", str(tmp_path / "o.tif")]
    quiet = subprocess.run(argv, capture_output=True, text=True)
    assert quiet.returncode == 1 and quiet.stderr.count("\n") == 1 and "Traceback" not in quiet.stderr
    loud = subprocess.run([*argv, "--debug"], capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


# -- file round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a.tif", "a.ome.tiff", "a.zarr", "a.npy"])
@pytest.mark.parametrize("lazy", [False, True])
def test_round_trip(tmp_path, name, lazy):
    da = pytest.importorskip("dask.array")
    data = np.random.default_rng(2).random((3, 40, 50)).astype(np.float32)
    source = da.from_array(data, chunks=(1, 16, 24)) if lazy else data
    write_image(tmp_path / name, source)
    back = open_image(tmp_path / name)
    np.testing.assert_array_equal(np.asarray(back.array), data)
    with pytest.raises(FileExistsError):
        write_image(tmp_path / name, data)
    write_image(tmp_path / name, data[:1], overwrite=True)
    replaced = np.asarray(open_image(tmp_path / name).array)
    np.testing.assert_array_equal(replaced.reshape(1, 40, 50), data[:1])  # OME-TIFF drops length-1 axes


def test_large_tiff_opens_lazily(tmp_path):
    data = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    tifffile.imwrite(tmp_path / "x.tif", data)
    source = open_image(tmp_path / "x.tif", lazy=True)
    assert source.lazy
    np.testing.assert_array_equal(source.array.compute(), data)


# -- calibrate, train, demo ---------------------------------------------------------------------
@pytest.fixture
def one_thread(one_torch_thread):
    """The CLI's option for one torch thread (the test's count is given back after it)."""
    return "--threads=1"


def test_calibrate_simulate_then_train_then_info(capsys, tmp_path, one_thread):
    field = tmp_path / "lens.npz"
    code, out, _ = run(capsys, "calibrate", "simulate", "-o", field, "--field", "64", "--grid", "2", "--defocus-edge", "1")
    assert code == 0 and "simulated PSF field 64x64" in out
    code, _, err = run(capsys, "calibrate", "simulate", "-o", field)
    assert_one_line_error(code, err, "already exists")
    model = tmp_path / "model.safetensors"
    code, out, _ = run(capsys, one_thread, "train", field, "-o", model, "--depth", "2", "--channels", "2", "--steps", "3",
                       "--patch", "32", "--specimens", "2", "--batch-size", "2", "--device", "cpu")
    assert code == 0 and "CGUNet(2)" in out and "3 steps" in out
    loaded = load_model(model)
    assert loaded.field_shape == (64, 64) and loaded.metadata["training"]["steps"] == 3
    assert loaded.metadata["psf_field"]["kind"] == "simulated"
    code, out, _ = run(capsys, "info", field, model)
    assert code == 0 and "simulated PSF field" in out and "CGUNet" in out
    # Readable: how it was trained and what it reached, the field it was trained for, nothing cut mid-value.
    assert "trained          3 steps" in out and "validation PSNR" in out and "blurred input" in out
    assert "trained for      simulated PSF field 64x64" in out
    assert "..." not in out


def test_train_stops_at_the_time_budget(capsys, tmp_path, one_thread):
    field = tmp_path / "lens.npz"
    assert main(["calibrate", "simulate", "-o", str(field), "--field", "64", "--grid", "2", "-q"]) == 0
    model = tmp_path / "model.safetensors"
    code, out, _ = run(capsys, one_thread, "train", field, "-o", model, "--depth", "2", "--channels", "2", "--minutes", "0.02",
                       "--patch", "32", "--specimens", "2", "--batch-size", "2", "--device", "cpu", "-q")
    assert code == 0
    assert load_model(model).metadata["training"]["stopped_by"] == "time budget"


def test_train_rejects_bad_field_file(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    code, _, err = run(capsys, "train", bad, "-o", tmp_path / "m.safetensors")
    assert_one_line_error(code, err, "PSF-field")
    code, _, err = run(capsys, "train", bad, "-o", tmp_path / "m.pt")
    assert_one_line_error(code, err, ".safetensors")


@pytest.mark.slow
def test_calibrate_from_pair_and_beads(capsys, tmp_path):
    from napari_coordgate.data import make_specimen
    from napari_coordgate.psf.optics.bead_slide import render_bead_target
    from napari_coordgate.psf.optics.simulate import simulate_lens

    lens = simulate_lens((128, 128), grid=(2, 2), defocus_edge=1.0)
    sharp = make_specimen((128, 128), np.random.default_rng(0))
    tifffile.imwrite(tmp_path / "sharp.tif", sharp)
    tifffile.imwrite(tmp_path / "blurred.tif", lens.blur(sharp).astype(np.float32))
    code, out, _ = run(capsys, "calibrate", "pair", tmp_path / "sharp.tif", tmp_path / "blurred.tif",
                       "-o", tmp_path / "pair.npz", "--grid", "2", "-q")
    assert code == 0 and "pair PSF field 128x128" in out
    assert "The PSF field explains " in out and "FWHM: " in out
    beads, _ = render_bead_target(lens, n_beads=40, seed=0)
    tifffile.imwrite(tmp_path / "beads.tif", beads)
    code, out, _ = run(capsys, "calibrate", "beads", tmp_path / "beads.tif", "-o", tmp_path / "beads.npz", "--grid", "2", "-q")
    assert code == 0 and "beads PSF field 128x128" in out
    code, _, err = run(capsys, "calibrate", "beads", tmp_path / "sharp.tif", "-o", tmp_path / "x.npz", "--psf-size", "4")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def bead_slide(tmp_path_factory):
    """A 128 x 128 bead slide (TIFF) through a simulated NA 0.8, 520 nm, 130 nm/pixel lens, and pure noise."""
    from napari_coordgate.psf.optics.bead_slide import render_bead_target
    from napari_coordgate.psf.optics.simulate import simulate_lens

    root = tmp_path_factory.mktemp("beads")
    lens = simulate_lens((128, 128), grid=(2, 2), defocus_edge=0.8, seed=1)
    beads, _ = render_bead_target(lens, n_beads=50, seed=2)
    tifffile.imwrite(root / "beads.tif", beads.astype(np.float32))
    tifffile.imwrite(root / "noise.tif", np.random.default_rng(0).normal(100, 1, (64, 64)).astype(np.float32))
    return root


@pytest.mark.slow
def test_calibrate_beads_model_and_optics(capsys, tmp_path, bead_slide):
    out_file = tmp_path / "pupil.npz"
    code, out, _ = run(capsys, "calibrate", "beads", bead_slide / "beads.tif", "-o", out_file, "-q", "--model", "pupil",
                       "--na", "0.8", "--wavelength", "520", "--pixel-size", "130", "--immersion-index", "1.0")
    assert code == 0 and "beads PSF field 128x128" in out, out
    for words in ("Model: pupil", " beads used of ", "Held-out beads (", " unexplained", "FWHM: ",
                  "at the centre; corners top left "):
        assert words in out, (words, out)
    from napari_coordgate.psf.psf_field import PSFField

    meta = PSFField.load(out_file).metadata
    assert meta["method"].startswith("pupil")
    assert meta["optics"]["na"] == pytest.approx(0.8) and meta["optics"]["pixel_size_nm"] == pytest.approx(130)
    assert meta["optics"]["wavelength_nm"] == pytest.approx(520)
    code, out, _ = run(capsys, "calibrate", "beads", bead_slide / "beads.tif", "-o", tmp_path / "e.npz", "-q",
                       "--model", "empirical")
    assert code == 0 and "Model: empirical" in out
    assert PSFField.load(tmp_path / "e.npz").metadata["method"].startswith("empirical")


@pytest.mark.slow
def test_the_cli_and_the_api_give_the_same_calibration_by_default(capsys, tmp_path, bead_slide, one_thread):
    """The CLI runs torch with half the cores, a script with whatever it set: a calibration fits with the same
    threads anyway (unless --threads is given)."""
    from napari_coordgate.psf import calibrate_from_beads
    from napari_coordgate.psf.fit_threads import CALIBRATION_THREADS, calibration_threads, with_calibration_threads
    from napari_coordgate.psf.psf_field import PSFField

    torch.set_num_threads(1)
    api = calibrate_from_beads(tifffile.imread(bead_slide / "beads.tif"))
    assert torch.get_num_threads() == 1  # the caller's count is given back
    code, out, _ = run(capsys, "calibrate", "beads", bead_slide / "beads.tif", "-o", tmp_path / "cli.npz", "-q")
    assert code == 0, out
    np.testing.assert_array_equal(PSFField.load(tmp_path / "cli.npz").psfs, api.psfs)
    # an explicit count is the user's: a calibration runs with it
    seen = []
    count_threads = with_calibration_threads(lambda: seen.append(torch.get_num_threads()))
    with calibration_threads(1):
        count_threads()
    count_threads()
    assert seen == [1, CALIBRATION_THREADS]


def test_calibrate_beads_refusal_and_bad_model(capsys, tmp_path, bead_slide):
    code, _, err = run(capsys, "calibrate", "beads", bead_slide / "noise.tif", "-o", tmp_path / "x.npz", "-q")
    assert_one_line_error(code, err)
    assert code == 1 and not (tmp_path / "x.npz").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "beads", str(bead_slide / "beads.tif"), "-o", str(tmp_path / "x.npz"), "--model", "zernike"])
    assert exit_info.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, "--model")


def test_calibrate_beads_report_lines(capsys, tmp_path, monkeypatch, bead_slide):
    """The printed report of a bead calibration, from a hand-made result."""
    from napari_coordgate.psf.beads import calibrate as beads_module
    from napari_coordgate.psf.optics.simulate import simulate_lens

    lens = simulate_lens((128, 128), grid=(2, 2), defocus_edge=0.5)
    metadata = {
        "method": "pupil", "method_reason": "NA, wavelength and pixel size were given.",
        "n_detected": 12, "n_used": 9, "rejected": {"saturated": 2, "hot pixel": 1, "faint": 0},
        "beads": [[10, 10]] * 9, "rejected_beads": [[5, 5, "saturated"]] * 2 + [[7, 7, "hot pixel"]],
        "held_out": {"n_beads": 4, "unexplained_fraction": 0.08,
                     "by_region": {"centre": 0.02, "middle": None, "edge": 0.2}},
        "warnings": ["beads cover only 45% of the field;\n the PSF elsewhere is extrapolated by the pupil model"],
        "optics": {"na": 0.8, "wavelength_nm": 520, "pixel_size_nm": 130, "immersion_index": 1.0},
    }
    calls = []

    def fake(image, **kwargs):
        calls.append(kwargs)
        return type(lens)(lens.psfs, lens.field_shape, kind="beads", metadata=metadata)

    monkeypatch.setattr(beads_module, "calibrate_from_beads", fake)
    code, out, err = run(capsys, "calibrate", "beads", bead_slide / "beads.tif", "-o", tmp_path / "b.npz", "-q",
                         "--na", "0.8", "--wavelength", "520", "--pixel-size", "130", "--grid", "3,2")
    assert code == 0
    assert calls[0]["method"] == "auto" and calls[0]["na"] == 0.8 and calls[0]["wavelength_nm"] == 520
    assert calls[0]["pixel_size_nm"] == 130 and calls[0]["immersion_index"] is None and calls[0]["grid"] == (3, 2)
    lines = out.splitlines()
    # The same sentences as the Calibration dock's report (one formatter, psf.calibration_report).
    assert "  Model: pupil; NA, wavelength and pixel size were given." in lines
    assert "  9 beads used of 12 detected; rejected: 2 saturated, 1 hot pixel." in lines
    assert "  Held-out beads (4): 8% of their light unexplained (centre 2%, edge 20%)." in lines
    assert any(line.startswith("  FWHM: ") and "bottom right" in line for line in lines)
    assert err.strip() == ("coordgate: warning: beads cover only 45% of the field; the PSF elsewhere is extrapolated "
                           "by the pupil model")


#: A bead slide's OME-XML: an NA 0.9 air objective, 520 nm emission, 115 nm pixels.
BEAD_OME_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
    '<Instrument ID="Instrument:0"><Objective ID="Objective:0" LensNA="0.9" Immersion="Air"/></Instrument>'
    '<Image ID="Image:0"><ObjectiveSettings ID="Objective:0"/><Pixels ID="Pixels:0" DimensionOrder="XYCZT" '
    'Type="float" SizeX="64" SizeY="64" SizeC="1" SizeZ="1" SizeT="1" PhysicalSizeX="0.115" PhysicalSizeY="0.115">'
    '<Channel ID="Channel:0:0" EmissionWavelength="520"/><TiffData/></Pixels></Image></OME>'
)


@pytest.fixture
def fake_bead_calibration(monkeypatch):
    """calibrate_from_beads replaced by a stand-in that records its keywords (no fit: fast)."""
    from napari_coordgate.psf.beads import calibrate as beads_module
    from napari_coordgate.psf.optics.simulate import simulate_lens

    lens = simulate_lens((64, 64), grid=(2, 2), defocus_edge=0.5)
    calls = []

    def fake(image, **kwargs):
        calls.append(kwargs)
        return type(lens)(lens.psfs, lens.field_shape, kind="beads", metadata={"method": "pupil"})

    monkeypatch.setattr(beads_module, "calibrate_from_beads", fake)
    return calls


def test_calibrate_beads_takes_the_files_optics(capsys, tmp_path, fake_bead_calibration):
    calls = fake_bead_calibration
    slide = tmp_path / "slide.ome.tif"
    tifffile.imwrite(slide, np.zeros((64, 64), np.float32), description=BEAD_OME_XML, metadata=None)
    code, out, err = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "a.npz", "-q")
    assert code == 0 and err == "", err
    assert calls[-1]["na"] == 0.9 and calls[-1]["wavelength_nm"] == 520 and calls[-1]["pixel_size_nm"] == 115
    assert calls[-1]["immersion_index"] == 1.0
    lines = out.splitlines()
    for line in ("optics from the file: NA 0.9 (OME-XML Objective LensNA)",
                 "optics from the file: emission wavelength 520 nm (OME-XML Channel EmissionWavelength (nm))",
                 "optics from the file: pixel size 115 nm (OME-XML Pixels PhysicalSizeX (µm -> nm))",
                 "optics from the file: immersion index 1.0 (OME-XML Objective Immersion Air -> 1.0)"):
        assert line in lines, (line, out)
    from napari_coordgate.psf.psf_field import PSFField

    sources = PSFField.load(tmp_path / "a.npz").metadata["optics_sources"]
    assert sources["na"] == "OME-XML Objective LensNA (slide.ome.tif)"

    # a value given wins (and the difference is said); the rest still comes from the file
    code, out, _ = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "b.npz", "-q", "--na", "0.8")
    assert code == 0 and calls[-1]["na"] == 0.8 and calls[-1]["pixel_size_nm"] == 115
    assert "optics: --na 0.8 given; the file records 0.9 (OME-XML Objective LensNA)" in out.splitlines()
    assert "optics from the file: NA" not in out
    assert PSFField.load(tmp_path / "b.npz").metadata["optics_sources"]["na"] == "--na"

    # --ignore-file-optics: none of them
    code, out, _ = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "c.npz", "-q", "--ignore-file-optics")
    assert code == 0 and "optics from the file" not in out
    assert all(calls[-1][k] is None for k in ("na", "wavelength_nm", "pixel_size_nm", "immersion_index"))


def test_calibrate_beads_with_only_some_optics_in_the_file(capsys, tmp_path, fake_bead_calibration):
    calls = fake_bead_calibration
    slide = tmp_path / "imagej.tif"  # ImageJ records the pixel size only
    tifffile.imwrite(slide, np.zeros((64, 64), np.float32), imagej=True, resolution=(1 / 0.13, 1 / 0.13),
                     metadata={"unit": "micron"})
    code, out, err = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "a.npz", "-q")
    assert code == 0 and calls[-1]["pixel_size_nm"] is None and "optics from the file" not in out
    assert err.strip() == ("coordgate: note: imagej.tif records pixel size 130 nm but not the NA or emission "
                           "wavelength; the calibration needs NA, wavelength and pixel size together (or none), so the "
                           "file's optics are not used (give --na and --wavelength to use them)")
    code, out, err = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "b.npz", "-q", "--na", "0.8",
                         "--wavelength", "520")
    assert code == 0 and err == "" and calls[-1]["pixel_size_nm"] == 130 and calls[-1]["na"] == 0.8
    assert "optics from the file: pixel size 130 nm (ImageJ calibration XResolution (micron -> nm))" in out
    # optics from the file that cannot be right fail with a message that says where they came from
    code, _, err = run(capsys, "calibrate", "beads", slide, "-o", tmp_path / "c.npz", "-q", "--na", "1.4",
                       "--wavelength", "300")
    assert_one_line_error(code, err, "undersampled", "taken from imagej.tif: pixel size 130 nm", "--ignore-file-optics")


@pytest.mark.slow
def test_demo_quick(capsys, tmp_path, one_thread):
    out = tmp_path / "demo"
    code, stdout, _ = run(capsys, one_thread, "demo", "--quick", "--out", out, "--device", "cpu", "-q")
    assert code == 0
    for name in ("figure.png", "blurred.tif", "deblurred.tif", "truth.tif", "model.safetensors", "psf_field.npz"):
        assert (out / name).is_file()
    assert tifffile.imread(out / "deblurred.tif").shape == (128, 128)
    code, _, err = run(capsys, "demo", "--quick", "--out", out)
    assert_one_line_error(code, err, "--overwrite")


@pytest.mark.parametrize("shape, chunks", [((70, 45), (32, 20)), ((2, 2, 33, 40), (1, 1, 16, 16))])
def test_lazy_write_any_dimensionality(tmp_path, shape, chunks):
    da = pytest.importorskip("dask.array")
    data = np.random.default_rng(3).random(shape).astype(np.float32)
    for name in ("b.tif", "b.zarr"):
        write_image(tmp_path / name, da.from_array(data, chunks=chunks))
        np.testing.assert_array_equal(np.asarray(open_image(tmp_path / name).array).reshape(shape), data)


def test_train_noise_from_an_image(capsys, tmp_path, one_thread):
    """--noise-from trains for the noise of the given image: ten times the photons, about ten times the estimate."""
    from napari_coordgate.data import add_poisson_gaussian, make_specimen
    from napari_coordgate.psf.optics.simulate import simulate_lens

    lens = simulate_lens((64, 64), grid=(2, 2), defocus_edge=1.0)
    lens.save(tmp_path / "lens.npz")
    blurred = lens.blur(make_specimen((64, 64), np.random.default_rng(0)))
    estimates = []
    for photons in (100.0, 1000.0):
        raw = add_poisson_gaussian(blurred, photons, 2.0, np.random.default_rng(1)) * photons + 100.0
        tifffile.imwrite(tmp_path / "raw.tif", raw.astype(np.float32))
        model = tmp_path / f"model{photons:g}.safetensors"
        code, _, err = run(capsys, one_thread, "train", tmp_path / "lens.npz", "-o", model, "--depth", "2",
                           "--channels", "2", "--steps", "2", "--patch", "32", "--specimens", "2", "--batch-size", "2",
                           "--device", "cpu", "-q", "--noise-from", tmp_path / "raw.tif")
        assert code == 0, err
        estimates.append(load_model(model).metadata["training"]["noise"]["photons"])
    assert 5 < estimates[1] / estimates[0] < 20, estimates
