"""Files of several pages (multi-page TIFFs: scanners' and fax machines' output; faxes'
DCX files; PDFs): every page is read, numbered, bounded; animations' frames are not pages."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from tests.pages import compose_page, dcx, multipage_tiff, on_margin, raw_tiff, sample_line
from text_recognizer.errors import ImageError
from text_recognizer.images import Pages, load_image, may_hold_pages, page_count
from text_recognizer.recognizer import Recognizer, Result


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


@pytest.fixture(scope="module")
def pages() -> list[np.ndarray]:
    """A paragraph, a line, a blank page (a duplex scan's back) and another paragraph."""
    return [
        compose_page([0, 1, 2])[0],
        on_margin(sample_line(5, scale=2.0)),
        np.full((300, 200), 255, np.uint8),
        compose_page([3, 4])[0],
    ]


@pytest.fixture
def scan(tmp_path: Path, pages: list[np.ndarray]) -> Path:
    path = tmp_path / "scan.tif"
    path.write_bytes(multipage_tiff(pages, compression="tiff_deflate"))
    return path


def test_every_page_is_read_as_it_reads_alone_with_its_number(
    recognizer: Recognizer, scan: Path, pages: list[np.ndarray]
) -> None:
    read = list(recognizer.recognize_pages(scan))
    assert len(read) == 4
    blank = read.pop(2)
    assert isinstance(blank, ImageError)
    assert str(blank).startswith(f"{scan} page 3: the image is blank")
    alone = [recognizer.recognize(page) for i, page in enumerate(pages) if i != 2]
    for result, expected, number in zip(read, alone, [1, 2, 4], strict=True):
        assert not isinstance(result, ImageError)
        assert result.page == number
        assert result.kind == expected.kind and result.text == expected.text
        assert result.size == expected.size and result.to_dict()["page"] == number
    assert [r.kind for r in alone] == ["paragraph", "line", "paragraph"]
    # All or nothing: the blank page stops recognize_document, naming it.
    with pytest.raises(ImageError, match=r"scan\.tif page 3: the image is blank"):
        recognizer.recognize_document(scan)
    readable = [page for i, page in enumerate(pages) if i != 2]
    document = recognizer.recognize_document(multipage_tiff(readable))
    assert [r.text for r in document] == [r.text for r in alone]
    assert [r.page for r in document] == [1, 2, 3]


def test_a_file_of_one_page_reads_as_recognize_reads_it(recognizer: Recognizer) -> None:
    line = on_margin(sample_line(0, scale=2.0))
    (one,) = recognizer.recognize_document(multipage_tiff([line]))
    assert one == recognizer.recognize(line)
    assert one.page is None and "page" not in one.to_dict()  # the one-page shape, unchanged


def test_recognize_reads_the_first_page_and_says_how_to_read_all(
    recognizer: Recognizer, scan: Path, pages: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        result = recognizer.recognize(scan)
    assert result.text == recognizer.recognize(pages[0]).text and result.page is None
    assert "holds several pages; only the first is read" in caplog.text
    assert "recognize_document" in caplog.text


def test_thumbnails_are_not_pages(pages: list[np.ndarray]) -> None:
    """Scanners may store a reduced copy of a page (NewSubfileType 1): not a page to read."""
    page = pages[1]
    thumbnail = np.ascontiguousarray(page[::4, ::4])
    data = raw_tiff([thumbnail, page, thumbnail, page], subfile_types=[1, 0, 1, 0])
    with Pages(data) as read:
        assert len(read) == 2
        assert all(np.array_equal(read.load(n), page) for n in (1, 2))
    assert np.array_equal(load_image(raw_tiff([thumbnail, page], [1, 0])), page)


def test_each_page_is_turned_upright(pages: list[np.ndarray]) -> None:
    data = multipage_tiff(pages[:2], tiffinfo={274: 6})  # every page: turn 90 degrees clockwise
    with Pages(data) as read:
        for number, page in enumerate(pages[:2], 1):
            assert np.array_equal(read.load(number), np.rot90(page, -1))


def test_a_pillow_image_gives_its_frames_and_is_left_at_its_frame(
    recognizer: Recognizer, scan: Path
) -> None:
    with Image.open(scan) as image:
        image.seek(1)
        read = list(recognizer.recognize_pages(image))
        assert [r.page if isinstance(r, Result) else "error" for r in read] == [1, 2, "error", 4]
        assert image.tell() == 1


def test_pages_and_pixels_are_bounded_before_any_page_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A few kB of TIFF can hold 10,000 pages, or huge blank ones: refused unread."""
    tiny = np.full((8, 8), 255, np.uint8)
    data = raw_tiff([tiny] * 10_000)  # 0.8 MB
    seeks: list[int] = []
    tiff = TiffImagePlugin.TiffImageFile
    seek = tiff.seek

    def counted_seek(self: TiffImagePlugin.TiffImageFile, frame: int) -> None:
        seeks.append(frame)
        seek(self, frame)

    monkeypatch.setattr(tiff, "seek", counted_seek)
    monkeypatch.setattr(tiff, "load", lambda self: pytest.fail("a page was decoded"))
    with pytest.raises(ImageError, match="holds more than 50 pages, the most read at once"):
        Pages(data, max_pages=50)
    assert max(seeks) == 50  # the 51st page's directory, and no further
    monkeypatch.undo()
    assert len(Pages(raw_tiff([tiny] * 50), max_pages=50)) == 50

    # Two blank pages of 2500x2500 pixels in 13 kB.
    blank = np.full((2500, 2500), 255, np.uint8)
    huge = multipage_tiff([blank, blank], mode="1", compression="group4")
    assert len(huge) < 20_000
    with pytest.raises(
        ImageError, match=r"its 2 pages hold 12,500,000 pixels, more than the 10,000,000"
    ):
        Pages(huge, max_pixels=10_000_000)
    with pytest.raises(ImageError, match=r"6,250,000 pixels are more than the 1,000,000"):
        Pages(multipage_tiff([np.full((2500, 2500), 255, np.uint8)]), max_pixels=1_000_000)
    assert len(Pages(huge, max_pixels=12_500_000)) == 2


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, on the cut directory
def test_a_damaged_page_is_named_and_costs_no_other(
    recognizer: Recognizer, pages: list[np.ndarray], tmp_path: Path
) -> None:
    data = bytearray(multipage_tiff(pages[:2], compression="tiff_deflate"))
    with Image.open(io.BytesIO(data)) as image:
        image.seek(1)
        start, size = image.tag_v2[273][0], image.tag_v2[279][0]  # the strip of page 2
    data[start : start + size] = b"\xff" * size
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(data)
    first, second = recognizer.recognize_pages(damaged)
    assert isinstance(first, Result) and first.text == recognizer.recognize(pages[0]).text
    assert isinstance(second, ImageError)
    assert str(second).startswith(f"{damaged} page 2: the image is corrupt")
    with Pages(data) as read, pytest.raises(ImageError, match="has no page 3: it has 2"):
        read.load(3)
    # Cut short in page 2's directory (written after its pixels): page 1 is still read.
    cut = tmp_path / "cut.tif"
    cut.write_bytes(multipage_tiff(pages[:2], compression="tiff_deflate")[:-100])
    first, second = recognizer.recognize_pages(cut)
    assert isinstance(first, Result) and first.text == recognizer.recognize(pages[0]).text
    assert str(second).startswith(f"{cut} page 2: the file is cut short or damaged here")
    assert str(second).endswith("this page and any after it cannot be read")
    cut.write_bytes(data[:100])  # not even the first page's directory
    with pytest.raises(ImageError, match=rf"{cut}: not a readable image"):
        Pages(cut)
    assert page_count(data) == 2 and page_count(pages[0]) == 1


@pytest.mark.parametrize("format", ["GIF", "WEBP", "PNG"])
def test_an_animation_is_read_as_its_first_frame(
    recognizer: Recognizer, format: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = (on_margin(sample_line(i, scale=2.0))[:, :600] for i in (0, 1))
    frames = [Image.fromarray(frame).convert("RGB") for frame in (first, second)]
    out = io.BytesIO()
    frames[0].save(out, format=format, save_all=True, append_images=frames[1:], lossless=True)
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        assert page_count(out.getvalue()) == 1
        assert not caplog.text  # counting its pages reads no frame
        (result,) = recognizer.recognize_document(out.getvalue())
    assert caplog.text.count(f"is an animation ({format}); only its first frame is read") == 1
    assert result.page is None
    assert result.text == recognizer.recognize(first).text != recognizer.recognize(second).text


def pdf_of(pages: list[np.ndarray], dpi: int = 200) -> bytes:
    """A PDF of page images, as scanners write one: each page one image at ``dpi``."""
    images = [Image.fromarray(page) for page in pages]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def test_every_page_of_a_pdf_is_read(
    recognizer: Recognizer, pages: list[np.ndarray], tmp_path: Path
) -> None:
    pytest.importorskip("pypdfium2")
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(pdf_of(pages))
    read = list(recognizer.recognize_pages(scan))
    assert str(read.pop(2)).startswith(f"{scan} page 3: the image is blank")
    alone = [recognizer.recognize(page) for i, page in enumerate(pages) if i != 2]
    for number, result, expected in zip([1, 2, 4], read, alone, strict=True):
        assert isinstance(result, Result) and result.page == number
        assert result.text == expected.text and result.kind == expected.kind
    with Pages(scan) as document:  # drawn at PDF_DPI: the pages' own pixels, give or take one
        drawn = document.load(1)
        assert abs(drawn.shape[1] - pages[0].shape[1]) <= 1
        assert np.abs(drawn[: pages[0].shape[0]].astype(int) - pages[0]).mean() < 2
    assert page_count(scan) == 4
    with pytest.raises(ImageError, match=f"{scan}: holds more than 3 pages"):
        Pages(scan, max_pages=3)
    with pytest.raises(ImageError, match=r"its 4 pages hold [\d,]+ pixels, more than the 100"):
        Pages(scan, max_pixels=100)
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 and nothing else")
    with pytest.raises(ImageError, match=r"bad\.pdf: not a readable PDF: it is damaged or cut"):
        recognizer.recognize_document(tmp_path / "bad.pdf")


def pdf_objects(*objects: bytes, trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (numbered from 1; the first the catalogue) as written by hand,
    with its cross-reference table: for what no library here writes."""
    data = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(data))
        data += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    table += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    start = len(data)
    ends = b"trailer\n<</Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
    return data + table + ends % (len(objects) + 1, trailer, start)


def test_a_pdf_that_cannot_be_read_says_why(pages: list[np.ndarray], tmp_path: Path) -> None:
    """pypdfium2 said "Failed to load document (PDFium: Success)" of a PDF without pages,
    or an earlier file's error (PDFium keeps its last), and of the rest PDFium's words."""
    pytest.importorskip("pypdfium2")
    whole = pdf_of(pages[:1])
    no_pages = b"<</Type /Pages /Kids [] /Count 0>>"
    catalogue = b"<</Type /Catalog /Pages 2 0 R>>"
    locked = pdf_objects(
        catalogue,
        no_pages,
        b"<</Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4>>" % (b"41" * 32, b"42" * 32),
        trailer=b"/Encrypt 3 0 R /ID [<00112233445566778899aabbccddeeff> <00>]",
    )
    files = {  # in this order: a PDF of no pages follows a damaged one
        "cut.pdf": (whole[: len(whole) // 2], "not a readable PDF: it is damaged or cut short"),
        "empty.pdf": (pdf_objects(catalogue, no_pages), "a PDF with no pages: there is nothing"),
        "locked.pdf": (locked, "not a readable PDF: it is locked with a password; open it"),
        "lost page.pdf": (
            pdf_objects(catalogue, b"<</Type /Pages /Kids [] /Count 1>>"),
            "not a readable PDF: its page 1 is damaged",
        ),
    }
    for name, (data, said) in files.items():
        (tmp_path / name).write_bytes(data)
        for source, prefix in ((tmp_path / name, f"{tmp_path / name}: "), (data, "")):
            with pytest.raises(ImageError) as refused:
                load_image(source)
            assert str(refused.value).startswith(prefix + said), name
            with pytest.raises(ImageError) as refused:
                Pages(source)
            assert str(refused.value).startswith(prefix + said), name


def test_a_pdf_header_in_an_image_s_metadata_makes_it_no_pdf(
    pages: list[np.ndarray], tmp_path: Path
) -> None:
    """A PDF's header may lie anywhere in its first 1,024 bytes, as PDF readers allow; but
    a file that begins as an image does is that image, whatever its metadata quotes."""
    line = pages[1]
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "%PDF-1.4")
    png = tmp_path / "note.png"
    Image.fromarray(line).save(png, pnginfo=text)
    tif = tmp_path / "note.tif"
    Image.fromarray(line).save(tif, description="%PDF-1.4")
    for path in (png, tif):
        assert b"%PDF-1.4" in path.read_bytes()[:1024]
        assert np.array_equal(load_image(path), line)
        assert np.array_equal(load_image(path.read_bytes()), line)
        assert page_count(path) == 1
    assert not may_hold_pages(png)  # a TIFF may hold pages: as a TIFF
    pytest.importorskip("pypdfium2")
    late = b"\0" * 100 + pdf_of(pages[:2])  # a PDF after other bytes: a PDF still
    assert may_hold_pages(late) and page_count(late) == 2


def test_every_page_of_a_dcx_fax_is_read(
    recognizer: Recognizer,
    pages: list[np.ndarray],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A DCX (a fax's file: PCX pages one after another) was read as an animation: its
    first page, with a warning that frames are not pages."""
    fax = tmp_path / "fax.dcx"
    fax.write_bytes(dcx(pages))
    assert may_hold_pages(fax) and page_count(fax) == 4
    with Pages(fax) as read:
        assert all(np.array_equal(read.load(n), page) for n, page in enumerate(pages, 1))
    with caplog.at_level(logging.WARNING, logger="text_recognizer"):
        read = list(recognizer.recognize_pages(fax))
    assert not caplog.text
    assert str(read.pop(2)).startswith(f"{fax} page 3: the image is blank")
    alone = [recognizer.recognize(page) for i, page in enumerate(pages) if i != 2]
    for number, result, expected in zip([1, 2, 4], read, alone, strict=True):
        assert isinstance(result, Result) and result.page == number
        assert result.text == expected.text
    # Page 2's offset past the end: page 1 is read, the rest are named lost.
    cut = bytearray(dcx(pages[:2], mode="1"))
    cut[8:12] = (len(cut) + 10).to_bytes(4, "little")
    first, second = recognizer.recognize_pages(bytes(cut))
    assert isinstance(first, Result) and first.page == 1
    assert str(second).startswith("page 2: the file is cut short or damaged here")


def test_a_pdf_without_the_extra_says_how_to_get_it(
    recognizer: Recognizer, pages: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # as if not installed
    message = "a PDF, and reading PDFs needs pypdfium2, which is optional: pip install "
    with pytest.raises(ImageError, match=re.escape(message + "'text-recognizer[pdf]'")):
        recognizer.recognize(pdf_of(pages[:1]))


def test_only_a_tiff_or_a_pdf_may_hold_pages(pages: list[np.ndarray], tmp_path: Path) -> None:
    """Told by their first bytes, so that any other image is opened only to be read."""
    one = Image.fromarray(pages[1])
    written = {}
    for format in ("TIFF", "PNG", "JPEG", "GIF", "PDF"):
        out = io.BytesIO()
        one.save(out, format=format)
        written[format] = out.getvalue()
    written["BigTIFF"] = raw_tiff([pages[1]]).replace(b"II*", b"II+", 1)  # only its head
    for format, data in written.items():
        expected = format in ("TIFF", "BigTIFF", "PDF")
        assert may_hold_pages(data) is expected, format
        (tmp_path / format).write_bytes(data)
        assert may_hold_pages(tmp_path / format) is expected, format
    assert not may_hold_pages(tmp_path / "missing.tif")  # reading it says why
    assert not may_hold_pages(tmp_path)
