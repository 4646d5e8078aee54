"""The Calibration widget prefills the optics that the bead image's file or metadata records."""

import numpy as np
import pytest
import tifffile

from napari_coordgate._qt import _workers
from napari_coordgate.psf.psf_field import PSFField

TIMEOUT = 60_000


def ome_xml(na="0.9", immersion='Immersion="Air"', index="", size="0.115") -> str:
    """The OME-XML of a 64 x 64 bead slide (ASCII, as TIFF descriptions must be)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Instrument ID="Instrument:0"><Objective ID="Objective:0" LensNA="{na}" {immersion}/></Instrument>'
        f'<Image ID="Image:0"><ObjectiveSettings ID="Objective:0" {index}/><Pixels ID="Pixels:0" '
        'DimensionOrder="XYCZT" Type="uint16" SizeX="64" SizeY="64" SizeC="1" SizeZ="1" SizeT="1" '
        f'PhysicalSizeX="{size}" PhysicalSizeY="{size}"><Channel ID="Channel:0:0" EmissionWavelength="520"/>'
        '<TiffData/></Pixels></Image></OME>'
    )


@pytest.fixture
def widget(open_widget):
    return open_widget("Calibration")


@pytest.fixture
def bead_file(tmp_path):
    path = tmp_path / "bead_slide.ome.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16), description=ome_xml(), metadata=None)
    return path


def optics(widget):
    return (widget._bead_na.value, widget._bead_wavelength.value, widget._bead_pixel_size.value,
            widget._immersion.value)


def test_opening_an_ome_tiff_prefills_the_optics(viewer, widget, bead_file):
    assert optics(widget) == (0.0, 520.0, 0.0, 0.0)  # the defaults: unknown
    [layer] = viewer.open(bead_file, plugin="napari")
    assert widget._bead_image.value is layer and layer.source.path
    assert optics(widget) == (pytest.approx(0.9), 520.0, pytest.approx(115.0), 1.0)
    assert "Optics from bead_slide.ome.tif: NA 0.9, 520 nm, 115 nm, immersion 1.0." in widget._status.text()
    assert "Optics from bead_slide.ome.tif" in widget.log_text()

    # another layer without optics: what the file filled in goes back to unknown
    widget._bead_image.value = viewer.add_image(np.zeros((64, 64), np.float32), name="plain")
    assert optics(widget) == (0.0, 520.0, 0.0, 0.0)


def test_a_typed_value_is_never_overwritten(viewer, widget, bead_file):
    widget._bead_na.value = 1.2
    widget._bead_pixel_size.value = 100.0
    viewer.open(bead_file, plugin="napari")
    assert optics(widget) == (pytest.approx(1.2), 520.0, pytest.approx(100.0), 1.0)
    text = widget._status.text()
    assert "Optics from bead_slide.ome.tif: 520 nm, immersion 1.0." in text
    assert "Kept your NA 1.2; the file records NA 0.9." in text and "Kept your pixel size 100 nm" in text
    # NA 0 is "unknown" again: the next layer's file fills it in
    widget._bead_na.value = 0.0
    viewer.open(bead_file, plugin="napari")
    widget._bead_image.value = viewer.layers[-1]
    assert widget._bead_na.value == pytest.approx(0.9) and widget._bead_pixel_size.value == pytest.approx(100.0)


def test_layer_metadata_and_an_index_not_in_the_list(qtbot, viewer, widget, state, click, small_lens, monkeypatch):
    """OME-XML in the layer metadata counts too; an immersion index not listed becomes a choice; the
    calibration records where its optics came from."""
    xml = ome_xml(na="1.4", immersion='Immersion="Oil"', index='RefractiveIndex="1.515"', size="0.1")
    layer = viewer.add_image(np.zeros((64, 64), np.float32), name="slide", metadata={"ome_xml": xml})
    widget._bead_image.value = layer
    assert optics(widget) == (pytest.approx(1.4), 520.0, pytest.approx(100.0), 1.515)
    assert "Optics from the metadata of 'slide': NA 1.4, 520 nm, 100 nm, immersion 1.515." in widget.log_text()
    widget.reset_choices()  # as napari does when layers change: the file's index stays a choice
    assert widget._immersion.value == 1.515

    calls = []

    def fake(image, **kwargs):
        calls.append(kwargs)
        return PSFField(small_lens.psfs, small_lens.field_shape, kind="beads", metadata={"beads": [[10, 10]]})

    monkeypatch.setattr(_workers, "calibrate_from_beads", fake)
    widget._bead_wavelength.value = 600.0  # typed in
    click(widget._run_button)
    qtbot.waitUntil(widget.is_idle, timeout=TIMEOUT)
    assert calls[0]["na"] == pytest.approx(1.4) and calls[0]["immersion_index"] == 1.515
    sources = state.psf_field.metadata["optics_sources"]
    assert sources["na"] == "OME-XML Objective LensNA (the metadata of 'slide')"
    assert sources["wavelength_nm"] == "typed in"
