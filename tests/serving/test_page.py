"""The web page in a real browser (Playwright driving Debian's chromium) against a real server."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("fastapi")

from tests.pages import compose_page, multipage_tiff  # noqa: E402
from tests.serving.server import Server, post_image, running_server  # noqa: E402
from text_recognizer.page_xml import NAMESPACE as PAGE_NS  # noqa: E402
from text_recognizer.paths import SAMPLES_DIR  # noqa: E402

CHROMIUM = os.environ.get("TEXT_RECOGNIZER_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "no chromium to drive: apt-get install chromium (or set TEXT_RECOGNIZER_CHROMIUM)",
        allow_module_level=True,
    )

LINE = SAMPLES_DIR / "lines" / "line_00.png"
PAGE = SAMPLES_DIR / "paragraphs" / "page_00.png"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("--max-upload-mb", "1") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        # No sandbox: tests run as root in containers, where chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: sync_api.Browser, server: Server) -> Iterator[sync_api.Page]:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # A script error leaves the page half-done (a reading shown, its buttons not), which a
    # test may not look at: none is let by.
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.goto(server.url)
    sync_api.expect(page.locator("#models")).to_contain_text("char, line")
    yield page
    page.close()
    assert not failures
    # The page works offline: everything it asks for comes from the server (or itself).
    assert requested
    assert all(url.startswith((server.url, "blob:", "data:")) for url in requested), requested


def test_an_uploaded_line_is_read(page: sync_api.Page, server: Server) -> None:
    read = page.locator("#read-file")
    sync_api.expect(read).to_be_disabled()
    page.set_input_files("#file", LINE)
    sync_api.expect(page.locator("#preview")).to_be_visible()
    read.click()
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    _, expected = post_image(server.url, LINE.read_bytes())
    assert page.inner_text("#text") == expected["text"]
    words = page.locator("#found polygon.word")  # a line's words outlined too
    sync_api.expect(words).to_have_count(len(expected["words"]))
    assert page.locator("#found polygon.line").count() == 1  # the line's own frame


def test_a_page_lists_its_lines(page: sync_api.Page, server: Server) -> None:
    page.select_option("#kind", "paragraph")
    page.set_input_files("#file", PAGE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as paragraph")
    _, expected = post_image(server.url, PAGE.read_bytes(), kind="paragraph")
    rows = page.locator("#lines tbody tr")
    sync_api.expect(rows).to_have_count(len(expected["lines"]))
    assert rows.nth(0).locator("td").nth(1).inner_text() == expected["lines"][0]["text"]
    # The columns are named, for a screen reader too (each row read as bare numbers).
    headers = page.get_by_role("columnheader")
    assert headers.all_inner_texts() == ["Line", "Text", "Confidence"]
    # Each line outlined where it was found, over the preview, in the image's pixels.
    shapes = page.locator("#found polygon.line")
    sync_api.expect(shapes).to_have_count(len(expected["lines"]))
    assert page.locator("#found line.baseline").count() == len(expected["lines"])
    words = page.locator("#found polygon.word")
    assert words.count() == sum(len(line["words"]) for line in expected["lines"])
    first = expected["lines"][0]["words"][0]
    title = words.nth(0).locator("title").text_content()
    assert title == f"{first['text']} (confidence {first['confidence']:.2f})"
    width, height = expected["size"]
    assert page.get_attribute("#found", "viewBox") == f"0 0 {width} {height}"
    first = expected["lines"][0]["polygon"]
    assert shapes.nth(0).get_attribute("points") == " ".join(f"{x},{y}" for x, y in first)
    preview, overlay = (
        page.locator("#preview").bounding_box(),
        page.locator("#found").bounding_box(),
    )
    assert preview is not None and overlay is not None
    for key in ("x", "y", "width", "height"):
        assert overlay[key] == pytest.approx(preview[key], abs=1)
    # Saved as PAGE XML: the same lines, in a file named after the image.
    with page.expect_download() as download:
        page.click("#save-xml")
    assert download.value.suggested_filename == "page_00.xml"
    saved = ET.parse(download.value.path()).getroot()
    lines = saved.iter(f"{{{PAGE_NS}}}TextLine")
    texts = [line.findtext(f"{{{PAGE_NS}}}TextEquiv/{{{PAGE_NS}}}Unicode") for line in lines]
    assert texts == [line["text"] for line in expected["lines"]]


def test_writing_on_the_pad_is_read(page: sync_api.Page) -> None:
    read = page.locator("#read-drawing")
    sync_api.expect(read).to_be_disabled()
    page.select_option("#kind", "char")
    box = page.locator("#pad").bounding_box()
    assert box is not None
    # An "L": down, then right, in the middle of the pad.
    x, y, size = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15, box["height"] * 0.7
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + size, steps=12)
    page.mouse.move(x + size * 0.55, y + size, steps=8)
    page.mouse.up()
    read.click()
    sync_api.expect(page.locator("#details")).to_contain_text("read as char")
    assert page.inner_text("#text") == "L"
    page.click("#clear")
    sync_api.expect(read).to_be_disabled()


def test_errors_are_shown_and_say_why(page: sync_api.Page) -> None:
    page.set_input_files(
        "#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}
    )
    page.click("#read-file")
    sync_api.expect(page.locator("#error")).to_contain_text(
        "Could not read it: not a readable image"
    )
    page.set_input_files(
        "#file", {"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * 1_200_000}
    )
    page.click("#read-file")
    sync_api.expect(page.locator("#error")).to_contain_text("larger than 1 MB")
    assert page.inner_text("#text") == ""


def test_only_what_the_loaded_models_read_is_offered(browser: sync_api.Browser) -> None:
    with running_server("--model", "char") as server:
        page = browser.new_page()
        page.goto(server.url)
        sync_api.expect(page.locator("#models")).to_contain_text("Models loaded: char.")
        line = page.locator("#kind option[value=line]")
        sync_api.expect(line).to_be_disabled()
        sync_api.expect(line).to_contain_text("no line model loaded")
        sync_api.expect(page.locator("#kind option[value=paragraph]")).to_be_disabled()
        sync_api.expect(page.locator("#kind option[value=char]")).to_be_enabled()
        sync_api.expect(page.locator("#kind option[value=auto]")).to_be_enabled()
        page.close()


def test_doubtful_lines_are_marked(page: sync_api.Page, server: Server, tmp_path: Path) -> None:
    """Lines more likely wrong than right (confidence under one half) stand out, on the
    image and in the table; the others do not."""
    image, _ = compose_page([0, 3, 6], pitch=50, tilt=-4.0)
    cv2.imwrite(str(tmp_path / "tilted.png"), image)
    _, expected = post_image(server.url, (tmp_path / "tilted.png").read_bytes())
    doubtful = [line["confidence"] < 0.5 for line in expected["lines"]]
    assert any(doubtful) and not all(doubtful)
    page.set_input_files("#file", tmp_path / "tilted.png")
    page.click("#read-file")
    rows = page.locator("#lines tbody tr")
    sync_api.expect(rows).to_have_count(len(doubtful))
    shapes = page.locator("#found polygon.line")
    for number, marked in enumerate(doubtful):
        assert ("doubtful" in (rows.nth(number).get_attribute("class") or "")) == marked
        assert ("doubtful" in (shapes.nth(number).get_attribute("class") or "")) == marked
    # Doubtful words are marked in the text itself, not only in a tooltip over the image
    # (which neither a keyboard nor a touch screen can open).
    for number, line in enumerate(expected["lines"]):
        spans = rows.nth(number).locator("td").nth(1).locator("span")
        assert spans.all_inner_texts() == [word["text"] for word in line["words"]]
        for index, word in enumerate(line["words"]):
            span = spans.nth(index)
            assert span.get_attribute("title") == f"confidence {word['confidence']:.2f}"
            assert ("doubtful" in (span.get_attribute("class") or "")) == (word["confidence"] < 0.5)
    assert page.locator("#lines span.doubtful").count() > 0


def test_a_line_is_found_on_the_image_by_keyboard(page: sync_api.Page) -> None:
    page.select_option("#kind", "paragraph")
    page.set_input_files("#file", PAGE)
    page.click("#read-file")
    rows = page.locator("#lines tbody tr")
    sync_api.expect(rows.nth(2)).to_be_visible()
    shapes = page.locator("#found polygon.line")
    page.locator("#copy").focus()
    page.keyboard.press("Shift+Tab")  # back from the first button: the last line's row
    last = rows.count() - 1
    sync_api.expect(rows.nth(last)).to_be_focused()
    sync_api.expect(shapes.nth(last)).to_have_class("line current")
    page.keyboard.press("Shift+Tab")
    sync_api.expect(shapes.nth(last - 1)).to_have_class("line current")
    sync_api.expect(shapes.nth(last)).to_have_class("line")


def test_every_page_of_a_tiff_is_listed(page: sync_api.Page, server: Server) -> None:
    pages = [compose_page([0, 3])[0], np.full((300, 200), 255, np.uint8), compose_page([1])[0]]
    data = multipage_tiff(pages, compression="tiff_deflate")
    _, expected = post_image(server.url, data)
    read = [p for p in expected["pages"] if "error" not in p]
    page.set_input_files("#file", {"name": "scan.tif", "mimeType": "image/tiff", "buffer": data})
    sync_api.expect(page.locator("#shown")).to_be_hidden()  # chromium shows no TIFF: no icon
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("3 pages, 1 not read")
    text = page.inner_text("#text")
    assert text.startswith(f"— page 1 —\n{read[0]['text']}\n\n— page 2 —\n(not read: page 2:")
    assert text.endswith(f"— page 3 —\n{read[1]['text']}")
    rows = page.locator("#lines tbody tr")
    labels = [f"1.{n}" for n in range(1, len(read[0].get("lines", [0])) + 1)] + ["3.1"]
    sync_api.expect(rows).to_have_count(len(labels))
    assert [rows.nth(i).locator("td").nth(0).inner_text() for i in range(len(labels))] == labels
    sync_api.expect(page.locator("#save-xml")).to_be_hidden()  # PAGE XML holds one page


def test_only_the_latest_reading_is_shown(page: sync_api.Page, server: Server) -> None:
    """A slow answer to an earlier request once replaced a newer reading and outlined its
    lines on the newer image; reading twice listed a page's lines twice."""
    held: list[sync_api.Route] = []

    def hold_the_first(route: sync_api.Route) -> None:
        if not held:
            held.append(route)  # answered only after the second reading is shown
        else:
            route.continue_()

    page.route("**/api/recognize", hold_the_first)
    page.select_option("#kind", "paragraph")
    page.set_input_files("#file", PAGE)
    page.click("#read-file")
    page.wait_for_timeout(200)
    page.select_option("#kind", "line")
    page.set_input_files("#file", LINE)
    sync_api.expect(page.locator("#lines tbody tr")).to_have_count(0)  # the page's reading is gone
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    held[0].continue_()
    page.wait_for_timeout(3000)  # long enough for the page's answer to come back
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    assert page.locator("#lines tbody tr").count() == 0
    assert page.locator("#found polygon.line").count() == 1
    _, expected = post_image(server.url, LINE.read_bytes(), kind="line")
    assert page.inner_text("#text") == expected["text"]


def test_the_page_fits_a_small_phone(browser: sync_api.Browser, server: Server) -> None:
    page = browser.new_page(viewport={"width": 320, "height": 640})
    page.goto(server.url)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320
    # The reading, below the image and the pad, is brought into sight when it comes: it
    # came out of sight, under a screen that did not change.
    sync_api.expect(page.locator("#models")).to_contain_text("char, line")
    page.set_input_files("#file", LINE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    sync_api.expect(page.locator("#text")).to_be_in_viewport()
    page.close()


def test_saving_page_xml_says_why_it_failed(page: sync_api.Page) -> None:
    page.set_input_files("#file", LINE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    page.route(
        "**/api/recognize",
        lambda route: route.fulfill(status=422, json={"detail": "the reason the server gave"}),
    )
    page.click("#save-xml")
    sync_api.expect(page.locator("#error")).to_have_text(
        "Could not make the PAGE XML: the reason the server gave"
    )
    page.route("**/api/recognize", lambda route: route.abort())  # and no answer at all
    page.click("#save-xml")
    sync_api.expect(page.locator("#error")).to_contain_text("The server did not answer")


# A file dropped on the page, or pasted, as the browser hands it to the page's script.
GIVE_FILE = """([event, bytes, name = "given.png", type = "image/png"]) => {
  const file = new File([new Uint8Array(bytes)], name, {type});
  const data = new DataTransfer();
  data.items.add(file);
  document.dispatchEvent(event === "drop"
    ? new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true})
    : new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
}"""


@pytest.mark.parametrize("event", ["drop", "paste"])
def test_a_dropped_or_pasted_image_replaces_the_one_chosen(
    page: sync_api.Page, server: Server, event: str
) -> None:
    """The file box went on naming the image chosen before, and choosing that one again
    changed nothing (no change event): the dropped one stayed, and was read."""
    page.set_input_files("#file", LINE)
    other = (SAMPLES_DIR / "lines" / "line_01.png").read_bytes()
    page.evaluate(GIVE_FILE, [event, list(other)])
    assert page.evaluate("document.getElementById('file').files.length") == 0
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    _, expected = post_image(server.url, other)
    assert page.inner_text("#text") == expected["text"]


def test_a_double_click_reads_once(page: sync_api.Page, server: Server) -> None:
    """Each click sent the image: read twice, and with the service busy the second was
    refused (503), its refusal shown over the first's reading."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    page.set_input_files("#file", LINE)
    page.dblclick("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    sync_api.expect(page.locator("#read-file")).to_be_enabled()  # again, once answered
    assert [url for url in sent if "/api/" in url] == [f"{server.url}/api/recognize"]


# Keeps each image the page sends (Playwright shows no body that holds a file).
KEEP_SENT = """
window.sent = [];
const fetched = window.fetch;
window.fetch = (url, options) => {
  if (options && options.body instanceof FormData) window.sent.push(options.body.get("image"));
  return fetched(url, options);
};
"""


def sent_image(page: sync_api.Page) -> bytes:
    """The last image the page sent."""
    script = "async () => Array.from(new Uint8Array(await window.sent.at(-1).arrayBuffer()))"
    return bytes(page.evaluate(script))


def test_an_image_over_the_services_pixel_limit_is_shrunk_before_it_is_sent(
    browser: sync_api.Browser,
) -> None:
    """A phone's photo of more pixels than the service reads was sent, and refused. The
    page learns the limit from /api/health (here --max-image-megapixels 0.2), shrinks an
    image over it to just under it, keeping its shape, and says so; a TIFF the browser
    cannot draw is sent as it is, and one under the limit as it was."""
    import io

    from PIL import Image

    limit = 200_000
    with running_server("--max-image-megapixels", str(limit / 1e6)) as server:
        page = browser.new_page()
        page.add_init_script(KEEP_SENT)
        page.goto(server.url)
        sync_api.expect(page.locator("#models")).to_contain_text("char, line")
        page.select_option("#kind", "paragraph")
        page.set_input_files("#file", PAGE)  # 812x488: 396,256 pixels
        page.click("#read-file")
        sync_api.expect(page.locator("#details")).to_contain_text("read as paragraph")
        shrunk = Image.open(io.BytesIO(sent_image(page)))
        width, height = shrunk.size
        assert shrunk.format == "JPEG" and 0.99 * limit < width * height <= limit
        assert width / height == pytest.approx(812 / 488, rel=0.01)
        assert page.inner_text("#note") == (
            "The image is 812×488 pixels (0.4 million), more than the 0.2 million this "
            f"service reads in one image: it was shrunk to {width}×{height} before it was sent."
        )
        assert page.get_attribute("#found", "viewBox") == f"0 0 {width} {height}"
        _, expected = post_image(server.url, sent_image(page), kind="paragraph")
        assert page.inner_text("#text") == expected["text"]
        # A TIFF (chromium draws none) goes as it is, and the service says why it is refused.
        tiff = multipage_tiff([np.full((500, 500), 255, np.uint8)])
        page.set_input_files("#file", {"name": "s.tif", "mimeType": "image/tiff", "buffer": tiff})
        page.click("#read-file")
        sync_api.expect(page.locator("#error")).to_contain_text("larger than 200,000 pixels")
        assert sent_image(page) == tiff and page.inner_text("#note") == ""
        page.select_option("#kind", "line")
        page.set_input_files("#file", LINE)  # 397x32: under the limit
        page.click("#read-file")
        sync_api.expect(page.locator("#details")).to_contain_text("read as line")
        assert sent_image(page) == LINE.read_bytes() and page.inner_text("#note") == ""
        page.close()


@pytest.mark.slow
def test_a_48_megapixel_photo_is_shrunk_to_the_default_limit_and_read(
    browser: sync_api.Browser, tmp_path: Path
) -> None:
    """A phone's 48-megapixel photo (8000x6000) against the default limit (40 million)."""
    import io
    import time

    from PIL import Image

    photo = np.full((6000, 8000), 235, np.uint8)  # grey paper
    lines = cv2.resize(cv2.imread(str(PAGE), cv2.IMREAD_GRAYSCALE), None, fx=4, fy=4)
    photo[1000 : 1000 + lines.shape[0], 1000 : 1000 + lines.shape[1]] = lines
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    with running_server() as server:
        page = browser.new_page()
        page.add_init_script(KEEP_SENT)
        page.goto(server.url)
        sync_api.expect(page.locator("#models")).to_contain_text("char, line")
        page.set_input_files("#file", path)
        sync_api.expect(page.locator("#preview")).to_be_visible()
        start = time.perf_counter()
        page.click("#read-file")
        sync_api.expect(page.locator("#note")).to_contain_text("was shrunk to", timeout=60_000)
        print(f"shrunk in the page in {time.perf_counter() - start:.2f} s")
        sync_api.expect(page.locator("#details")).to_contain_text("read as", timeout=120_000)
        width, height = Image.open(io.BytesIO(sent_image(page))).size
        assert 39_600_000 < width * height <= 40_000_000
        assert page.inner_text("#note").startswith(
            "The image is 8000×6000 pixels (48.0 million), more than the 40.0 million"
        )
        page.close()


def hold_readings(page: sync_api.Page) -> list[sync_api.Route]:
    """Requests to read an image are held unanswered, as by a slow server: the routes."""
    held: list[sync_api.Route] = []
    page.route("**/api/recognize", lambda route: held.append(route))
    return held


def test_the_keyboard_keeps_its_place_while_an_image_is_read(
    page: sync_api.Page, server: Server
) -> None:
    """The Read button, disabled while its answer came, lost the focus to the page's top:
    a keyboard's user pressing Enter on it had to Tab through the page again."""
    held = hold_readings(page)
    page.set_input_files("#file", LINE)
    page.focus("#read-file")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#cancel")).to_be_focused()  # Enter here would cancel
    page.wait_for_timeout(200)
    held[0].continue_()
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")
    sync_api.expect(page.locator("#cancel")).to_be_hidden()
    sync_api.expect(page.locator("#read-file")).to_be_focused()


def test_a_slow_reading_can_be_cancelled(page: sync_api.Page) -> None:
    """A slow or stuck server showed "reading…" for ever, with nothing to press."""
    held = hold_readings(page)
    cancel = page.locator("#cancel")
    sync_api.expect(cancel).to_be_hidden()
    page.set_input_files("#file", LINE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_have_text("reading…")
    sync_api.expect(cancel).to_be_visible()
    assert len(held) == 1
    cancel.click()
    sync_api.expect(page.locator("#details")).to_have_text("Cancelled: nothing was read.")
    sync_api.expect(cancel).to_be_hidden()
    sync_api.expect(page.locator("#read-file")).to_be_enabled()
    assert page.inner_text("#error") == "" and page.inner_text("#text") == ""
    page.unroute("**/api/recognize")
    page.click("#read-file")  # and read once asked again
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")


def test_a_refusal_that_gives_no_reason_is_named_by_its_status(page: sync_api.Page) -> None:
    """A proxy's error page (HTML, no detail) was shown as its status text alone, which
    HTTP/2 leaves empty: "Could not read it: " and nothing more."""
    page.route(
        "**/api/recognize",
        lambda route: route.fulfill(
            status=502, body="<h1>Bad Gateway</h1>", content_type="text/html"
        ),
    )
    page.set_input_files("#file", LINE)
    page.click("#read-file")
    sync_api.expect(page.locator("#error")).to_contain_text(
        "Could not read it: the server answered 502"
    )
    sync_api.expect(page.locator("#error")).to_contain_text("and gave no reason")


def test_of_several_files_dropped_the_page_says_which_is_read(page: sync_api.Page) -> None:
    """Dropping three files chose the first, silently: the others seemed read too."""
    page.evaluate(
        """(bytes) => {
      const data = new DataTransfer();
      for (const name of ["first.png", "second.png", "third.png"])
        data.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
      document.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
    }""",
        list(LINE.read_bytes()),
    )
    sync_api.expect(page.locator("#note")).to_have_text(
        "3 files were dropped, and one is read at a time: first.png is chosen; drop or "
        "choose the others after it."
    )
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as line")


def test_choosing_another_image_gives_up_the_request_under_way(page: sync_api.Page) -> None:
    """Its answer is dropped unread; the request went on holding a place in the service's
    line (or a worker) all the same."""
    held = hold_readings(page)
    page.set_input_files("#file", LINE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_have_text("reading…")
    assert len(held) == 1
    with page.expect_event("requestfailed", timeout=10_000) as failed:
        page.set_input_files("#file", PAGE)
    assert failed.value.url.endswith("/api/recognize")
    assert "ABORTED" in (failed.value.failure or "")


def test_an_image_over_the_upload_limit_is_sent_as_a_jpeg(
    page: sync_api.Page, server: Server, tmp_path: Path
) -> None:
    """A BMP (or an uncompressed PNG scan) of more bytes than the service takes, though of
    few pixels, was sent as it was and refused (413): it goes as a JPEG, and the page says
    so. (The server here takes 1 MB; the sample page as a BMP is 1.2 MB.)"""
    from PIL import Image

    bmp = tmp_path / "page_00.bmp"
    Image.open(PAGE).convert("RGB").save(bmp)
    assert bmp.stat().st_size > 2**20
    page.add_init_script(KEEP_SENT)
    page.reload()
    sync_api.expect(page.locator("#models")).to_contain_text("char, line")
    page.select_option("#kind", "paragraph")
    page.set_input_files("#file", bmp)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as paragraph")
    sent = sent_image(page)
    assert sent[:2] == b"\xff\xd8" and len(sent) < 2**20  # a JPEG, under the limit
    assert page.inner_text("#note") == (
        "The file is 1.1 MB, more than the 1.0 MB this service takes: it was sent as a "
        f"JPEG of {len(sent) / 2**20:.1f} MB."
    )
    _, expected = post_image(server.url, sent, kind="paragraph")
    assert page.inner_text("#text") == expected["text"]


# The contrast of an element's text against the background it is drawn on, as WCAG 2
# counts it (4.5 the least for body text).
CONTRAST = """(element) => {
  const rgb = (color) => color.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  let under = element;
  const clear = (node) => rgb(getComputedStyle(node).backgroundColor)[3] === 0;
  while (under && clear(under)) under = under.parentElement;
  const back = luminance(rgb(getComputedStyle(under || document.documentElement).backgroundColor));
  const fore = luminance(rgb(getComputedStyle(element).color));
  return [(Math.max(back, fore) + 0.05) / (Math.min(back, fore) + 0.05), back];
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_follows_the_systems_dark_mode_and_stays_legible(
    browser: sync_api.Browser, server: Server, scheme: str
) -> None:
    """In dark mode the page stayed a bright sheet; now it is dark, its text as legible as
    in light mode, and the pad white paper still (the models read dark ink on it)."""
    page = browser.new_page(color_scheme=scheme)
    page.goto(server.url)
    sync_api.expect(page.locator("#models")).to_contain_text("char, line")
    page.evaluate("""() => {
      document.getElementById("details").textContent = "read as line";
      document.getElementById("error").textContent = "Could not read it";
      document.getElementById("note").textContent = "a note";
    }""")
    for selector in (
        "h1",
        ".hint",
        "label[for=kind]",
        "h2",
        "#details",
        "#error",
        "#note",
        "#clear",
    ):
        ratio, background = page.locator(selector).first.evaluate(CONTRAST)
        assert ratio >= 4.5, (selector, ratio)
    assert (background < 0.05) == (scheme == "dark")  # the card the text is on
    pad = page.evaluate(
        "Array.from(document.getElementById('pad').getContext('2d').getImageData(5, 5, 1, 1).data)"
    )
    assert pad == [255, 255, 255, 255]
    page.close()


def test_a_drop_or_paste_that_holds_no_file_says_so(page: sync_api.Page) -> None:
    """Text pasted, or an image dragged from another page (which comes as its link), did
    nothing at all: the user could not tell why."""
    page.evaluate("""() => {
      const data = new DataTransfer();
      data.setData("text/uri-list", "https://example.org/scan.png");
      document.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
    }""")
    sync_api.expect(page.locator("#error")).to_have_text(
        "Nothing to read in what was dropped: it holds no file (a link or text): save the "
        "image, then choose or drop the file."
    )
    page.evaluate("""() => {
      const data = new DataTransfer();
      data.setData("text/plain", "some words");
      document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
    }""")
    sync_api.expect(page.locator("#error")).to_have_text(
        "Nothing to read in what was pasted: it holds no image (text only): copy an image, "
        "or choose a file."
    )
    # A PDF copied in a file manager is taken (an image was looked for alone).
    page.evaluate(GIVE_FILE, ["paste", list(b"%PDF"), "scan.pdf", "application/pdf"])
    sync_api.expect(page.locator("#read-file")).to_be_enabled()
    assert page.inner_text("#error") == ""


def test_the_text_read_is_copied_with_a_button(browser: sync_api.Browser, server: Server) -> None:
    """Copying the text out meant selecting it by hand, fiddly on a phone."""
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server.url)
    sync_api.expect(page.locator("#models")).to_contain_text("char, line")
    copy = page.locator("#copy")
    sync_api.expect(copy).to_be_hidden()
    page.select_option("#kind", "paragraph")
    page.set_input_files("#file", PAGE)
    page.click("#read-file")
    sync_api.expect(page.locator("#details")).to_contain_text("read as paragraph")
    copy.click()
    sync_api.expect(copy).to_have_text("Copied")
    _, expected = post_image(server.url, PAGE.read_bytes(), kind="paragraph")
    assert page.evaluate("navigator.clipboard.readText()") == expected["text"]
    page.set_input_files("#file", LINE)  # another image: nothing read of it to copy yet
    sync_api.expect(copy).to_be_hidden()
    context.close()
