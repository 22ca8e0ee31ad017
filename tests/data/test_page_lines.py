"""PAGE XML exports -> a folder of lines that the ``folder`` dataset reads."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.inference_only import run_without_training
from tests.pages import SAMPLE_NAMES, SAMPLES, TRUTHS, compose_page, multipage_tiff
from typer.testing import CliRunner

from text_recognizer.cli import app
from text_recognizer.data.page_lines import cut_line, import_page_lines, plain_text, upright
from text_recognizer.errors import DataError
from text_recognizer.labels import read_labels
from text_recognizer.metrics import cer
from text_recognizer.page_xml import read_page_xml, write_page_xml
from text_recognizer.recognizer import Recognizer

# A Transkribus export's PAGE file: the 2013 schema, the image one folder up, typographic
# characters, a line without text, a line with a letter the charset lacks, and two
# alternative readings of which the lower index is the one to keep.
TRANSKRIBUS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
  <Metadata><Creator>Transkribus</Creator><Created>2026-01-01T00:00:00</Created>
    <LastChange>2026-01-01T00:00:00</LastChange></Metadata>
  <Page imageFilename="{image}" imageWidth="{width}" imageHeight="{height}">
    <TextRegion id="r1"><Coords points="0,0 10,0 10,10 0,10"/>
{lines}
    </TextRegion>
  </Page>
</PcGts>
"""
LINE = """      <TextLine id="{id}"><Coords points="{points}"/>
        <Word id="{id}w1"><Coords points="0,0 1,1 0,1"/>
          <TextEquiv><Unicode>word</Unicode></TextEquiv></Word>
        {equivs}
      </TextLine>"""


def equiv(text: str, index: int | None = None) -> str:
    attribute = f' index="{index}"' if index is not None else ""
    return f"<TextEquiv{attribute}><Unicode>{text}</Unicode></TextEquiv>"


def export(folder: Path, name: str = "0001", indices: tuple[int, ...] = (0, 3, 6)) -> list[str]:
    """A page of sample lines and its PAGE file in ``folder/page/``; the lines' truths."""
    page, truths = compose_page(list(indices), pitch=50)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.png"), page)
    found = Recognizer.from_pretrained().recognize(page, kind="paragraph").lines
    lines = []
    for number, (line, truth) in enumerate(zip(found, truths, strict=True), 1):
        assert line.polygon is not None
        points = " ".join(f"{x},{y}" for x, y in line.polygon)
        # Typographic quotes and dashes where the truth has plain ones; an alternative.
        fancy = truth.replace("'", "\u2019").replace("-", "\u2014")
        equivs = equiv(fancy.replace("&", "&amp;"), 0) + equiv("an alternative", 1)
        lines.append(LINE.format(id=f"r1l{number}", points=points, equivs=equivs))
    lines.append(LINE.format(id="empty", points="5,5 50,5 50,20 5,20", equivs=equiv("")))
    lines.append(LINE.format(id="umlaut", points="5,5 50,5 50,20 5,20", equivs=equiv("Über")))
    xml = TRANSKRIBUS.format(
        image=f"{name}.png", width=page.shape[1], height=page.shape[0], lines="\n".join(lines)
    )
    (folder / "page").mkdir(exist_ok=True)
    (folder / "page" / f"{name}.xml").write_text(xml, encoding="utf-8")
    return truths


def test_an_export_becomes_a_folder_the_model_reads_as_well_as_the_page(tmp_path: Path) -> None:
    truths = export(tmp_path / "export")
    # A Transkribus export's other XML files, beside the page/ folder: not pages.
    (tmp_path / "export" / "mets.xml").write_text('<mets:mets xmlns:mets="x"/>')
    (tmp_path / "export" / "metadata.xml").write_text("<trpDocMetadata/>")
    report = import_page_lines([tmp_path / "export"], tmp_path / "lines")
    assert (report.pages, report.lines) == (1, 3)
    assert report.skipped == {"without text": 1, "with characters the models cannot write": 1}
    assert report.unknown == {"Ü": 1}
    assert "3 lines of 1 page" in report.summary() and "'Ü' (1)" in report.summary()
    rows = read_labels(tmp_path / "lines")
    assert [row.text for row in rows] == truths  # the plain forms, the first reading
    assert [row.image.name for row in rows] == ["0001_r1l1.png", "0001_r1l2.png", "0001_r1l3.png"]
    read = Recognizer.from_pretrained().recognize_batch([row.image for row in rows], kind="line")
    samples = [SAMPLES / SAMPLE_NAMES[i] for i in (0, 3, 6)]
    alone = Recognizer.from_pretrained().recognize_batch(samples, kind="line")
    assert cer([r.text for r in read], truths) <= cer([r.text for r in alone], truths) + 0.03


def test_the_cli_imports_and_the_folder_dataset_scores_it(tmp_path: Path) -> None:
    export(tmp_path / "export", "a", (0, 3))
    export(tmp_path / "export" / "more", "a", (1,))  # the same file name in another folder
    runner = CliRunner()
    result = runner.invoke(
        app, ["data", "import-page", str(tmp_path / "export"), "-o", str(tmp_path / "lines")]
    )
    assert result.exit_code == 0, result.output
    assert "3 lines of 2 pages" in result.output.replace("\n", "")  # rich's wrapping
    names = sorted(row.image.name for row in read_labels(tmp_path / "lines"))
    assert names == ["a_r1l1-2.png", "a_r1l1.png", "a_r1l2.png"]
    result = runner.invoke(
        app,
        [
            "evaluate",
            "default",
            "--data",
            "folder",
            "--data-arg",
            f"path={tmp_path / 'lines'}",
            "--split",
            "all",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "folder/all (3 samples" in result.output
    # A second import into the same folder would mix two exports: refused.
    result = runner.invoke(
        app, ["data", "import-page", str(tmp_path / "export"), "-o", str(tmp_path / "lines")]
    )
    assert result.exit_code == 1
    assert "labels.tsv exists" in result.output.replace("\n", "")  # rich's wrapping


def test_what_cannot_be_imported_says_why(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PAGE XML files"):
        import_page_lines([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "bad.xml").write_text("<PcGts><unclosed></PcGts>")
    with pytest.raises(DataError, match="not a readable XML file"):
        import_page_lines([tmp_path / "bad.xml"], tmp_path / "out")
    (tmp_path / "other.xml").write_text("<html><body/></html>")
    with pytest.raises(DataError, match="not a PAGE XML file"):
        import_page_lines([tmp_path / "other.xml"], tmp_path / "out")
    export(tmp_path / "export")
    (tmp_path / "export" / "0001.png").unlink()
    with pytest.raises(DataError, match=r"no transcribed line.*1 page left out.*0001\.xml"):
        import_page_lines([tmp_path / "export"], tmp_path / "out")
    assert not (tmp_path / "out" / "labels.tsv").exists()


def simple_page(folder: Path, name: str, lines: dict[str, str], size: str = "") -> None:
    """``folder/name.xml``, its lines ``{points: text}`` on ``name.png``, a grey page
    with a dark bar where each line is; ``size``: the Page's image size attributes."""
    folder.mkdir(parents=True, exist_ok=True)
    page = np.full((120, 200), 230, np.uint8)
    page[20:40, 20:180] = page[70:90, 20:180] = 20
    cv2.imwrite(str(folder / f"{name}.png"), page)
    elements = [
        LINE.format(id=f"l{number}", points=points, equivs=equiv(text))
        for number, (points, text) in enumerate(lines.items(), 1)
    ]
    xml = TRANSKRIBUS.format(image=f"{name}.png", width=200, height=120, lines="\n".join(elements))
    if size:
        xml = xml.replace('imageWidth="200" imageHeight="120"', size)
    (folder / f"{name}.xml").write_text(xml, encoding="utf-8")


GOOD = {"15,15 185,15 185,45 15,45": "one", "15,65 185,65 185,95 15,95": "two"}


@pytest.mark.parametrize(
    "points",
    [
        "0,0 inf,0 inf,50 0,50",
        "0,0 nan,0 nan,50 0,50",
        "0,0 3000000000,0 3000000000,50 0,50",
        "0,0 1e30,0 1e30,50 0,50",
        "0,0 -1e308,0 -1e308,50 0,50",
    ],
)
def test_a_line_with_coordinates_on_no_image_is_left_out_and_counted(
    tmp_path: Path, points: str
) -> None:
    simple_page(tmp_path / "export", "p", {**GOOD, points: "three"})
    report = import_page_lines([tmp_path / "export"], tmp_path / "out")
    assert (report.pages, report.lines) == (1, 2)
    assert report.skipped == {"without a polygon inside the image": 1}


@pytest.mark.parametrize(
    "size", ['imageWidth="0" imageHeight="0"', 'imageWidth="-5" imageHeight="120"']
)
def test_a_page_size_of_zero_is_no_size_to_scale_from(tmp_path: Path, size: str) -> None:
    simple_page(tmp_path / "export", "p", GOOD, size)
    assert read_page_xml(tmp_path / "export" / "p.xml").size is None
    report = import_page_lines([tmp_path / "export"], tmp_path / "out")
    assert (report.pages, report.lines, report.rescaled) == (1, 2, 0)


def test_a_huge_polygon_is_cut_as_none_not_an_overflow() -> None:
    grey = np.full((100, 200), 230, np.uint8)
    assert cut_line(grey, [(0, 0), (3_000_000_000, 0), (3_000_000_000, 50), (0, 50)]) is None
    assert cut_line(grey, [(0, 0), (10**30, 0), (10**30, 50), (0, 50)]) is None


def test_a_page_whose_image_is_missing_or_unreadable_is_left_out_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    for name in "abcd":
        simple_page(tmp_path / "export", name, GOOD)
    (tmp_path / "export" / "b.png").unlink()
    (tmp_path / "export" / "c.png").write_bytes(b"not an image")
    result = CliRunner().invoke(
        app, ["data", "import-page", str(tmp_path / "export"), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps at spaces
    assert "4 lines of 2 pages" in output
    assert "2 pages left out, their image missing or unreadable" in output
    # Each page's warning says why.
    assert "b.xml left out: its image 'b.png' is neither beside it nor one folder up" in output
    assert "c.xml left out:" in output and "not a readable image" in output
    rows = read_labels(tmp_path / "out")
    assert [row.image.name for row in rows] == ["a_l1.png", "a_l2.png", "d_l1.png", "d_l2.png"]


def test_an_output_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    simple_page(tmp_path / "export", "p", GOOD)
    (tmp_path / "afile").write_text("")
    result = CliRunner().invoke(
        app,
        ["data", "import-page", str(tmp_path / "export"), "-o", str(tmp_path / "afile" / "out")],
    )
    assert result.exit_code == 1
    assert "cannot create the folder" in result.output and "choose another one" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_entity_bomb_is_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<PcGts><Page>&lol2;</Page></PcGts>"
    )
    (tmp_path / "bomb.xml").write_text(bomb)
    with pytest.raises(DataError, match="not a readable XML file"):
        read_page_xml(tmp_path / "bomb.xml")


def test_typographic_characters_are_written_plainly() -> None:
    assert plain_text("\u201cWell\u201d \u2014 it\u2019s  done\u2026\n") == '"Well" - it\'s done...'


def test_page_2010_points(tmp_path: Path) -> None:
    (tmp_path / "old.xml").write_text(
        '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2010-03-19">'
        '<Page imageFilename="x.png"><TextRegion><TextLine id="l1"><Coords>'
        '<Point x="1" y="2"/><Point x="30" y="2"/><Point x="30" y="9.6"/></Coords>'
        "<TextEquiv><Unicode>a b</Unicode></TextEquiv></TextLine></TextRegion></Page></PcGts>"
    )
    page = read_page_xml(tmp_path / "old.xml")
    assert page.image is None and page.image_name == "x.png"
    assert [(line.id, line.polygon, line.text) for line in page.lines] == [
        ("l1", [(1, 2), (30, 2), (30, 10)], "a b")
    ]


def test_a_line_is_cut_along_its_polygon() -> None:
    grey = np.full((100, 200), 230, np.uint8)
    grey[40:60, 20:180] = 20  # the line's ink
    grey[25:35, :] = 20  # a neighbour's ink inside the box but outside the polygon
    # A step: over x > 100 the polygon starts 8 rows lower, under the neighbour's ink.
    step = [(10, 30), (100, 30), (100, 38), (190, 38), (190, 70), (10, 70)]
    cut = cut_line(grey, [(10, 30), (190, 30), (190, 70), (10, 70)])
    assert cut is not None and cut.shape == (41, 181)
    assert (cut[0:5, 95:] == 20).all()  # a plain box keeps the neighbour's ink
    cut = cut_line(grey, step)
    assert cut is not None and cut.shape == (41, 181)
    assert (cut[0:5, 95:] == 230).all()  # outside the polygon: the paper's level
    assert (cut[0:5, :85] == 20).all() and (cut[10:30, 10:170] == 20).all()  # inside: as it was
    assert cut_line(grey, [(0, 0), (1, 1)]) is None
    assert cut_line(grey, [(300, 300), (400, 300), (400, 400)]) is None  # off the image


@pytest.mark.parametrize("dark_ink", [True, False])
def test_outside_the_polygon_is_the_paper_as_lit_there(dark_ink: bool) -> None:
    """Unevenly lit paper (a photo): what is filled in matches the paper beside it, so the
    polygon's edge leaves no stroke; light ink on dark paper alike."""
    paper = np.tile(np.linspace(120, 250, 400), (120, 1)).astype(np.uint8)  # light across
    page = paper.copy()
    page[50:70, 40:360] = 10  # the line
    page[20:28, :] = 10  # a neighbour's descenders above it
    if not dark_ink:
        paper, page = 255 - paper, 255 - page
    slanted = [(30, 30), (370, 15), (370, 95), (30, 110)]
    cut = cut_line(page, slanted)
    assert cut is not None
    outside = np.zeros(cut.shape, np.uint8)
    cv2.fillPoly(outside, [np.array(slanted) - (30, 15)], 1)
    filled = outside == 0
    steps = np.abs(cut.astype(int) - paper[15:111, 30:371].astype(int))[filled]
    # The paper's own level (within the ramp over half a window at the crop's ends), not
    # one level for all: the page's median would be up to ~65 off.
    assert steps.max() <= 10 and steps.mean() < 2


def test_importing_needs_none_of_the_training_dependencies(tmp_path: Path) -> None:
    export(tmp_path / "export", indices=(0,))
    done = run_without_training(
        "from pathlib import Path\n"
        "from text_recognizer.cli import run\n"
        f"sys.argv = ['text-recognizer', 'data', 'import-page', {str(tmp_path / 'export')!r}, "
        f"'-o', {str(tmp_path / 'lines')!r}]\n"
        "run()\n"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lines" / "labels.tsv").read_text().startswith("0001_r1l1.png\t")


def test_truths_of_the_samples_are_plain() -> None:
    assert all(plain_text(text) == text for text in TRUTHS.values())


def test_an_image_smaller_than_its_page_file_says_is_cut_where_it_should_be(
    tmp_path: Path,
) -> None:
    """A page transcribed at full resolution whose image was halved since: the PAGE
    coordinates are scaled to the image, and the lines cut read as before."""
    truths = export(tmp_path / "export")
    full = import_page_lines([tmp_path / "export"], tmp_path / "full")
    image = tmp_path / "export" / "0001.png"
    page = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(image), cv2.resize(page, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    half = import_page_lines([tmp_path / "export"], tmp_path / "half")
    assert (full.rescaled, half.rescaled) == (0, 1)
    assert "their coordinates were scaled to fit" in half.summary()
    read = Recognizer.from_pretrained().recognize_batch(
        [row.image for row in read_labels(tmp_path / "half")], kind="line"
    )
    assert cer([r.text for r in read], truths) < 0.1
    for row in read_labels(tmp_path / "half"):
        height = cv2.imread(str(row.image), cv2.IMREAD_GRAYSCALE).shape[0]
        assert 25 <= height <= 40  # half of the ~64 px lines, not a slice of two lines


def test_each_page_of_a_tiff_is_cut_from_its_own_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``recognize --page-xml`` writes a file per page of a TIFF: each line is cut from the
    page its file names, not from the TIFF's first page."""
    pages = [compose_page(indices, pitch=50)[0] for indices in ([0, 3], [1, 4], [2, 5])]
    scan = tmp_path / "scan.tif"
    scan.write_bytes(multipage_tiff(pages))
    read = Recognizer.from_pretrained().recognize_document(scan)
    for result in read:
        write_page_xml(tmp_path / "xml" / f"scan_page{result.page}.xml", result, scan.name)
    report = import_page_lines([tmp_path / "xml"], tmp_path / "lines")
    assert (report.pages, report.lines) == (3, sum(len(r.lines) or 1 for r in read))
    rows = read_labels(tmp_path / "lines")
    for row in rows:
        number = int(row.image.name.split("_page")[1].split("_")[0])
        lines = read[number - 1].lines or [read[number - 1]]  # a page read as one line
        line = next(line for line in lines if line.text == row.text)
        assert line.polygon is not None
        expected = cut_line(pages[number - 1], line.polygon)
        assert np.array_equal(cv2.imread(str(row.image), cv2.IMREAD_GRAYSCALE), expected)
    # A file naming a page its image lacks is left out, and says so.
    write_page_xml(tmp_path / "more" / "scan_page1.xml", read[0], scan.name)
    write_page_xml(tmp_path / "more" / "scan_page7.xml", replace(read[2], page=7), scan.name)
    (tmp_path / "more" / scan.name).write_bytes(scan.read_bytes())
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        report = import_page_lines([tmp_path / "more"], tmp_path / "lines2")
    assert report.pages == 1
    assert report.pages_skipped == [tmp_path / "more" / "scan_page7.xml"]
    assert "scan.tif has no page 7: it has 3" in caplog.text


@pytest.mark.parametrize(
    "turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180]
)
def test_the_lines_of_a_page_read_on_its_side_are_cut_upright(tmp_path: Path, turn: int) -> None:
    """``recognize`` turns a page lying on its side (or, with ``orientation="any"``,
    upside down) to read it, and writes its lines' places in the page as given: cut as
    they lie, they would be lines written down, up or upside down, which no model reads."""
    page, truths = compose_page([0, 3], pitch=50)
    turned = cv2.rotate(page, turn)
    cv2.imwrite(str(tmp_path / "scan.png"), turned)
    read = Recognizer.from_pretrained(orientation="any").recognize(turned, kind="paragraph")
    assert cer([line.text for line in read.lines], truths) < 0.1  # read turned back upright
    write_page_xml(tmp_path / "scan.xml", read, "scan.png")
    import_page_lines([tmp_path / "scan.xml"], tmp_path / "lines")
    rows = read_labels(tmp_path / "lines")
    images = [cv2.imread(str(row.image), cv2.IMREAD_GRAYSCALE) for row in rows]
    assert all(image.shape[1] > 4 * image.shape[0] for image in images)  # lying, not standing
    again = Recognizer.from_pretrained(orientation="upright").recognize_batch(images, kind="line")
    assert cer([r.text for r in again], [row.text for row in rows]) < 0.05


def test_a_line_without_a_baseline_is_kept_as_cut_and_one_that_runs_left_is_turned() -> None:
    line = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert upright(line, []) is line
    assert np.array_equal(upright(line, [(0, 1), (3, 1)]), line)
    assert np.array_equal(upright(line, [(3, 1), (0, 1)]), line[::-1, ::-1])
    assert np.array_equal(upright(line, [(1, 0), (1, 2)]), np.rot90(line))  # written down
    assert np.array_equal(upright(line, [(1, 2), (1, 0)]), np.rot90(line, -1))  # written up
