"""Reading the optics (NA, emission wavelength, pixel size, immersion index) from image files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_coordgate.psf.optics.metadata import (FileOptics, describe_value, optics_from_metadata,
                                                  optics_from_ome_xml, read_optics)

PLANE = np.zeros((16, 16), np.uint16)


def ome_xml(objectives: str = "", settings: str = "", pixels: str = 'PhysicalSizeX="0.1" PhysicalSizeY="0.1"',
            channels: str = '<Channel ID="Channel:0:0" EmissionWavelength="520"/>', year: str = "2016-06") -> str:
    """A small OME-XML document (ASCII: TIFF descriptions must be 7-bit)."""
    namespace = f' xmlns="http://www.openmicroscopy.org/Schemas/OME/{year}"' if year else ""
    instrument = f'<Instrument ID="Instrument:0">{objectives}</Instrument>' if objectives else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME{namespace}>{instrument}<Image ID="Image:0">{settings}'
            f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="16" SizeY="16" SizeC="1" SizeZ="1" '
            f'SizeT="1" {pixels}>{channels}<TiffData/></Pixels></Image></OME>')


def write_ome(path, xml: str):
    tifffile.imwrite(path, PLANE, description=xml, metadata=None)
    return path


def test_all_values_with_their_sources(tmp_path):
    xml = ome_xml(
        objectives='<Objective ID="Objective:0" LensNA="0.3" Immersion="Air"/>'
                   '<Objective ID="Objective:1" LensNA="1.4" Immersion="Oil"/>',
        settings='<ObjectiveSettings ID="Objective:1" RefractiveIndex="1.515"/>',
        pixels='PhysicalSizeX="65" PhysicalSizeXUnit="nm" PhysicalSizeY="65" PhysicalSizeYUnit="nm"',
        channels='<Channel ID="Channel:0:0" EmissionWavelength="0.52" EmissionWavelengthUnit="&#181;m"/>',
    )
    optics = read_optics(write_ome(tmp_path / "slide.ome.tif", xml))
    assert (optics.na, optics.wavelength_nm, optics.pixel_size_nm, optics.immersion_index) == (1.4, 520.0, 65.0, 1.515)
    assert optics.sources == {
        "na": "OME-XML Objective LensNA",  # the objective the image's settings name, not the first
        "immersion_index": "OME-XML ObjectiveSettings RefractiveIndex",
        "wavelength_nm": "OME-XML Channel EmissionWavelength (µm -> nm)",
        "pixel_size_nm": "OME-XML Pixels PhysicalSizeX (nm)",
    }
    assert optics.notes == () and optics.missing() == []
    assert optics.describe() == "NA 1.4, 520 nm, 65 nm, immersion 1.515"
    assert describe_value("wavelength_nm", 520.0) == "emission wavelength 520 nm"


def test_tifffile_ome_metadata_default_units(tmp_path):
    """OME-TIFF as tifffile writes it: sizes in µm by default, wavelengths in nm; no objective."""
    path = tmp_path / "beads.ome.tif"
    tifffile.imwrite(path, PLANE, metadata={"axes": "YX", "PhysicalSizeX": 0.115, "PhysicalSizeY": 0.115,
                                            "Channel": {"Name": "beads", "EmissionWavelength": 520}})
    optics = read_optics(path)
    assert optics.values() == {"wavelength_nm": 520.0, "pixel_size_nm": 115.0}  # no binary noise from µm -> nm
    assert optics.sources["pixel_size_nm"] == "OME-XML Pixels PhysicalSizeX (µm -> nm)"
    assert optics.sources["wavelength_nm"] == "OME-XML Channel EmissionWavelength (nm)"
    assert optics.missing() == ["na"]


@pytest.mark.parametrize(("size", "unit", "nm"), [("0.0001", "mm", 100.0), ("1000", "&#197;", 100.0),
                                                  ("0.25", "&#956;m", 250.0), ("0.25", None, 250.0),
                                                  ("130", "nm", 130.0)])
def test_pixel_size_units(size, unit, nm):
    unit_attribute = "" if unit is None else f' PhysicalSizeXUnit="{unit}"'
    optics = optics_from_ome_xml(ome_xml(pixels=f'PhysicalSizeX="{size}"{unit_attribute}'))
    assert optics.pixel_size_nm == pytest.approx(nm)


@pytest.mark.parametrize(("medium", "index"), [("Oil", 1.518), ("Water", 1.333), ("Glycerol", 1.47), ("Air", 1.0)])
def test_immersion_from_the_medium_name(medium, index):
    """Without a RefractiveIndex, the only objective's Immersion medium gives the index."""
    objective = f'<Objective ID="Objective:0" LensNA="0.95" Immersion="{medium}"/>'
    optics = optics_from_ome_xml(ome_xml(objectives=objective))
    if index < 0.95:
        assert optics.immersion_index is None and any("below the NA" in n for n in optics.notes)
        return
    assert optics.immersion_index == index and optics.na == 0.95
    assert optics.sources["immersion_index"] == f"OME-XML Objective Immersion {medium} -> {index} (the only objective)"


@pytest.mark.parametrize("year", ["2013-06", "2008-02", ""])
def test_any_schema_year(year):
    optics = optics_from_ome_xml(ome_xml(objectives='<Objective ID="O:0" LensNA="0.8"/>', year=year))
    assert optics.values() == {"na": 0.8, "wavelength_nm": 520.0, "pixel_size_nm": 100.0}


def test_implausible_values_are_ignored_with_notes():
    xml = ome_xml(
        objectives='<Objective ID="O:0" LensNA="14"/>',
        pixels='PhysicalSizeX="0.1" PhysicalSizeY="0.2"',
        channels='<Channel ID="C:0" EmissionWavelength="5"/><Channel ID="C:1" EmissionWavelength="520"/>'
                 '<Channel ID="C:2" EmissionWavelength="600"/>',
    )
    optics = optics_from_ome_xml(xml)
    assert optics.na is None and optics.wavelength_nm == 520.0 and optics.pixel_size_nm == 100.0
    notes = " | ".join(optics.notes)
    for words in ("LensNA='14'", "5 nm is outside", "different emission wavelengths (520, 600 nm)", "not square"):
        assert words in notes, (words, notes)
    far = optics_from_ome_xml(ome_xml(pixels='PhysicalSizeX="5" PhysicalSizeXUnit="mm"'))
    assert far.pixel_size_nm is None and "outside 1 nm-100 µm" in far.notes[0]


def test_several_objectives_and_none_named():
    objectives = '<Objective ID="O:0" LensNA="0.3"/><Objective ID="O:1" LensNA="1.4"/>'
    optics = optics_from_ome_xml(ome_xml(objectives=objectives))
    assert optics.na is None and "2 objectives" in optics.notes[0]


def test_imagej_and_plain_tiff_resolution(tmp_path):
    imagej = tmp_path / "imagej.tif"
    tifffile.imwrite(imagej, PLANE, imagej=True, resolution=(1 / 0.13, 1 / 0.13), metadata={"unit": "micron"})
    optics = read_optics(imagej)
    assert optics.values() == {"pixel_size_nm": 130.0}
    assert optics.sources["pixel_size_nm"] == "ImageJ calibration XResolution (micron -> nm)"
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(cm, PLANE, resolution=(50_000, 50_000), resolutionunit="CENTIMETER")
    assert read_optics(cm).pixel_size_nm == pytest.approx(200.0)
    dpi = tmp_path / "dpi.tif"
    tifffile.imwrite(dpi, PLANE, resolution=(300, 300), resolutionunit="INCH")  # a print resolution
    assert read_optics(dpi) == FileOptics()


def test_tiff_without_optics_gives_none(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, PLANE)
    optics = read_optics(path)
    assert optics.values() == {} and optics.sources == {} and optics.notes == ()
    assert optics.missing() == ["na", "wavelength_nm", "pixel_size_nm"] and optics.describe() == ""


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_optics(tmp_path / "missing.ome.tif")
    (tmp_path / "image.npy").write_bytes(b"\x93NUMPY not a tiff")
    with pytest.raises(ValueError, match="image.npy: not a TIFF file"):
        read_optics(tmp_path / "image.npy")
    with pytest.raises(ValueError, match="a folder"):
        read_optics(tmp_path)
    with pytest.raises(ValueError, match="not well-formed XML"):
        optics_from_ome_xml("<OME><Image>")
    with pytest.raises(ValueError, match="not OME-XML"):
        optics_from_ome_xml("<svg/>")


def test_broken_ome_xml_in_a_tiff_is_a_note(tmp_path):
    path = write_ome(tmp_path / "broken.ome.tif", '<?xml version="1.0"?><OME><Image></OME>')
    optics = read_optics(path)
    assert optics.values() == {} and "could not be read" in optics.notes[0]


def test_optics_from_layer_metadata():
    xml = ome_xml(objectives='<Objective ID="O:0" LensNA="0.9"/>')

    class OmeObject:  # an ome_types.OME stand-in
        def to_xml(self):
            return xml

    assert optics_from_metadata({"name": "x", "ome_xml": xml}).na == 0.9
    assert optics_from_metadata({"reader": {"ome": OmeObject()}}).pixel_size_nm == 100.0
    assert optics_from_metadata({"description": "<html/>", "n": 3}) == FileOptics()
