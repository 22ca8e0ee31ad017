"""The HTTP API in process (TestClient): what goes in, what comes out, what is refused."""

from __future__ import annotations

import io
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from tests.inference_only import run_without_training
from tests.pages import compose_page, multipage_tiff, on_margin, raw_tiff, sample_line
from tests.serving.server import multipart
from text_recognizer.page_xml import NAMESPACE as PAGE_NS
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer, Result
from text_recognizer.serving.app import create_app

LINE = SAMPLES_DIR / "lines" / "line_00.png"
PAGE = SAMPLES_DIR / "paragraphs" / "page_00.png"
LIMIT = 1_000_000  # bytes; the sample page is 239 kB
DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


@pytest.fixture
def client(recognizer: Recognizer) -> Iterator[TestClient]:
    with TestClient(create_app(recognizer, max_upload_bytes=LIMIT)) as client:
        yield client


def post(client: TestClient, data: bytes, **form: str) -> tuple[int, dict]:
    response = client.post("/api/recognize", files={"image": ("x.png", data)}, data=form)
    return response.status_code, response.json()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.filterwarnings("error")  # FastAPI warns of an operation listed twice
def test_page_and_health(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'id="pad"' in page.text and 'id="file"' in page.text
    assert client.get("/api/health").json() == {
        "status": "ok",
        "kinds": ["char", "line"],
        "max_upload_bytes": LIMIT,
        "max_image_pixels": 40_000_000,
        "workers": 1,
        "busy": 0,
        "queue": 16,
        "waiting": 0,
        "uploading": 0,
    }
    assert "/api/recognize" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 404  # FastAPI's page would load a CDN's scripts


def test_a_line_reads_as_the_python_api_reads_it(
    client: TestClient, recognizer: Recognizer
) -> None:
    status, body = post(client, LINE.read_bytes())
    assert status == 200
    expected = json.loads(json.dumps(recognizer.recognize(LINE).to_dict()))  # tuples: lists
    assert body.pop("milliseconds") > 0
    assert body.pop("confidence") == pytest.approx(expected.pop("confidence"))
    assert body == expected
    assert body["kind"] == "line" and body["text"]


def test_a_page_gives_its_lines_with_boxes(client: TestClient, recognizer: Recognizer) -> None:
    status, body = post(client, PAGE.read_bytes(), kind="paragraph")
    assert status == 200
    assert body["kind"] == "paragraph"
    expected = recognizer.recognize(PAGE, kind="paragraph")
    assert [line["text"] for line in body["lines"]] == [line.text for line in expected.lines]
    assert all(len(line["box"]) == 4 for line in body["lines"])


def test_a_page_as_page_xml(client: TestClient, recognizer: Recognizer) -> None:
    files = {"image": ("scans/letter 1.png", PAGE.read_bytes())}
    response = client.post("/api/recognize", files=files, data={"format": "page-xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    expected = recognizer.recognize(PAGE)
    root = ET.fromstring(response.content)
    page = root.find(f"{{{PAGE_NS}}}Page")
    assert page is not None and page.attrib["imageFilename"] == "letter 1.png"  # no folders
    lines = root.iter(f"{{{PAGE_NS}}}TextLine")
    read = [line.findtext(f"{{{PAGE_NS}}}TextEquiv/{{{PAGE_NS}}}Unicode") for line in lines]
    assert read == [line.text for line in expected.lines]
    status, body = post(client, PAGE.read_bytes(), format="xml")
    assert status == 422 and "'json' or 'page-xml'" in body["detail"][0]["msg"]


def test_a_character_when_asked(client: TestClient) -> None:
    status, body = post(client, (SAMPLES_DIR / "chars" / "char_00.png").read_bytes(), kind="char")
    assert status == 200
    assert body["kind"] == "char" and len(body["text"]) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"GIF89a not an image", "not a readable image"),
        # A damaged PDF, or any PDF where the pdf extra is not installed: says which.
        (b"%PDF-1.4 not a document", "PDF"),
        (png(Image.new("L", (300, 60), 255)), "blank"),
        (png(Image.new("1", (20_000, 10_000))), "larger than 40,000,000 pixels"),
        # Past Pillow's own limit, at which it warns (in the service's log): ours decides.
        (png(Image.new("1", (10_000, 10_000))), "10000x10000 pixels (100,000,000): larger"),
    ],
    ids=["empty", "not-an-image", "not-a-pdf", "blank", "too-many-pixels", "past-pillows"],
)
def test_unreadable_images_get_422_saying_why(
    client: TestClient, data: bytes, message: str, recwarn: pytest.WarningsRecorder
) -> None:
    status, body = post(client, data)
    assert status == 422
    assert message in body["detail"]
    assert not [w for w in recwarn if w.category is Image.DecompressionBombWarning]


def test_parameters_in_the_url_are_refused_not_ignored(client: TestClient) -> None:
    response = client.post(
        "/api/recognize?format=page-xml", files={"image": ("x.png", LINE.read_bytes())}
    )
    assert response.status_code == 422
    assert "send kind and format as form fields" in response.json()["detail"]


def test_decoding_options_sent_with_a_request_are_refused_not_ignored(client: TestClient) -> None:
    """`-F beam=10` was silently ignored (the beam width is the server's), and `?beam=10`
    was told to be sent as a form field, where it would have been ignored."""
    told = (
        "a request sends image, kind and format, as form fields; decoding options (beam, "
        "lm, ...) are the server's, set as it starts (text-recognizer serve --beam 10)"
    )
    files = {"image": ("x.png", LINE.read_bytes())}
    response = client.post("/api/recognize?beam=10", files=files)
    assert response.status_code == 422
    assert response.json()["detail"] == f"the URL's parameters (beam) are not read: {told}"
    response = client.post("/api/recognize", files=files, data={"beam": "10", "kind": "line"})
    assert response.status_code == 422
    assert response.json()["detail"] == f"the form's field beam is not read: {told}"
    response = client.post("/api/recognize", files=files, data={"beam": "10", "lm": "default"})
    assert response.json()["detail"].startswith("the form's fields beam, lm are not read: ")


def test_a_truncated_image_gets_422(client: TestClient) -> None:
    status, body = post(client, LINE.read_bytes()[:300])
    assert status == 422
    assert "corrupt, truncated" in body["detail"]


def test_bad_form_gets_422(client: TestClient) -> None:
    status, body = post(client, LINE.read_bytes(), kind="word")
    assert status == 422
    assert "'auto', 'char', 'line' or 'paragraph'" in body["detail"][0]["msg"]
    missing = client.post("/api/recognize", data={"kind": "line"}, files={"other": b""})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "image"]


def test_an_upload_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    status, body = post(client, b"\0" * 1_100_000)
    assert status == 413
    assert body["detail"] == "the upload is larger than 0.954 MB; send a smaller image"


def test_metrics_count_images_by_kind_and_outcome(client: TestClient) -> None:
    post(client, LINE.read_bytes())
    post(client, LINE.read_bytes())
    post(client, b"junk")
    post(client, b"\0" * 1_100_000)
    text = client.get("/metrics").text
    assert 'text_recognizer_images_total{kind="line",outcome="ok"} 2.0' in text
    assert 'text_recognizer_images_total{kind="auto",outcome="error"} 1.0' in text
    assert "text_recognizer_uploads_too_large_total 1.0" in text
    assert "text_recognizer_recognize_seconds_count 2.0" in text
    assert 'text_recognizer_requests_unread_total{reason="queue_full"} 0.0' in text
    # Junk is refused as its pages are counted, before it takes a place in the line.
    assert "text_recognizer_wait_seconds_count 2.0" in text
    assert "text_recognizer_workers_busy 0.0" in text


def test_the_service_needs_none_of_the_training_dependencies() -> None:
    done = run_without_training(
        "from fastapi.testclient import TestClient\n"
        "from text_recognizer.paths import SAMPLES_DIR\n"
        "from text_recognizer.recognizer import Recognizer\n"
        "from text_recognizer.serving.app import create_app\n"
        "client = TestClient(create_app(Recognizer.from_pretrained()))\n"
        "image = (SAMPLES_DIR / 'lines/line_00.png').read_bytes()\n"
        "print(client.post('/api/recognize', files={'image': ('x.png', image)}).json()['text'])\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in TRAINING_MODULES))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["the heart, he would have cared", "[]"]


@pytest.fixture(scope="module")
def scan_pages() -> list[np.ndarray]:
    """A paragraph, a line and a blank page (a duplex scan's empty back)."""
    return [
        compose_page([0, 1, 2])[0],
        on_margin(sample_line(5, scale=2.0)),
        np.full((300, 200), 255, np.uint8),
    ]


def test_every_page_of_a_tiff_is_answered_with_its_number(
    client: TestClient, recognizer: Recognizer, scan_pages: list[np.ndarray]
) -> None:
    data = multipage_tiff(scan_pages, compression="tiff_deflate")
    response = client.post("/api/recognize", files={"image": ("scan.tif", data)})
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["milliseconds", "pages"] and body["milliseconds"] > 0
    expected = [
        json.loads(json.dumps(r.to_dict() if isinstance(r, Result) else str(r)))
        for r in recognizer.recognize_pages(data)
    ]
    for page, want in zip(body["pages"][:2], expected[:2], strict=True):
        assert page.pop("confidence") == pytest.approx(want.pop("confidence"))
        assert page == want
    assert [page["page"] for page in body["pages"]] == [1, 2, 3]
    assert [page.get("kind") for page in body["pages"]] == ["paragraph", "line", None]
    assert body["pages"][2] == {"page": 3, "error": expected[2]}
    assert expected[2].startswith("page 3: the image is blank")
    text = client.get("/metrics").text  # each page counts as an image
    assert 'text_recognizer_images_total{kind="paragraph",outcome="ok"} 1.0' in text
    assert 'text_recognizer_images_total{kind="auto",outcome="error"} 1.0' in text
    # A TIFF of one page answers as any image does; PAGE XML describes one page only.
    status, one = post(client, multipage_tiff(scan_pages[1:2]))
    assert status == 200 and one["text"] == body["pages"][1]["text"] and "page" not in one
    status, refused = post(client, data, format="page-xml")
    assert status == 422
    assert refused["detail"] == (
        "the file holds 3 pages, and a PAGE XML document describes one: ask for "
        "format=json, or send each page as an image of its own"
    )


def test_pages_and_pixels_are_bounded_before_any_page_is_read(
    recognizer: Recognizer, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TIFF of 10,000 tiny pages (0.8 MB), or of a few huge blank ones (kBs), is
    refused at once, without reading a page."""
    monkeypatch.setattr(recognizer, "recognize_batch", lambda *_: pytest.fail("a page was read"))
    tiny = np.full((8, 8), 255, np.uint8)
    start = time.perf_counter()
    status, body = post(client, raw_tiff([tiny] * 10_000))
    assert status == 422 and time.perf_counter() - start < 5  # ~0.1 s; 10,000 pages: minutes
    assert body["detail"] == (
        "holds more than 50 pages, the most read at once: split it into smaller files"
    )
    blank = Image.new("1", (5000, 5000), 1)
    out = io.BytesIO()
    blank.save(out, format="TIFF", save_all=True, append_images=[blank] * 8, compression="group4")
    huge = out.getvalue()
    assert len(huge) < 50_000
    status, body = post(client, huge)
    assert status == 422
    assert body["detail"].startswith(
        "its 9 pages hold 225,000,000 pixels, more than the 200,000,000 read at once"
    )
    with TestClient(create_app(recognizer, max_pages=2, max_pixels=100)) as small:
        status, body = post(small, raw_tiff([tiny] * 3))
        assert status == 422 and body["detail"].startswith("holds more than 2 pages")
        status, body = post(small, raw_tiff([tiny] * 2))
        assert status == 422
        assert body["detail"].startswith("its 2 pages hold 128 pixels, more than the 100 read")


def test_a_pdf_of_scanned_pages_is_answered_page_by_page(
    client: TestClient, scan_pages: list[np.ndarray]
) -> None:
    pytest.importorskip("pypdfium2")
    images = [Image.fromarray(page) for page in scan_pages[:2]]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=200)
    response = client.post("/api/recognize", files={"image": ("scan.pdf", out.getvalue())})
    assert response.status_code == 200
    pages = response.json()["pages"]
    assert [(page["page"], page["kind"]) for page in pages] == [(1, "paragraph"), (2, "line")]
    status, body = post(client, out.getvalue(), format="page-xml")
    assert status == 422 and body["detail"].startswith("the file holds 2 pages")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (LINE.read_bytes(), "image/png"),  # the image as the whole body
        (b'{"image": "iVBORw0KGgo="}', "application/json"),
        (b"image=line.png", "application/x-www-form-urlencoded"),
        (b"", None),
    ],
    ids=["raw-image", "json", "urlencoded", "no-body"],
)
def test_a_body_that_is_no_form_gets_415_saying_how_to_send_the_image(
    client: TestClient, content: bytes, content_type: str | None
) -> None:
    """It got 422 'Field required' (or 'Expected UploadFile'), as if the image were
    missing, though it was sent: only not as a form."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/recognize", content=content, headers=headers)
    assert response.status_code == 415
    sent = content_type or "of no declared type"
    assert response.json()["detail"] == (
        f"the body is {sent}, not a multipart/form-data form: send the image as the "
        "form's file field image (curl -F image=@line.png)"
    )


def test_an_image_field_holding_text_or_missing_says_how_to_send_the_file(
    client: TestClient,
) -> None:
    """`curl -F image=line.png` (no @) sends the file's name as text: it got 'Value error,
    Expected UploadFile, received: <class 'str'>'."""
    body, content_type = multipart({"image": "scan 1.png"})  # as curl sends it
    headers = {"Content-Type": content_type}
    response = client.post("/api/recognize", content=body, headers=headers)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "image"]
    assert error["msg"] == (
        "the field image holds text ('scan 1.png'), not a file: send the file itself "
        "(curl -F 'image=@scan 1.png', with the @)"
    )
    response = client.post("/api/recognize", files={"file": ("line.png", LINE.read_bytes())})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "image"]
    assert error["msg"] == (
        "the form has no file in the field image (its files: file): send the image there "
        "(curl -F image=@line.png)"
    )


def test_a_form_field_sent_twice_is_refused_not_half_read(client: TestClient) -> None:
    """Of two files in the field image, only the last was read (and answered 200)."""
    line, other = LINE.read_bytes(), (SAMPLES_DIR / "lines" / "line_01.png").read_bytes()
    files = [("image", ("a.png", line)), ("image", ("b.png", other))]
    response = client.post("/api/recognize", files=files)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the form holds 2 values in the field image, and one request reads one image: "
        "send each in a request of its own (a multi-page TIFF or PDF is read page by page)"
    )
    files = [("image", ("a.png", line))]
    response = client.post("/api/recognize", files=files, data={"kind": ["line", "char"]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("the form holds 2 values in the field kind")


def test_a_malformed_multipart_body_gets_400(client: TestClient) -> None:
    headers = {"Content-Type": "multipart/form-data"}  # and no boundary to split it by
    response = client.post("/api/recognize", content=b"--x\r\n", headers=headers)
    assert response.status_code == 400
    assert "boundary" in response.json()["detail"]


def test_the_pixel_limit_is_the_recognizers_and_health_tells_it(
    recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --max-image-megapixels``: the service reads (and refuses) an image, and each
    page of a TIFF, by its recognizers' ``max_image_pixels``, and /api/health says it, so
    that the page can shrink a photo to it; a file's pages together may hold at least as
    much by default."""
    small = Recognizer.from_pretrained(max_image_pixels=50_000)
    line = on_margin(sample_line(0, scale=2.0))  # 76,516 pixels
    with TestClient(create_app(small)) as client:
        assert client.get("/api/health").json()["max_image_pixels"] == 50_000
        status, body = post(client, png(Image.fromarray(line)))
        assert status == 422
        assert body["detail"].startswith(
            "the image is 814x94 pixels (76,516): larger than 50,000 pixels, the most read in "
            "one image; crop it or scale it down first, or raise the limit: "
            "--max-image-megapixels"
        )
        status, body = post(client, multipage_tiff([line, line[:, :400]]))
        assert status == 200
        assert body["pages"][0]["error"].startswith("page 1: the image is 814x94 pixels")
        assert body["pages"][1]["kind"] == "line"
    raised = Recognizer.from_pretrained(max_image_pixels=80_000)
    with TestClient(create_app(raised)) as client:
        status, body = post(client, png(Image.fromarray(line)))
        assert status == 200 and body["text"] == recognizer.recognize(line).text
    # The pages' total follows a limit raised past its default; one set lower decides.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000_000)
    huge = Recognizer.from_pretrained(max_image_pixels=300_000_000)
    with TestClient(create_app(huge)) as client:
        assert client.get("/api/health").json()["max_image_pixels"] == 300_000_000
    with TestClient(create_app(huge, max_pixels=1_000_000)) as client:
        assert client.get("/api/health").json()["max_image_pixels"] == 1_000_000
    with pytest.raises(ValueError, match="different most pixels"):
        create_app([small, raised])


def test_the_schema_lists_every_answer_as_it_is_sent(client: TestClient) -> None:
    """/openapi.json listed only 200 and FastAPI's 422 of a list of errors: a client made
    from it failed on the 422 an unreadable image gets (its detail a sentence), and knew
    nothing of 400, 408, 413, 415, 503 (nor Retry-After) or of PAGE XML."""
    schema = client.get("/openapi.json").json()
    answers = schema["paths"]["/api/recognize"]["post"]["responses"]
    documented = re.findall(r"^\| (\d{3}) \|", (DOCS / "serving.md").read_text(), re.MULTILINE)
    assert sorted(answers) == documented
    assert set(answers["200"]["content"]) == {"application/json", "application/xml"}
    assert answers["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    refusal = schema["components"]["schemas"]["Refusal"]
    allowed = {each["type"] for each in refusal["properties"]["detail"]["anyOf"]}
    assert allowed == {"string", "array"}
    for status in documented[1:]:
        content = answers[status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Refusal"}
    # As sent: a sentence where the image is unreadable, a list where the form is wrong.
    status, body = post(client, b"not an image")
    assert status == 422 and isinstance(body["detail"], str)
    status, body = post(client, LINE.read_bytes(), kind="word")
    assert status == 422 and isinstance(body["detail"], list)


def test_a_wrong_path_or_method_says_what_the_service_answers(client: TestClient) -> None:
    """A mistyped path got {"detail": "Not Found"}, the API opened in a browser
    "Method Not Allowed", and POST /api/health an Allow header of HEAD alone."""
    response = client.get("/recognize")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "no such path: /recognize; the service answers GET /openapi.json, GET /, "
        "GET /api/health, POST /api/recognize, GET /metrics"
    )
    response = client.get("/api/recognize")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["detail"] == (
        "/api/recognize does not answer GET, only POST (send an image as a form: "
        "curl -F image=@line.png http://testserver/api/recognize)"
    )
    response = client.post("/api/health")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    assert response.json()["detail"] == "/api/health does not answer POST, only GET, HEAD"
    # The service's own refusals are as they were.
    status, body = post(client, b"not an image")
    assert status == 422 and body["detail"].startswith("not a readable image")


def test_a_form_cut_short_or_broken_gets_400_saying_so(client: TestClient) -> None:
    """A form cut short (its file's end and closing boundary never sent) was told 422 "the
    form has no file in the field image", though it had sent one; a body whose boundary
    was wrong got "Invalid multipart data." alone."""
    body, content_type = multipart({"image": LINE.read_bytes()})
    headers = {"Content-Type": content_type}
    response = client.post("/api/recognize", content=body[:500], headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the form is cut short: 500 bytes arrived, and its closing boundary never came; "
        "send it whole (curl -F image=@line.png)"
    )
    wrong = {"Content-Type": "multipart/form-data; boundary=another"}
    response = client.post("/api/recognize", content=body, headers=wrong)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the body is no well-formed multipart/form-data form (Invalid multipart data): send "
        "the image as the form's file field image (curl -F image=@line.png)"
    )
    # A whole form without the file still says that the file is missing.
    form, content_type = multipart({"kind": "line"})
    response = client.post("/api/recognize", content=form, headers={"Content-Type": content_type})
    assert response.status_code == 422
    assert "the form has no file in the field image" in response.json()["detail"][0]["msg"]


def test_an_image_sent_without_a_file_name_is_told_so_and_not_echoed(client: TestClient) -> None:
    """A file part named by ``filename*=`` alone (RFC 5987; no ``filename=``) is taken as
    text: its 422 called the PNG "text" and echoed all of it back (twice its size)."""
    data = PAGE.read_bytes()
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename*=UTF-8''%C3%A9.png"
        b"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    response = client.post("/api/recognize", content=body, headers=headers)
    assert response.status_code == 422
    assert len(response.content) < 2000
    (error,) = response.json()["detail"]
    assert error["msg"].startswith("the field image holds data ('\\x89PNG\\r\\n\\x1a\\n")
    assert error["msg"].endswith(
        "with no file name, so it was taken as text: send it as a file, its part's "
        'Content-Disposition naming a filename (filename="line.png"; filename*= alone is not '
        "one), as curl -F image=@line.png does"
    )
    status, body = post(client, LINE.read_bytes(), kind="x" * 100_000)  # any field's input
    assert status == 422 and body["detail"][0]["input"] == "x" * 40 + "..."
