"""BioImage.IO export (napari_coordgate.export) and loading the package back."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from napari_coordgate import CGUNet, UNet, deblur, load_model
from napari_coordgate.export import PackageExistsError, export_bioimageio, is_bioimageio_package
from napari_coordgate.export.bioimageio_wrapper import CoordGateBioImageIO

import bioimageio.core as core  # the test set-up installs the [bioimageio] extra: its absence is a failure
import bioimageio.spec as spec

FIELD = (64, 64)


def _tiny_cgunet() -> CGUNet:
    torch.manual_seed(0)
    model = CGUNet(depth=2, base_channels=4, field_shape=FIELD)
    with torch.no_grad():  # make the gates vary visibly over the field
        for _, _, block in model.gated_blocks():
            block.gate.out.weight.mul_(10)
    model.metadata = {
        "training": {"steps_done": 12, "batch_size": 4, "lr_initial": 1e-3, "schedule": "cosine",
                     "best_val_loss": 0.0125, "metrics": {"psnr": 31.5}},
        "psf_field": {"kind": "beads", "field_shape": list(FIELD), "fwhm_centre_px": 2.2,
                      "metadata": {"fwhm_map_px": [[2.0, 2.5], [2.4, 3.1]]}},
    }
    return model


@pytest.fixture(scope="module")
def cg_package(tmp_path_factory):
    model = _tiny_cgunet()
    path = export_bioimageio(model, tmp_path_factory.mktemp("bioimageio") / "cg.zip",
                             authors=[{"name": "Test Author", "affiliation": "Lab"}])
    return model, path


def _summary_ok(summary) -> None:
    if summary.status != "passed":
        print(summary.format())
    assert summary.status == "passed", [d for d in summary.details if d.status != "passed"]


def test_package_validates_with_fixed_full_field_input(cg_package):
    _, path = cg_package
    descr = spec.load_description(path)
    assert descr.__class__.__name__ == "ModelDescr", descr.validation_summary.format()
    assert descr.format_version.startswith("0.5.")
    assert descr.validation_summary.status in ("valid-format", "passed")
    (inp,), (out,) = descr.inputs, descr.outputs
    assert [a.type for a in inp.axes] == ["batch", "channel", "space", "space"]
    assert inp.axes[0].size == 1
    assert [a.size for a in inp.axes[2:]] == list(FIELD)  # fixed ints: no ParameterizedSize, no halo
    assert all(not hasattr(a, "halo") for a in out.axes)
    assert descr.weights.pytorch_state_dict is not None and descr.weights.torchscript is not None
    arch = descr.weights.pytorch_state_dict.architecture
    assert (arch.import_from, str(arch.callable)) == ("napari_coordgate.export.bioimageio_wrapper", "CoordGateBioImageIO")
    assert str(descr.license) == "BSD-3-Clause"
    assert descr.authors[0].name == "Test Author"
    assert any("2401.04680" in str(c.doi) for c in descr.cite)
    assert "tile" in descr.description


@pytest.mark.slow
def test_bioimageio_core_test_model_passes(cg_package):
    _, path = cg_package
    _summary_ok(core.test_model(path, devices=["cpu"]))


def test_round_trip_through_load_model(cg_package):
    model, path = cg_package
    loaded = load_model(path)
    assert isinstance(loaded, CGUNet) and loaded.config == model.config
    assert loaded.metadata == model.metadata
    assert loaded.percentiles == tuple(model.percentiles)
    image = np.random.default_rng(3).gamma(2.0, 100.0, FIELD).astype(np.float32)
    expected = deblur(image, model, precision="fp32", device="cpu")
    got = deblur(image, loaded, precision="fp32", device="cpu")
    assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_package_contents(cg_package, tmp_path):
    model, path = cg_package
    assert is_bioimageio_package(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"rdf.yaml", "weights.pt", "weights_torchscript.pt", "test_input.npy", "test_output.npy",
                "cover.png", "README.md", "model.safetensors", "environment.yaml"} <= names
        readme = zf.read("README.md").decode()
        zf.extract("model.safetensors", tmp_path)
        zf.extract("cover.png", tmp_path)
        x = np.load(zf.open("test_input.npy"))
        y = np.load(zf.open("test_output.npy"))
    assert "## Validation" in readme and "steps_done" in readme and "fwhm_centre_px" in readme
    assert "Do not tile" in readme
    assert x.shape == y.shape == (1, 1, *FIELD) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 0], deblur(x[0, 0], model, precision="fp32", device="cpu"))
    original = load_model(tmp_path / "model.safetensors")  # the attached original model file
    assert original.metadata == model.metadata
    import imageio.v3 as iio

    cover = iio.imread(tmp_path / "cover.png")
    assert cover.ndim == 3 and cover.shape[1] == 2 * cover.shape[0] and cover.shape[2] == 3
    descr = spec.load_description(path)
    ours = descr.config.napari_coordgate
    assert ours["metadata"] == model.metadata and ours["config"] == model.config


@pytest.mark.slow
def test_plain_unet_with_sample(tmp_path):
    torch.manual_seed(1)
    model = UNet(depth=2, base_channels=4, field_shape=(48, 40))
    sample = np.random.default_rng(0).integers(0, 4000, (48, 40)).astype(np.uint16)
    path = export_bioimageio(model, tmp_path / "plain.zip", name="plain UNet test", license="MIT")
    _summary_ok(core.test_model(path, devices=["cpu"], weight_format="torchscript"))
    path = export_bioimageio(model, path, sample=sample, overwrite=True)
    with zipfile.ZipFile(path) as zf:
        np.testing.assert_array_equal(np.load(zf.open("test_input.npy"))[0, 0], sample.astype(np.float32))
    loaded = load_model(path)
    expected = deblur(sample, model, precision="fp32", device="cpu")
    assert np.abs(deblur(sample, loaded, precision="fp32", device="cpu") - expected).max() <= 1e-5 * expected.max()


def test_wrapper_matches_deblur_on_flat_and_scaled_images():
    model = _tiny_cgunet()
    wrapper = CoordGateBioImageIO(model.config, model.percentiles)
    wrapper.net.load_state_dict(model.state_dict())
    rng = np.random.default_rng(5)
    for image in (np.full(FIELD, 7.5, np.float32), (rng.random(FIELD) * 3e4 + 100).astype(np.float32)):
        with torch.no_grad():
            got = wrapper(torch.from_numpy(image)[None, None])[0, 0].numpy()
        expected = deblur(image, model, precision="fp32", device="cpu")
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    with pytest.raises(ValueError, match="full"):
        wrapper(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m, d: export_bioimageio(torch.nn.Conv2d(1, 1, 3), d / "a.zip"), TypeError, "napari_coordgate model"),
        (lambda m, d: export_bioimageio(UNet(depth=2, base_channels=4), d / "a.zip"), ValueError, "field_shape"),
        (lambda m, d: export_bioimageio(m, d / "a.safetensors"), ValueError, r"\.zip"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", sample=np.zeros((32, 64))), ValueError, r"\(64, 64\)"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", sample=np.full(FIELD, np.nan)), ValueError, "NaN"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", name="bad/name!"), ValueError, "name"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", authors=[3]), TypeError, "authors"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", cite=[{"text": "x"}]), ValueError, "doi"),
        (lambda m, d: export_bioimageio(m, d / "a.zip", cite="paper"), TypeError, "cite"),
        (lambda m, d: export_bioimageio(m, d, overwrite=True), ValueError, r"\.zip|folder"),
    ],
)
def test_bad_inputs_give_clear_errors(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(_tiny_cgunet(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_needs_overwrite(tmp_path):
    target = tmp_path / "m.zip"
    target.write_bytes(b"keep me")
    with pytest.raises(PackageExistsError, match="overwrite=True") as info:
        export_bioimageio(_tiny_cgunet(), target)
    assert isinstance(info.value, ValueError)
    assert target.read_bytes() == b"keep me"


def test_invalid_licence_fails_without_leaving_a_file(tmp_path):
    with pytest.raises(ValueError, match="invalid"):
        export_bioimageio(_tiny_cgunet(), tmp_path / "m.zip", license="not a licence")
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import bioimageio.spec

    def broken(descr, *, output_path, **_):
        output_path.write_bytes(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(bioimageio.spec, "save_bioimageio_package", broken)
    with pytest.raises(OSError, match="disk full"):
        export_bioimageio(_tiny_cgunet(), tmp_path / "new.zip")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.zip"
    old.write_bytes(b"previous package")
    with pytest.raises(OSError, match="disk full"):
        export_bioimageio(_tiny_cgunet(), old, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zip"] and old.read_bytes() == b"previous package"


def test_foreign_zips_are_refused(tmp_path, cg_package):
    _, path = cg_package
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ValueError, match="no rdf.yaml"):
        load_model(plain)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="zip"):
        load_model(not_zip)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.zip")
    other = tmp_path / "other.zip"  # our package with a foreign architecture
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(other, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "rdf.yaml":
                data = data.replace(b"napari_coordgate.export.bioimageio_wrapper", b"somebody.else")
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="not one exported by napari-coordgate"):
        load_model(other)


def test_import_does_not_load_bioimageio():
    code = ("import sys, napari_coordgate, napari_coordgate.export; "
            "assert not [m for m in sys.modules if m.startswith('bioimageio')], 'bioimageio imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export(tmp_path, capsys):
    from napari_coordgate import save_model
    from napari_coordgate.cli import main

    model = _tiny_cgunet()
    save_model(model, tmp_path / "m.safetensors", **model.metadata)
    code = main(["export", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.zip"), "--author", "Ada Lovelace",
                 "--cite", "Our paper=10.1234/abcd"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "BioImage.IO model package" in out and "bioimageio test" in out
    descr = spec.load_description(tmp_path / "m.zip")
    assert [a.name for a in descr.authors] == ["Ada Lovelace"]
    assert any(c.text == "Our paper" for c in descr.cite) and any("CoordGate" in c.text for c in descr.cite)
    image = np.random.default_rng(0).random(FIELD).astype(np.float32)
    np.testing.assert_allclose(deblur(image, load_model(tmp_path / "m.zip"), device="cpu", precision="fp32"),
                               deblur(image, model, device="cpu", precision="fp32"), atol=1e-5)
    code = main(["export", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.tar")])
    _, err = capsys.readouterr()
    assert code != 0 and "must end in .zip" in err and len(err.strip().splitlines()) == 1
    code = main(["export", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m2.zip"), "--cite", "no-ref"])
    _, err = capsys.readouterr()
    assert code != 0 and "TEXT=DOI" in err and not (tmp_path / "m2.zip").exists()


def test_a_model_with_lattice_gates_exports_validates_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = CGUNet(depth=2, base_channels=4, field_shape=FIELD, gate_stride=16)
    with torch.no_grad():
        for _, _, block in model.gated_blocks():
            block.gate.out.weight.mul_(10)
    path = export_bioimageio(model, tmp_path / "lattice.zip", authors=[{"name": "Test Author"}])
    _summary_ok(core.test_model(path, devices=["cpu"]))
    loaded = load_model(path)
    assert loaded.config["gate_stride"] == 16
    image = np.random.default_rng(3).gamma(2.0, 100.0, FIELD).astype(np.float32)
    expected = deblur(image, model, precision="fp32", device="cpu")
    assert np.abs(deblur(image, loaded, precision="fp32", device="cpu") - expected).max() <= 1e-5 * np.abs(expected).max()
