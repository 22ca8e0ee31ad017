"""PAGE XML, the layout-and-text format that HTR tools share (Transkribus, eScriptorium,
Kraken, PyLaia, OCR-D): readings written as it (2019-07-15 schema), and transcribed
lines read from it (any PAGE version).

Written, a page's lines become ``TextLine`` elements with the polygon each was found in,
its baseline, its words (``Word``: where each was read, its text and confidence) and its
text and confidence (``TextEquiv``), inside one ``TextRegion`` bounding them all; a line
image becomes one such ``TextLine``, a character one covering the whole image.
Coordinates are pixels of the image as read: upright, as its EXIF orientation says. A
page of a multi-page TIFF gets a file of its own (PAGE describes one page per file), naming
the TIFF and, in a ``MetadataItem`` (``PAGE_NUMBER``), the page.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from text_recognizer import __version__
from text_recognizer.errors import DataError
from text_recognizer.files import write_text_atomic
from text_recognizer.recognizer import Result

NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
SCHEMA = f"{NAMESPACE} {NAMESPACE}/pagecontent.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: The ``MetadataItem`` that says which page of a multi-page image (a TIFF) a file
#: describes, numbered from 1: PAGE has one ``Page`` per file, and no attribute for it.
PAGE_NUMBER = "page"
#: Beyond this a coordinate is on no image (and would overflow OpenCV's int32 points).
MAX_COORDINATE = 2**30


def page_xml(result: Result, image_name: str, created: datetime | None = None) -> str:
    """``result`` (of one whole image: its ``size`` set) as a PAGE XML document."""
    if result.size is None:
        raise ValueError("a PAGE XML file describes a whole image: this result has no size")
    width, height = result.size
    stamp = (created or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    ET.register_namespace("", NAMESPACE)
    root = ET.Element(_tag("PcGts"), {f"{{{_XSI}}}schemaLocation": SCHEMA})
    metadata = ET.SubElement(root, _tag("Metadata"))
    for name, value in (
        ("Creator", f"text-recognizer {__version__}"),
        ("Created", stamp),
        ("LastChange", stamp),
    ):
        ET.SubElement(metadata, _tag(name)).text = value
    if result.page is not None:  # PAGE describes one page: which of the file's is this
        ET.SubElement(
            metadata,
            _tag("MetadataItem"),
            {"type": "imageProperties", "name": PAGE_NUMBER, "value": str(result.page)},
        )
    attributes = {"imageFilename": image_name, "imageWidth": str(width), "imageHeight": str(height)}
    if result.rotation:  # PAGE: the clockwise turn that sets the page upright, in (-180, 180]
        attributes["orientation"] = str(result.rotation - 360 * (result.rotation > 180))
    page = ET.SubElement(root, _tag("Page"), attributes)
    whole = [(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)]
    lines = result.lines or [result]
    polygons = [line.polygon or whole for line in lines]
    region = ET.SubElement(page, _tag("TextRegion"), {"id": "r1", "type": "paragraph"})
    xs = [x for polygon in polygons for x, _ in polygon]
    ys = [y for polygon in polygons for _, y in polygon]
    _points(
        region,
        "Coords",
        [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))],
    )
    for number, (line, polygon) in enumerate(zip(lines, polygons, strict=True), 1):
        element = ET.SubElement(region, _tag("TextLine"), {"id": f"r1l{number}"})
        _points(element, "Coords", polygon)
        if line.baseline:  # baseline-based tools (Kraken, eScriptorium) need one
            _points(element, "Baseline", line.baseline)
        for index, word in enumerate(line.words, 1):
            word_element = ET.SubElement(element, _tag("Word"), {"id": f"r1l{number}w{index}"})
            _points(word_element, "Coords", word.polygon)
            _text(word_element, word.text, word.confidence)
        _text(element, line.text, line.confidence)
    _text(region, "\n".join(line.text for line in lines), result.confidence)
    ET.indent(root)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return declaration + ET.tostring(root, encoding="unicode") + "\n"


def write_page_xml(path: Path, result: Result, image_name: str) -> None:
    """Write :func:`page_xml` to ``path`` atomically (a temp file, renamed once complete)."""
    write_text_atomic(path, page_xml(result, image_name))


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _points(parent: ET.Element, tag: str, points: Sequence[tuple[int, int]]) -> None:
    ET.SubElement(parent, _tag(tag), {"points": " ".join(f"{x},{y}" for x, y in points)})


def _text(parent: ET.Element, text: str, confidence: float) -> None:
    # PAGE's conf is a probability in [0, 1]; a line's and a word's confidence are ones.
    equiv = ET.SubElement(parent, _tag("TextEquiv"), {"conf": f"{confidence:.4f}"})
    ET.SubElement(equiv, _tag("Unicode")).text = text


@dataclass(frozen=True)
class PageLine:
    """A transcribed line of a PAGE file: its id, polygon and text (``""``: none), and its
    baseline where it has one (its direction says which way the line is written)."""

    id: str
    polygon: list[tuple[int, int]]
    text: str
    baseline: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class PageFile:
    """What a PAGE file says: its image (as named, and where that file was found) and lines."""

    path: Path
    image_name: str
    image: Path | None
    lines: list[PageLine]
    size: tuple[int, int] | None = None  # (width, height) the coordinates refer to
    page: int | None = None  # which page of a multi-page image, from 1 (PAGE_NUMBER)

    def lines_on(self, size: tuple[int, int]) -> list[PageLine]:
        """The lines, their polygons scaled to the image's ``size`` (width, height) where
        the page was transcribed at another resolution than its image now has."""
        if not self.size or min(self.size) <= 0 or self.size == size:
            return self.lines
        sx, sy = size[0] / self.size[0], size[1] / self.size[1]

        def scaled(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [(round(x * sx), round(y * sy)) for x, y in points]

        return [
            replace(line, polygon=scaled(line.polygon), baseline=scaled(line.baseline))
            for line in self.lines
        ]


def read_page_xml(path: Path) -> PageFile:
    """The lines of a PAGE file (any PAGE version: elements are matched by name), in
    document order. The image is looked for beside the file, then one folder up (a
    Transkribus export keeps its PAGE files in ``page/`` beside the images)."""
    try:  # defusedxml: a file from elsewhere may hold entity bombs or external entities
        root = SafeElementTree.parse(path).getroot()
    except (ET.ParseError, DefusedXmlException, OSError) as error:
        raise DataError(f"{path}: not a readable XML file ({error})") from None
    page = next((e for e in root.iter() if _local(e.tag) == "Page"), None)
    if _local(root.tag) != "PcGts" or page is None:
        raise DataError(f"{path}: not a PAGE XML file (no PcGts root with a Page)")
    name = page.get("imageFilename", "")
    candidates = [path.parent / name, path.parent.parent / name] if name else []
    image = next((c for c in candidates if c.is_file()), None)
    lines = []
    for number, line in enumerate((e for e in page.iter() if _local(e.tag) == "TextLine"), 1):
        coords = _child(line, "Coords")
        baseline = _child(line, "Baseline")
        lines.append(
            PageLine(
                line.get("id") or f"line{number}",
                _parse_points(coords) if coords is not None else [],
                _line_text(line),
                _parse_points(baseline) if baseline is not None else [],
            )
        )
    try:
        size: tuple[int, int] | None = (
            int(page.get("imageWidth", "")),
            int(page.get("imageHeight", "")),
        )
    except ValueError:
        size = None
    if size and min(size) <= 0:  # "0" (some tools' "unknown"): nothing to scale from
        size = None
    return PageFile(path, name, image, lines, size, _page_number(root))


def _page_number(root: ET.Element) -> int | None:
    """The page of a multi-page image a file describes (``PAGE_NUMBER``), if it says."""
    for item in root.iter():
        if _local(item.tag) == "MetadataItem" and item.get("name") == PAGE_NUMBER:
            value = item.get("value", "")
            return int(value) if value.isdigit() and int(value) >= 1 else None
    return None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _parse_points(coords: ET.Element) -> list[tuple[int, int]]:
    """``points="x,y x,y ..."`` (PAGE 2013 on), or ``<Point x= y=/>`` children (2010).
    Unreadable points (``nan``, ``inf``, beyond ``MAX_COORDINATE``) give ``[]``: reported
    as a line without a usable polygon."""
    try:
        if "points" in coords.attrib:
            pairs = [pair.split(",") for pair in coords.attrib["points"].split()]
            points = [(round(float(x)), round(float(y))) for x, y in pairs]
        else:
            points = [
                (round(float(p.attrib["x"])), round(float(p.attrib["y"])))
                for p in coords
                if _local(p.tag) == "Point"
            ]
    except (ValueError, KeyError, OverflowError):  # OverflowError: round(inf)
        return []
    if any(abs(value) > MAX_COORDINATE for point in points for value in point):
        return []
    return points


def _line_text(line: ET.Element) -> str:
    """The line's own ``TextEquiv`` (not its words'): the lowest ``index`` where several."""
    equivs = [c for c in line if _local(c.tag) == "TextEquiv"]
    if not equivs:
        return ""
    best = min(equivs, key=_index)
    unicode = _child(best, "Unicode")
    return (unicode.text or "") if unicode is not None else ""


def _index(equiv: ET.Element) -> int:
    try:
        return int(equiv.get("index", "0"))
    except ValueError:
        return 0
