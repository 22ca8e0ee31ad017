"""Readings as PAGE XML: valid against the 2019-07-15 schema, and saying what was read where."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.pages import SAMPLES, compose_page
from text_recognizer.cli import app
from text_recognizer.page_xml import NAMESPACE, page_xml
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer, Result

xmlschema = pytest.importorskip("xmlschema")

SCHEMA = Path(__file__).parent / "schemas" / "pagecontent-2019-07-15.xsd"
NS = {"pc": NAMESPACE}


@pytest.fixture(scope="module")
def schema() -> object:
    return xmlschema.XMLSchema(SCHEMA)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def points(element: ET.Element | None) -> list[tuple[int, int]]:
    assert element is not None
    pairs = (pair.split(",") for pair in element.attrib["points"].split())
    return [(int(x), int(y)) for x, y in pairs]


def test_a_tilted_page_gives_each_line_its_place_and_text(
    recognizer: Recognizer, schema: xmlschema.XMLSchema
) -> None:
    page, _ = compose_page([0, 3, 6], pitch=50, tilt=-4.0)
    result = recognizer.recognize(page, kind="paragraph")
    created = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
    document = page_xml(result, "page 1.png", created)
    schema.validate(document)
    root = ET.fromstring(document)
    assert root.findtext("pc:Metadata/pc:Created", namespaces=NS) == "2026-12-07T09:30:00+00:00"
    page_element = root.find("pc:Page", NS)
    assert page_element is not None
    assert page_element.attrib == {
        "imageFilename": "page 1.png",
        "imageWidth": str(page.shape[1]),
        "imageHeight": str(page.shape[0]),
    }
    lines = page_element.findall("pc:TextRegion/pc:TextLine", NS)
    assert len(lines) == len(result.lines) == 3
    for element, line in zip(lines, result.lines, strict=True):
        assert points(element.find("pc:Coords", NS)) == line.polygon
        assert points(element.find("pc:Baseline", NS)) == line.baseline
        assert element.findtext("pc:TextEquiv/pc:Unicode", namespaces=NS) == line.text
        equiv = element.find("pc:TextEquiv", NS)
        assert equiv is not None
        assert float(equiv.attrib["conf"]) == pytest.approx(line.confidence, abs=1e-4)
        words = element.findall("pc:Word", NS)
        assert [w.findtext("pc:TextEquiv/pc:Unicode", namespaces=NS) for w in words] == [
            word.text for word in line.words
        ]
        assert [points(w.find("pc:Coords", NS)) for w in words] == [
            word.polygon for word in line.words
        ]
        assert len(words) == len(line.text.split())
        for w, word in zip(words, line.words, strict=True):
            conf = w.find("pc:TextEquiv", NS)
            assert conf is not None
            assert float(conf.attrib["conf"]) == pytest.approx(word.confidence, abs=1e-4)
    region_text = page_element.findtext("pc:TextRegion/pc:TextEquiv/pc:Unicode", namespaces=NS)
    assert region_text == result.text
    # The region bounds its lines.
    region = points(page_element.find("pc:TextRegion/pc:Coords", NS))
    for line in result.lines:
        assert line.polygon is not None
        for x, y in line.polygon:
            assert region[0][0] <= x <= region[2][0] and region[0][1] <= y <= region[2][1]


def test_a_baseline_runs_along_the_foot_of_its_line(recognizer: Recognizer) -> None:
    """On a page turned by 4 degrees, each baseline rises as the page does, and lies in the
    lower part of its line's box (under the letters' bodies, above the descenders' ends)."""
    page, _ = compose_page([0, 3, 6], pitch=50, tilt=4.0)
    for line in recognizer.recognize(page, kind="paragraph").lines:
        assert line.polygon is not None and line.baseline is not None
        (left, left_y), (right, right_y) = line.baseline
        assert np.degrees(np.arctan2(left_y - right_y, right - left)) == pytest.approx(4, abs=1)
        top_left, _, _, bottom_left = line.polygon
        share = (left_y - top_left[1]) / (bottom_left[1] - top_left[1])
        assert 0.5 < share < 0.95


def test_a_line_image_is_one_line_and_a_character_covers_its_image(
    recognizer: Recognizer, schema: xmlschema.XMLSchema
) -> None:
    line_image, char_image = SAMPLES / "line_00.png", SAMPLES.parent / "chars" / "char_00.png"
    result = recognizer.recognize(line_image)
    root = ET.fromstring(page_xml(result, line_image.name))
    schema.validate(root)
    line = root.find("pc:Page/pc:TextRegion/pc:TextLine", NS)
    assert line is not None
    assert points(line.find("pc:Coords", NS)) == result.polygon
    assert points(line.find("pc:Baseline", NS)) == result.baseline
    assert len(line.findall("pc:Word", NS)) == len(result.text.split())
    assert line.findtext("pc:TextEquiv/pc:Unicode", namespaces=NS) == result.text

    result = recognizer.recognize(char_image)
    width, height = Image.open(char_image).size
    root = ET.fromstring(page_xml(result, char_image.name))
    schema.validate(root)
    line = root.find("pc:Page/pc:TextRegion/pc:TextLine", NS)
    assert line is not None and line.find("pc:Baseline", NS) is None
    assert points(line.find("pc:Coords", NS)) == [
        (0, 0),
        (width - 1, 0),
        (width - 1, height - 1),
        (0, height - 1),
    ]
    assert line.findtext("pc:TextEquiv/pc:Unicode", namespaces=NS) == result.text


def test_text_is_escaped(schema: xmlschema.XMLSchema) -> None:
    result = Result('<a & "b">', 0.5, "line", size=(100, 20))
    document = page_xml(result, "a&b.png")
    schema.validate(document)
    root = ET.fromstring(document)
    assert root.findtext(".//pc:TextLine/pc:TextEquiv/pc:Unicode", namespaces=NS) == '<a & "b">'
    page = root.find("pc:Page", NS)
    assert page is not None and page.attrib["imageFilename"] == "a&b.png"


def test_a_page_read_turned_says_how_to_turn_it_upright(schema: xmlschema.XMLSchema) -> None:
    recognizer = Recognizer.from_pretrained(orientation="any")
    page = np.asarray(Image.open(SAMPLES_DIR / "paragraphs" / "page_00.png").convert("L"))
    for turns, orientation in ((0, None), (1, "90"), (2, "180"), (3, "-90")):
        document = page_xml(recognizer.recognize(np.rot90(page, turns)), "page.png")
        schema.validate(document)
        element = ET.fromstring(document).find("pc:Page", NS)
        assert element is not None and element.get("orientation") == orientation


def test_a_result_without_its_image_size_is_refused() -> None:
    with pytest.raises(ValueError, match="no size"):
        page_xml(Result("a", 0.5, "line"), "a.png")


def test_the_cli_writes_one_file_per_image(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    page, _ = compose_page([0, 4], pitch=50)
    Image.fromarray(page).save(tmp_path / "page.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "xml"
    images = [
        str(tmp_path / "page.png"),
        str(SAMPLES / "line_00.png"),
        str(tmp_path / "broken.png"),
    ]
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), *images])
    assert result.exit_code == 1  # the broken image; the others are written
    assert sorted(p.name for p in out.iterdir()) == ["line_00.xml", "page.xml"]
    for name in ("line_00.xml", "page.xml"):
        schema.validate(str(out / name))
    rows = [row.split("\t") for row in result.stdout.splitlines()]
    root = ET.parse(out / "page.xml").getroot()
    texts = [e.text for e in root.findall(".//pc:TextLine/pc:TextEquiv/pc:Unicode", NS)]
    assert texts == [rows[0][1], rows[1][1]]


def test_the_cli_refuses_two_images_of_one_name_before_reading(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first, second = tmp_path / "line.png", tmp_path / "a" / "line.png"
    for path in (first, second):
        path.write_bytes((SAMPLES / "line_00.png").read_bytes())
    out = tmp_path / "xml"
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), str(first), str(second)])
    assert result.exit_code == 1
    assert "would both be written as line.xml" in result.output.replace("\n", "")  # rich's wrapping
    assert not out.exists()


def test_the_cli_says_when_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "xml"  # under a file: no folder can be made there
    result = CliRunner().invoke(
        app, ["recognize", "--page-xml", str(target), str(SAMPLES / "line_00.png")]
    )
    assert result.exit_code == 1
    assert "cannot write PAGE XML into" in result.output.replace("\n", "")  # rich's wrapping


def test_the_cli_writes_a_file_per_page_of_a_tiff(
    tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    """PAGE describes one page per file: each page of a TIFF gets its own, numbered so the
    files sort in page order, naming the TIFF and (in a MetadataItem) the page."""
    from tests.pages import SAMPLE_NAMES, multipage_tiff, on_margin, sample_line
    from text_recognizer.page_xml import PAGE_NUMBER

    pages = [on_margin(sample_line(i % len(SAMPLE_NAMES), scale=1.5)) for i in range(10)]
    scan = tmp_path / "scan.tif"
    scan.write_bytes(multipage_tiff(pages))
    out = tmp_path / "xml"
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), str(scan)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"scan_page{n:02d}.xml" for n in range(1, 11)]
    rows = [row.split("\t") for row in result.stdout.splitlines()]
    for number, row in enumerate(rows, 1):
        assert row[0] == f"{scan} page {number}"
        path = out / f"scan_page{number:02d}.xml"
        schema.validate(str(path))
        root = ET.parse(path).getroot()
        item = root.find("pc:Metadata/pc:MetadataItem", NS)
        assert item is not None and item.attrib["name"] == PAGE_NUMBER
        assert item.attrib["value"] == str(number)
        page = root.find("pc:Page", NS)
        assert page is not None and page.attrib["imageFilename"] == "scan.tif"
        assert page.attrib["imageWidth"] == str(pages[number - 1].shape[1])
        assert root.findtext(".//pc:TextLine/pc:TextEquiv/pc:Unicode", namespaces=NS) == row[1]
    # An image whose PAGE file a page's would be is not overwritten: an error says so.
    clash = tmp_path / "scan_page02.png"
    Image.fromarray(pages[0]).save(clash)
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), str(scan), str(clash)])
    assert result.exit_code == 1
    assert f"{clash}: its PAGE XML file, {out / 'scan_page02.xml'}, holds {scan} page 2" in (
        result.stderr.replace("\n", "")
    )
    assert ET.parse(out / "scan_page02.xml").find(".//pc:MetadataItem", NS) is not None


def test_a_one_page_reading_names_no_page() -> None:
    xml = page_xml(Result("a", 0.5, "line", size=(10, 10)), "a.tif")
    assert "MetadataItem" not in xml


def test_a_folder_that_cannot_be_written_is_refused_before_any_image_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only --page-xml folder was found only once the first image had been read,
    and that image's reading was lost with the run."""
    import errno

    from text_recognizer import files

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was read")

    monkeypatch.setattr(files.Path, "touch", read_only)  # root writes anywhere: as if it could not
    monkeypatch.setattr(files.Path, "write_text", read_only)
    monkeypatch.setattr(Recognizer, "recognize_batch", never)
    out = tmp_path / "xml"
    result = CliRunner().invoke(
        app, ["recognize", "--page-xml", str(out), str(SAMPLES / "line_00.png")]
    )
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())  # rich's wrapping
    assert f"cannot write PAGE XML into {out} (Permission denied): choose another --page-xml" in (
        message
    )


def test_a_page_xml_file_that_cannot_be_written_costs_only_its_image(tmp_path: Path) -> None:
    """One file that could not be written (a folder of its name in the way; a name too
    long) stopped the whole run: the images after it were never read."""
    out = tmp_path / "xml"
    (out / "line_00.xml").mkdir(parents=True)
    images = [str(SAMPLES / "line_00.png"), str(SAMPLES / "line_01.png")]
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), *images])
    assert result.exit_code == 1
    assert [row.split("\t")[0] for row in result.stdout.splitlines()] == [images[1]]
    assert f"{images[0]}: cannot write its PAGE XML file, {out / 'line_00.xml'} (Is a" in (
        " ".join(result.stderr.split())
    )
    assert sorted(p.name for p in out.iterdir()) == ["line_00.xml", "line_01.xml"]  # no temp


def test_an_image_whose_name_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    """A file name of bytes that are no UTF-8 (written under another locale) ended the
    run in a UnicodeEncodeError traceback: XML holds text, and the name is no text."""
    import os

    name = tmp_path / os.fsdecode(b"scan\xff.png")
    try:
        name.write_bytes((SAMPLES / "line_00.png").read_bytes())
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    out = tmp_path / "xml"
    images = [str(name), str(SAMPLES / "line_01.png")]
    result = CliRunner().invoke(app, ["recognize", "--page-xml", str(out), *images])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "its file name is not UTF-8 text" in " ".join(result.stderr.split())
    assert [row.split("\t")[0] for row in result.stdout.splitlines()] == [images[1]]
    assert [p.name for p in out.iterdir()] == ["line_01.xml"]
