"""The optics an image file records: NA, emission wavelength, pixel size, immersion index.

:func:`calibrate_from_beads` is far more accurate with the optics given, and
OME-TIFF files (ImageJ and plain TIFFs, for the pixel size) record them.
:func:`read_optics` reads them from a TIFF file, :func:`optics_from_ome_xml`
from an OME-XML string, :func:`optics_from_metadata` from a metadata mapping
(such as a napari layer's ``metadata``). Each value found says where it came
from; values that cannot be right are left out with a note. Qt-free.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FileOptics", "read_optics", "optics_from_ome_xml", "optics_from_metadata", "describe_value",
           "OPTICS", "IMMERSION_INDEX"]

#: The optical values, in the order of :func:`calibrate_from_beads`'s keywords.
OPTICS = ("na", "wavelength_nm", "pixel_size_nm", "immersion_index")
#: Refractive index of the OME ``Immersion`` media (lower case; ``Multi`` and ``Other`` have none).
IMMERSION_INDEX = {"air": 1.0, "water": 1.333, "waterdipping": 1.333, "glycerol": 1.47, "silicone": 1.406,
                   "siliconeoil": 1.406, "oil": 1.518}
#: Plausible ranges: NA (0, 1.7], emission 200-2000 nm, pixel 1 nm-100 µm, immersion 1.0-2.0.
_NA_MAX = 1.7
_WAVELENGTH_NM = (200.0, 2000.0)
_PIXEL_NM = (1.0, 100_000.0)
_INDEX = (1.0, 2.0)
#: Nanometres per length unit (OME ``UnitsLength`` symbols, ImageJ and TIFF unit names).
_NM_PER_UNIT = {"m": 1e9, "dm": 1e8, "cm": 1e7, "mm": 1e6, "µm": 1e3, "um": 1e3, "micron": 1e3, "microns": 1e3,
                "micrometer": 1e3, "micrometre": 1e3, "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "pm": 1e-3,
                "Å": 0.1, "\u212b": 0.1, "angstrom": 0.1, "in": 2.54e7, "inch": 2.54e7}
#: TIFF ResolutionUnit codes (2-3 standard, 4-5 as tifffile writes them) and their names.
_TIFF_UNITS = {2: "inch", 3: "cm", 4: "mm", 5: "µm"}
#: Pixels per inch give print resolutions (72-1200 dpi: 21-353 µm); a microscope's pixel is smaller.
_INCH_PIXEL_MAX_NM = 20_000.0
_SQUARE_TOLERANCE = 0.01


@dataclass(frozen=True)
class FileOptics:
    """Optics recorded in an image file; None where the file does not record a value.

    Attributes
    ----------
    na : float or None
        Numerical aperture of the objective.
    wavelength_nm : float or None
        Emission wavelength, nm.
    pixel_size_nm : float or None
        Pixel size in the sample plane (along X), nm.
    immersion_index : float or None
        Refractive index of the immersion medium.
    sources : dict of str to str
        For each value found (keys as the attributes), where it came from,
        e.g. ``"OME-XML Objective LensNA"``.
    notes : tuple of str
        What was noticed and not used: implausible values, non-square pixels,
        channels with different wavelengths, unreadable metadata.
    """

    na: float | None = None
    wavelength_nm: float | None = None
    pixel_size_nm: float | None = None
    immersion_index: float | None = None
    sources: dict[str, str] = field(default_factory=dict, hash=False)
    notes: tuple[str, ...] = ()

    def values(self) -> dict[str, float]:
        """The values found, by name (in the order of :data:`OPTICS`)."""
        return {name: getattr(self, name) for name in OPTICS if getattr(self, name) is not None}

    def missing(self) -> list[str]:
        """Which of NA, wavelength and pixel size (the three a calibration needs together) are not recorded."""
        return [name for name in OPTICS[:3] if getattr(self, name) is None]

    def describe(self) -> str:
        """The values found, briefly: ``"NA 0.9, 520 nm, 115 nm, immersion 1.0"`` ("" when none)."""
        parts = {"na": "NA {}", "wavelength_nm": "{} nm", "pixel_size_nm": "{} nm", "immersion_index": "immersion {}"}
        return ", ".join(parts[name].format(_text(name, value)) for name, value in self.values().items())


def describe_value(name: str, value: float) -> str:
    """One value with its name and unit, e.g. ``"emission wavelength 520 nm"``."""
    label, unit = {"na": ("NA", ""), "wavelength_nm": ("emission wavelength", " nm"),
                   "pixel_size_nm": ("pixel size", " nm"), "immersion_index": ("immersion index", "")}[name]
    return f"{label} {_text(name, value)}{unit}"


def _text(name: str, value: float) -> str:
    """Lengths as ``%g`` (520), the NA and the index with a decimal point (1.0)."""
    return f"{value:g}" if name.endswith("_nm") else str(round(float(value), 4))


class _Found:
    """Values, sources and notes while reading."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []

    def add(self, name: str, value: float, source: str) -> None:
        if name not in self.values:
            self.values[name] = float(f"{value:.10g}")  # no binary noise from unit conversions
            self.sources[name] = source

    def result(self) -> FileOptics:
        return FileOptics(**self.values, sources=dict(self.sources), notes=tuple(self.notes))


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _nm_per(unit: str) -> float | None:
    """Nanometres per ``unit`` (µ written any way, ImageJ's ``\\u00B5`` escape included), or None."""
    unit = unit.strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ").replace("\u03bc", "µ")
    if unit in _NM_PER_UNIT:
        return _NM_PER_UNIT[unit]
    return _NM_PER_UNIT.get(unit.lower()) if len(unit) > 2 else None  # "Micron", not "Mm" (megametre)


def _conversion(unit: str) -> str:
    return f"({unit})" if unit == "nm" else f"({unit} -> nm)"


def _in_range(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


# -- OME-XML ------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    """An element's name without its namespace (any OME schema year)."""
    return tag.rsplit("}", 1)[-1]


def _children(element, name: str) -> list:
    return [child for child in element if _local(child.tag) == name]


def _length_nm(element, attribute: str, default_unit: str, found: _Found) -> tuple[float, str] | None:
    """``element``'s length ``attribute`` in nm, with its unit; None (and a note) when unusable."""
    text = element.get(attribute)
    if text is None:
        return None
    value = _number(text)
    unit = element.get(f"{attribute}Unit") or default_unit
    per = _nm_per(unit)
    if value is None or per is None:
        found.notes.append(f"OME-XML {attribute}={text!r} {unit}: not a length this reader knows; ignored")
        return None
    return value * per, unit


def _ome_objective(root, image, found: _Found):
    """The Objective the image uses, the ObjectiveSettings element and how the objective was chosen."""
    objectives = [e for e in root.iter() if _local(e.tag) == "Objective"]
    by_id = {o.get("ID"): o for o in objectives}
    settings = (_children(image, "ObjectiveSettings") or [None])[0]
    if settings is not None and settings.get("ID"):
        if settings.get("ID") in by_id:
            return by_id[settings.get("ID")], settings, ""
        found.notes.append(f"OME-XML ObjectiveSettings refers to objective {settings.get('ID')!r}, which is not "
                           "in the file")
        return None, settings, ""
    candidates = objectives
    ref = (_children(image, "InstrumentRef") or [None])[0]
    if ref is not None:
        instruments = [e for e in root.iter() if _local(e.tag) == "Instrument" and e.get("ID") == ref.get("ID")]
        if instruments:
            candidates = _children(instruments[0], "Objective")
    if len(candidates) == 1:
        return candidates[0], settings, " (the only objective)"
    if len(candidates) > 1:
        found.notes.append(f"OME-XML: {len(candidates)} objectives and the image names none; NA and immersion not read")
    return None, settings, ""


def _ome_objective_values(objective, settings, how: str, found: _Found) -> None:
    if objective is not None and objective.get("LensNA") is not None:
        na = _number(objective.get("LensNA"))
        if na is not None and 0 < na <= _NA_MAX:
            found.add("na", na, f"OME-XML Objective LensNA{how}")
        else:
            found.notes.append(f"OME-XML Objective LensNA={objective.get('LensNA')!r} is not a plausible NA "
                               f"(0 to {_NA_MAX}); ignored")
    index = None if settings is None else settings.get("RefractiveIndex")
    if index is not None:
        value = _number(index)
        if value is not None and _in_range(value, _INDEX):
            found.add("immersion_index", value, "OME-XML ObjectiveSettings RefractiveIndex")
        else:
            found.notes.append(f"OME-XML ObjectiveSettings RefractiveIndex={index!r} is not a plausible immersion "
                               "index (1.0 to 2.0); ignored")
    medium = None if objective is None else objective.get("Immersion")
    if "immersion_index" not in found.values and medium:
        key = medium.replace(" ", "").replace("-", "").lower()
        if key in IMMERSION_INDEX:
            found.add("immersion_index", IMMERSION_INDEX[key],
                      f"OME-XML Objective Immersion {medium} -> {IMMERSION_INDEX[key]}{how}")
        else:
            found.notes.append(f"OME-XML Objective Immersion {medium!r}: refractive index not known")
    na, index = found.values.get("na"), found.values.get("immersion_index")
    if na is not None and index is not None and index < na:
        found.notes.append(f"immersion index {index:g} is below the NA {na:g}: one of them is wrong; "
                           "the immersion index is not used")
        del found.values["immersion_index"], found.sources["immersion_index"]


def _ome_wavelength(pixels, found: _Found) -> None:
    wavelengths = []
    for channel in _children(pixels, "Channel"):
        length = _length_nm(channel, "EmissionWavelength", "nm", found)
        if length is None:
            continue
        if _in_range(length[0], _WAVELENGTH_NM):
            wavelengths.append(length)
        else:
            found.notes.append(f"OME-XML Channel EmissionWavelength {length[0]:g} nm is outside 200-2000 nm; ignored")
    if not wavelengths:
        return
    value, unit = wavelengths[0]
    found.add("wavelength_nm", value, f"OME-XML Channel EmissionWavelength {_conversion(unit)}")
    others = sorted({round(v, 1) for v, _ in wavelengths})
    if len(others) > 1:
        found.notes.append(f"the channels record different emission wavelengths ({', '.join(f'{v:g}' for v in others)} "
                           f"nm): took the first channel's, {value:g} nm")


def _ome_pixel_size(pixels, found: _Found) -> None:
    size_x = _length_nm(pixels, "PhysicalSizeX", "µm", found)
    if size_x is None:
        return
    value, unit = size_x
    if not _in_range(value, _PIXEL_NM):
        found.notes.append(f"OME-XML Pixels PhysicalSizeX {value:g} nm is outside 1 nm-100 µm; ignored")
        return
    found.add("pixel_size_nm", value, f"OME-XML Pixels PhysicalSizeX {_conversion(unit)}")
    size_y = _length_nm(pixels, "PhysicalSizeY", "µm", found)
    if size_y is not None and abs(size_y[0] - value) > _SQUARE_TOLERANCE * value:
        found.notes.append(f"the pixels are not square ({value:g} x {size_y[0]:g} nm, X x Y): took X")


def _read_ome(xml: str | bytes, image: int, found: _Found) -> None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ValueError(f"not well-formed XML ({err})") from None
    if _local(root.tag) != "OME":
        raise ValueError(f"not OME-XML (the root element is <{_local(root.tag)}>, not <OME>)")
    images = _children(root, "Image")
    if not images:
        found.notes.append("the OME-XML describes no image")
        return
    if not -len(images) <= image < len(images):
        raise ValueError(f"image {image} asked for; the OME-XML describes {len(images)}")
    element = images[image]
    objective, settings, how = _ome_objective(root, element, found)
    _ome_objective_values(objective, settings, how, found)
    pixels = (_children(element, "Pixels") or [None])[0]
    if pixels is not None:
        _ome_wavelength(pixels, found)
        _ome_pixel_size(pixels, found)


def optics_from_ome_xml(xml: str | bytes, *, image: int = 0) -> FileOptics:
    """The optics recorded in an OME-XML document (any OME schema year).

    Parameters
    ----------
    xml : str or bytes
        The OME-XML text, e.g. an OME-TIFF's ImageDescription or a
        ``METADATA.ome.xml`` file's contents.
    image : int
        Which ``Image`` element (the file's image series) to read, default the first.

    Returns
    -------
    FileOptics
        NA from the ``Objective`` that the image's ``ObjectiveSettings``
        names (else the only objective); immersion index from
        ``ObjectiveSettings RefractiveIndex``, else from the objective's
        ``Immersion`` medium (:data:`IMMERSION_INDEX`); emission wavelength
        from the first ``Channel`` that records one; pixel size from
        ``Pixels PhysicalSizeX``. Units are converted to nm (OME's defaults:
        µm for sizes, nm for wavelengths).

    Raises
    ------
    ValueError
        For text that is not well-formed XML, XML that is not OME-XML, or an
        ``image`` the document does not describe.
    """
    found = _Found()
    _read_ome(xml, image, found)
    return found.result()


# -- TIFF files ---------------------------------------------------------------------------------
def _tiff_pixel_size(resolution: float, unit: str, source: str, found: _Found) -> None:
    """A pixel size from pixels per ``unit`` (TIFF XResolution)."""
    per = _nm_per(unit)
    if per is None or not resolution > 0:
        return
    value = per / resolution
    if unit in ("in", "inch") and value > _INCH_PIXEL_MAX_NM:
        return  # a print resolution (dots per inch), not a microscope's
    if _in_range(value, _PIXEL_NM):
        found.add("pixel_size_nm", value, f"{source} {_conversion(unit)}")


def _read_tiff(path: Path) -> dict:
    """The metadata this module uses, read from the TIFF at ``path`` (``ValueError`` when unreadable)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return {"ome": tif.ome_metadata, "imagej": tif.imagej_metadata, "resolution": page.resolution,
                    "resolution_unit": int(page.resolutionunit)}
    except tifffile.TiffFileError:
        raise ValueError(f"{path}: not a TIFF file; optics are read from TIFF and OME-TIFF files") from None
    except Exception as err:  # tifffile raises many kinds of errors for damaged files
        raise ValueError(f"{path}: not a readable TIFF ({type(err).__name__}: {err})") from None


def read_optics(path: str | os.PathLike) -> FileOptics:
    """The optics recorded in a TIFF, OME-TIFF or ImageJ TIFF file.

    OME-XML comes first (see :func:`optics_from_ome_xml`; its first image,
    the one a reader opens); a pixel size the OME-XML lacks comes from the
    ImageJ calibration (XResolution in ImageJ's ``unit``), else from the
    TIFF XResolution in a physical ResolutionUnit (not a print resolution
    in dots per inch). A TIFF that records no optics gives all None; OME-XML
    that cannot be parsed is left out with a note.

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    FileOptics

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        For a folder, a file that is not a TIFF, or a damaged TIFF.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: a folder, not a TIFF file; optics are read from TIFF and OME-TIFF files")
    meta = _read_tiff(path)
    found = _Found()
    if meta["ome"]:
        try:
            _read_ome(meta["ome"], 0, found)
        except ValueError as err:
            found.notes.append(f"the OME-XML could not be read: {err}")
    if "pixel_size_nm" not in found.values:
        x_resolution = meta["resolution"][0]
        imagej_unit = (meta["imagej"] or {}).get("unit")
        if imagej_unit:
            _tiff_pixel_size(x_resolution, str(imagej_unit), "ImageJ calibration XResolution", found)
        elif meta["resolution_unit"] in _TIFF_UNITS:
            unit = _TIFF_UNITS[meta["resolution_unit"]]
            _tiff_pixel_size(x_resolution, unit, "TIFF XResolution/ResolutionUnit", found)
    return found.result()


# -- metadata mappings ----------------------------------------------------------------------------
def _ome_text(value) -> str | bytes | None:
    """``value`` as OME-XML text, if it is some: a string, bytes, or an object with ``to_xml()`` (ome-types)."""
    if isinstance(value, bytes):
        return value if b"<OME" in value[:4096] else None
    if isinstance(value, str):
        return value if value.lstrip().startswith("<") and "<OME" in value[:4096] else None
    to_xml = getattr(value, "to_xml", None)
    if callable(to_xml):
        try:
            text = to_xml()
        except Exception:  # not an OME object after all
            return None
        return text if isinstance(text, (str, bytes)) else None
    return None


def optics_from_metadata(metadata: Mapping, *, depth: int = 2) -> FileOptics:
    """The optics in the first OME-XML found among a mapping's values (e.g. a napari layer's ``metadata``).

    Values are searched in order, nested mappings down to ``depth`` levels;
    OME-XML is a string or bytes, or an object with a ``to_xml()`` method
    (an ``ome_types.OME``). Unparseable candidates are skipped.

    Parameters
    ----------
    metadata : Mapping
        The metadata to search.
    depth : int
        How many levels of nested mappings to search.

    Returns
    -------
    FileOptics
        All None (and no sources) when no OME-XML is found.
    """
    nested = []
    for value in metadata.values():
        text = _ome_text(value)
        if text is not None:
            try:
                return optics_from_ome_xml(text)
            except ValueError:
                continue
        if isinstance(value, Mapping):
            nested.append(value)
    if depth > 1:
        for value in nested:
            optics = optics_from_metadata(value, depth=depth - 1)
            if optics.sources or optics.notes:
                return optics
    return FileOptics()
