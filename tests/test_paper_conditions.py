"""Paper as photographed: ruled lines are erased (and only they are), uneven light is
levelled (and even light left as it was)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.pages import (
    SAMPLE_NAMES,
    SAMPLES,
    TRUTHS,
    compose_page,
    draw_rules,
    lit,
    on_margin,
    sample_line,
)
from text_recognizer import preprocessing, segmentation
from text_recognizer.data.line_render import LineRenderer
from text_recognizer.data.sentences import SentenceGenerator
from text_recognizer.data.sources.fonts import list_fonts
from text_recognizer.errors import ImageError
from text_recognizer.images import load_image
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.preprocessing import (
    MIN_CONTRAST,
    RULE_SPAN_HEIGHTS,
    erase_rules,
    normalize_polarity,
    rotate,
    subtract_paper,
    trim_frame,
)
from text_recognizer.recognizer import Recognizer

ALL = list(range(len(SAMPLE_NAMES)))
PAGES = SAMPLES_DIR / "paragraphs"


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def ruled_lines(where: str) -> list[np.ndarray]:
    lines = []
    for index in ALL:
        line = on_margin(sample_line(index, scale=2.0))
        height = line.shape[0] - 30  # the sample line's own height
        rows = {
            "below": [15 + height + 5],
            "through": [15 + int(0.72 * height)],  # about where the text sits
            "above and below": [8, 15 + height + 5],
        }[where]
        lines.append(draw_rules(line, rows))
    return lines


@pytest.mark.parametrize("where", ["below", "through", "above and below"])
def test_ruled_lines_read_nearly_as_plain_ones(
    where: str, recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    truths = [TRUTHS[name] for name in SAMPLE_NAMES]
    plain = [on_margin(sample_line(i, scale=2.0)) for i in ALL]
    plain_cer = cer([r.text for r in recognizer.recognize_batch(plain, kind="line")], truths)
    ruled = ruled_lines(where)
    ruled_cer = cer([r.text for r in recognizer.recognize_batch(ruled, kind="line")], truths)
    assert ruled_cer <= plain_cer + 0.03
    monkeypatch.setattr(preprocessing, "erase_rules", lambda ink, min_length=None: ink)
    unerased = cer([r.text for r in recognizer.recognize_batch(ruled, kind="line")], truths)
    assert unerased > plain_cer + 0.08  # what the rules cost without the eraser


@pytest.mark.parametrize("tilt", [0.0, 2.0])
def test_a_notebook_page_reads_nearly_as_a_plain_one(tilt: float, recognizer: Recognizer) -> None:
    page, truths = compose_page(ALL, pitch=40)
    plain = recognizer.recognize(page, kind="paragraph")
    paper = np.full((page.shape[0] + 200, page.shape[1]), 255, np.uint8)
    paper[: page.shape[0]] = page
    # A rule under every line of text, and more under the text, as on a notebook page.
    notebook = draw_rules(paper, list(range(32 + 56, paper.shape[0] - 2, 80)))
    if tilt:
        notebook = 255 - rotate(255 - notebook, tilt).astype(np.uint8)
    read = recognizer.recognize(notebook, kind="paragraph")
    assert len(read.lines) == len(truths)
    joined = "\n".join(truths)
    assert cer([read.text], [joined]) <= cer([plain.text], [joined]) + 0.03


def test_lines_without_rules_are_left_alone() -> None:
    """No rule is found in lines of joined scripts, whose connected lowercase letters
    make long runs of ink along a row at the model's scale."""
    joined = [f for f in list_fonts("train") if f.name in ("allura", "great-vibes", "satisfy")]
    assert joined
    renderer = LineRenderer(joined, [], stroke_fraction=0.0)
    sentences = SentenceGenerator(48, seed=3)
    rng = np.random.default_rng(3)
    lines = [renderer.render(sentences.generate(), rng).image for _ in range(60)]
    lines += [255 - sample_line(i) for i in ALL]
    for line in lines:
        ink = line.astype(np.float32)
        ink = np.clip(ink - np.median(ink), 0, None)
        length = max(ink.shape[1] // 2, RULE_SPAN_HEIGHTS * ink.shape[0])
        assert erase_rules(ink, length) is ink


def one_level(ink: np.ndarray, window: int | None = None) -> np.ndarray:
    return np.clip(ink - float(np.median(ink)), 0, None)


@pytest.mark.parametrize("light", ["gradient", "shadow"])
def test_unevenly_lit_lines_and_pages_read_nearly_as_evenly_lit_ones(
    light: str, recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    truths = [TRUTHS[name] for name in SAMPLE_NAMES]
    lines = [on_margin(sample_line(i, scale=2.0)) for i in ALL]
    page, page_truths = compose_page(ALL, pitch=40)
    joined = "\n".join(page_truths)

    def scores() -> tuple[float, float, int]:
        read = recognizer.recognize_batch([lit(line, light) for line in lines], kind="line")
        whole = recognizer.recognize(lit(page, light), kind="paragraph")
        return cer([r.text for r in read], truths), cer([whole.text], [joined]), len(whole.lines)

    even_lines = cer([r.text for r in recognizer.recognize_batch(lines, kind="line")], truths)
    even_page = cer([recognizer.recognize(page, kind="paragraph").text], [joined])
    lines_cer, page_cer, found = scores()
    assert lines_cer <= even_lines + 0.03
    assert found == len(page_truths) and page_cer <= even_page + 0.03
    for module in (preprocessing, segmentation):
        monkeypatch.setattr(module, "subtract_paper", one_level)
    lines_cer, page_cer, found = scores()
    assert lines_cer > even_lines + 0.05 and page_cer > even_page + 0.05  # one level fails


def test_evenly_lit_images_keep_one_paper_level() -> None:
    """Clean scans are read exactly as before local levels existed: one level, the median."""
    for name in SAMPLE_NAMES:
        ink = normalize_polarity(load_image(SAMPLES / name)).astype(np.float32)
        assert np.array_equal(subtract_paper(ink), one_level(ink))
    page, _ = compose_page(ALL, pitch=40)
    ink = normalize_polarity(page).astype(np.float32)
    assert np.array_equal(subtract_paper(ink, min(ink.shape) // 5), one_level(ink))


def test_a_ruled_page_without_writing_is_blank() -> None:
    paper = draw_rules(np.full((400, 600), 250, np.uint8), list(range(40, 400, 50)))
    with pytest.raises(ImageError, match="blank"):
        segmentation.segment_lines(paper)


@pytest.mark.parametrize("tilt", [0.0, 2.0])
def test_rules_found_on_a_narrowed_mask_are_erased_nearly_as_on_the_full_one(
    tilt: float, recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``HOUGH_BUDGET`` ink pixels (a photo of many rules, or a page of hundreds) rules
    are searched on a narrowed mask, then fitted to the full one: the page reads nearly as
    well as with the exact search."""
    page, truths = compose_page(ALL, pitch=40)
    paper = np.full((page.shape[0] + 200, page.shape[1]), 255, np.uint8)
    paper[: page.shape[0]] = page
    notebook = draw_rules(paper, list(range(32 + 56, paper.shape[0] - 2, 80)))
    if tilt:
        notebook = 255 - rotate(255 - notebook, tilt).astype(np.uint8)
    ink = normalize_polarity(notebook).astype(np.float32)
    ink = np.clip(ink - np.median(ink), 0, None)
    exact = erase_rules(ink)
    joined = "\n".join(truths)
    exact_cer = cer([recognizer.recognize(notebook, kind="paragraph").text], [joined])
    monkeypatch.setattr(preprocessing, "HOUGH_BUDGET", 11_000)  # ~60,000 pixels: 6x narrower
    narrowed = erase_rules(ink)
    assert narrowed is not ink
    if not tilt:  # level rules come back at their rows: at most a band's edge row moves
        assert (narrowed != exact).mean() < 0.002
    read = recognizer.recognize(notebook, kind="paragraph")
    assert len(read.lines) == len(truths)
    assert cer([read.text], [joined]) <= exact_cer + 0.02


def test_a_page_of_rules_alone_has_no_line_to_read(recognizer: Recognizer) -> None:
    """Each rule of a dense grid once went through the network as a line tens of thousands
    of pixels long (a 6 KB image took 23 s and 1.9 GB)."""
    grid = np.full((1500, 1500), 255, np.uint8)
    grid[::8] = 0
    grid[:, ::50] = 0
    with pytest.raises(ImageError, match="no line of text found"):
        recognizer.recognize(grid)


def test_lines_too_long_or_too_thin_to_be_writing_are_refused() -> None:
    long_stroke = np.full((60, 6000), 255, np.uint8)
    long_stroke[20:40, 10:5990] = 0
    with pytest.raises(ImageError, match="more than 128 times as wide as high"):
        preprocessing.prepare_line(long_stroke, 32)
    thin = np.full((60, 300), 255, np.uint8)
    for x in range(10, 290, 8):
        thin[30:32, x : x + 3] = 0  # a dashed row, two pixels high (not a rule: too broken)
    with pytest.raises(ImageError, match="only 2 pixels high"):
        preprocessing.prepare_line(thin, 32)


def framed(image: np.ndarray, width: int, level: int = 50) -> np.ndarray:
    out = np.full((image.shape[0] + 2 * width, image.shape[1] + 2 * width), level, np.uint8)
    out[width : width + image.shape[0], width : width + image.shape[1]] = image
    return out


@pytest.mark.parametrize("width", [1, 15])
def test_a_dark_frame_around_lines_and_pages_is_cut_away(
    width: int, recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    truths = [TRUTHS[name] for name in SAMPLE_NAMES]
    lines = [framed(on_margin(sample_line(i, scale=2.0)), width) for i in ALL]
    plain = [on_margin(sample_line(i, scale=2.0)) for i in ALL]
    plain_cer = cer([r.text for r in recognizer.recognize_batch(plain, kind="line")], truths)
    assert cer([r.text for r in recognizer.recognize_batch(lines, kind="line")], truths) <= (
        plain_cer + 0.01
    )
    page, page_truths = compose_page(ALL, pitch=40)
    read = recognizer.recognize(framed(page, 4 * width), kind="paragraph")
    assert len(read.lines) == len(page_truths)
    unframed = recognizer.recognize(page, kind="paragraph")
    for line, plain_line in zip(read.lines, unframed.lines, strict=True):
        assert line.box is not None and plain_line.box is not None
        assert line.box == tuple(v + 4 * width for v in plain_line.box)  # the image's own frame
    monkeypatch.setattr(preprocessing, "trim_frame", lambda grey: (grey, 0, 0))
    unframed_cer = cer([r.text for r in recognizer.recognize_batch(lines, kind="line")], truths)
    assert unframed_cer > plain_cer + 0.1  # what the frame costs when it is read as paper


def test_frames_are_only_edges_far_from_the_paper() -> None:
    line = on_margin(sample_line(3, scale=2.0))  # bold capitals, touching nothing
    assert trim_frame(line)[0].shape == line.shape
    tight = 255 - (255 - line)[15:-15]  # cut to the ink: strokes reach the edges
    assert trim_frame(tight)[0].shape == tight.shape
    white_on_black = 255 - line
    assert trim_frame(white_on_black)[0].shape == line.shape
    trimmed, top, left = trim_frame(framed(line, 7, level=0))
    assert (trimmed.shape, top, left) == (line.shape, 7, 7)
    bright = framed(white_on_black, 5, level=230)  # a light frame round a dark board
    assert trim_frame(bright)[0].shape == line.shape


def enlarged(image: np.ndarray, scale: float) -> np.ndarray:
    """As a scanner or a PDF renderer draws a page larger: smooth (bilinear) edges."""
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def test_a_frames_soft_edge_is_cut_with_it() -> None:
    """Scaled up, a frame's edge is a few rows and columns between desk and paper: they
    were kept, a bar of "ink" down the page's side read as a letter at each line's start."""
    line = on_margin(sample_line(3, scale=2.0))
    for scale in (1.5, 2.0, 3.0):
        trimmed, _, _ = trim_frame(enlarged(framed(line, 20), scale))
        paper = float(np.median(trimmed))
        edges = [trimmed[:, 0], trimmed[:, -1], trimmed[0], trimmed[-1]]
        assert all(abs(float(np.median(edge)) - paper) < 16 for edge in edges), scale
    tight = 255 - (255 - line)[15:-15]  # no frame: strokes at the edges stay
    assert trim_frame(enlarged(tight, 2.0))[0].shape == enlarged(tight, 2.0).shape


@pytest.mark.parametrize("scale", [2.0, 3.0])
def test_a_scaled_rule_is_erased_with_its_faint_edges(scale: float) -> None:
    """A photographed rule drawn larger has faint edges several pixels tall, and the whole
    rule passed for strokes crossing it: on a 3x notebook page no rule was erased."""
    paper = draw_rules(np.full((120, 600), 255, np.uint8), [60])
    paper[10:30, 20:24] = 0  # a stroke of writing, darker than the rule
    paper = cv2.GaussianBlur(paper, (0, 0), 0.7)  # as photographed: a soft rule
    ink = normalize_polarity(enlarged(paper, scale)).astype(np.float32)
    ink = np.clip(ink - float(np.median(ink)), 0, None)
    rule = slice(int(45 * scale), int(80 * scale))
    assert float(ink[rule].max()) > 80
    erased = erase_rules(ink)
    assert float(erased[rule].max()) < 20  # at most a faint edge's last rows
    assert float(erased[: rule.start].max()) == float(ink[: rule.start].max())  # the stroke


@pytest.mark.parametrize("scale", [2.0, 3.0])
def test_a_notebook_photo_scanned_larger_reads_as_at_its_own_size(
    scale: float, recognizer: Recognizer
) -> None:
    """The sample notebook page (rules, a dark desk round it, uneven light), 2x and 3x as
    large as a 100-dpi scan drawn at 200 or 300 dpi is: it read at CER 0.43 and 0.26, the
    desk's edge and the rules taken for ink."""
    rows = [json.loads(row) for row in (PAGES / "labels.jsonl").read_text().splitlines()]
    truth = next(row["text"] for row in rows if row["image"] == "page_02.png")
    page = load_image(PAGES / "page_02.png")
    own = cer([recognizer.recognize(page, kind="paragraph").text], [truth])
    read = recognizer.recognize(enlarged(page, scale), kind="paragraph")
    assert len(read.lines) == truth.count("\n") + 1
    assert cer([read.text], [truth]) <= own + 0.03


def out_of_focus_frame(image: np.ndarray, width: int, sigma: float) -> np.ndarray:
    """``image`` on a dark desk (``width`` pixels of it), the sheet's edge blurred by
    ``sigma`` both ways, as a photo out of focus there draws it: a ramp many rows wide."""
    sheet = np.zeros((image.shape[0] + 2 * width, image.shape[1] + 2 * width), np.float32)
    sheet[width:-width, width:-width] = 1
    sheet = cv2.GaussianBlur(sheet, (0, 0), sigma)
    paper = cv2.copyMakeBorder(image, width, width, width, width, cv2.BORDER_REPLICATE)
    return np.rint(paper * sheet + 40 * (1 - sheet)).astype(np.uint8)


def test_a_blurred_frames_edge_is_cut_to_the_paper(recognizer: Recognizer) -> None:
    """A frame's edge blurred over many rows, each a small step from the next: its last
    rows were kept, and round a character they made a box of "ink" the whole image wide
    (10 of the 11 sample characters misread)."""
    rows = [row.split("\t") for row in (SAMPLES_DIR / "chars/labels.tsv").read_text().splitlines()]
    chars = [(load_image(SAMPLES_DIR / "chars" / name), text) for name, text in rows]
    plain = [recognizer.recognize(image, kind="char").text for image, _ in chars]
    margin = 12  # paper round the character
    on_desk = [
        out_of_focus_frame(cv2.copyMakeBorder(image, *[margin] * 4, cv2.BORDER_REPLICATE), 20, 2.5)
        for image, _ in chars
    ]
    assert [recognizer.recognize(image, kind="char").text for image in on_desk] == plain
    for sigma in (1.0, 2.0, 4.0):
        line = on_margin(sample_line(3, scale=2.0))
        trimmed, _, _ = trim_frame(out_of_focus_frame(line, 30, sigma))
        ink = np.clip(float(np.median(trimmed)) - trimmed.astype(np.float32), 0, None)
        edges = [ink[0], ink[-1], ink[:, 0], ink[:, -1]]
        assert max(float(np.median(edge)) for edge in edges) <= MIN_CONTRAST, sigma
        assert max(float(edge.max()) for edge in edges) < 0.25 * float(ink.max()), sigma


def burnt_white(image: np.ndarray) -> np.ndarray:
    """Exposed for the shadows: what is brighter than the image's median is white."""
    low, high = np.percentile(image, [0.5, 50])
    return np.clip((image.astype(np.float32) - low) * 255 / (high - low), 0, 255).astype(np.uint8)


def test_paper_burnt_white_over_part_of_a_page_is_levelled(recognizer: Recognizer) -> None:
    """Light falling off across a page exposed for its dim side: the bright half is white,
    the median paper is that white, and the dim half's paper, the whole range above it but
    under 30 % of the ink's contrast, was taken for ink (the notebook photo read at CER
    0.43, its lines running on into the dim paper)."""
    rows = [json.loads(row) for row in (PAGES / "labels.jsonl").read_text().splitlines()]
    truth = next(row["text"] for row in rows if row["image"] == "page_02.png")
    page = load_image(PAGES / "page_02.png")
    own = cer([recognizer.recognize(page, kind="paragraph").text], [truth])
    assert cer([recognizer.recognize(burnt_white(page), kind="paragraph").text], [truth]) <= (
        own + 0.05
    )
    # Bright ink: paper at 0 over the left half, rising to a fifth of the ink's contrast.
    ink = np.zeros((200, 600), np.float32)
    ink[:, 300:] = np.linspace(0, 50, 300)[None]
    ink[90:110, 50:550] = 250  # a stroke across both halves
    flat = subtract_paper(ink, 40)
    assert float(flat[:80, 300:].max()) < segmentation.PAGE_INK_FRACTION * float(flat.max())


def test_a_margin_rule_down_the_page_is_erased(recognizer: Recognizer) -> None:
    """A notebook's margin rule runs down the page left of the writing: it was read as an
    "I" before every line, and the bands above and below the writing, holding only its
    ends, made ``kind="auto"`` read the page as one character."""
    page, truths = compose_page(ALL, pitch=40)
    joined = "\n".join(truths)
    plain = cer([recognizer.recognize(page, kind="paragraph").text], [joined])
    paper = np.full((page.shape[0] + 120, page.shape[1] + 60), 255, np.uint8)
    paper[60:-60, 60:] = page
    margin = paper.copy()
    margin[:, 30:32] = 150
    for kind in ("paragraph", "auto"):
        read = recognizer.recognize(margin, kind=kind)
        assert read.kind == "paragraph" and len(read.lines) == len(truths), kind
        assert cer([read.text], [joined]) <= plain + 0.01, kind


def test_a_long_line_written_6_degrees_uphill_is_levelled(recognizer: Recognizer) -> None:
    """Tilts were looked for up to 4 degrees: four sample lines side by side (a landscape
    page's line) written 6 degrees uphill read at CER 0.79, its letters shrunk into a box
    the tilt made 5 times taller than the text."""
    parts = [on_margin(sample_line(i)) for i in range(4)]
    height = max(part.shape[0] for part in parts)
    line = np.hstack(
        [np.pad(p, ((0, height - p.shape[0]), (0, 0)), constant_values=255) for p in parts]
    )
    truth = " ".join(TRUTHS[name] for name in SAMPLE_NAMES[:4])
    level = cer([recognizer.recognize(line, kind="line").text], [truth])
    uphill = 255 - rotate(255 - line.astype(np.float32), 6.0).astype(np.uint8)
    assert cer([recognizer.recognize(uphill, kind="line").text], [truth]) <= level + 0.05


def on_a_desk(image: np.ndarray, degrees: float, desk: int = 45, room: int = 0) -> np.ndarray:
    """``image`` photographed lying crooked on a dark desk (``room`` pixels more of it
    round the sheet): the desk fills the corners the turn opens, and crosses every edge
    row and column."""
    sheet = cv2.copyMakeBorder(image, *[room] * 4, cv2.BORDER_CONSTANT, value=desk)
    mask = cv2.copyMakeBorder(np.ones_like(image), *[room] * 4, cv2.BORDER_CONSTANT, value=0)
    turned = rotate(sheet.astype(np.float32), degrees, background=desk)
    inside = rotate(mask.astype(np.float32), degrees) > 0.5
    return np.where(inside, turned, desk).astype(np.uint8)


@pytest.mark.parametrize("degrees", [3.0, -6.0])
def test_a_page_lying_crooked_on_a_desk_is_read(degrees: float, recognizer: Recognizer) -> None:
    """The desk round a sheet photographed crooked crosses every edge row and column, so no
    row or column is wholly frame: it was the page's background, and the sheet its ink (the
    notebook photo turned 3 degrees read at CER 0.99; a plain page on a desk as wide as
    itself, as one character)."""
    rows = [json.loads(row) for row in (PAGES / "labels.jsonl").read_text().splitlines()]
    truth = next(row["text"] for row in rows if row["image"] == "page_02.png")
    page = load_image(PAGES / "page_02.png")
    own = cer([recognizer.recognize(page, kind="paragraph").text], [truth])
    # Its own desk is 45 grey levels: turned, the photo lies on more of it.
    turned = rotate(page.astype(np.float32), degrees, background=45).astype(np.uint8)
    read = recognizer.recognize(turned, kind="paragraph")
    assert cer([read.text], [truth]) <= own + (0.05 if abs(degrees) < 4 else 0.25)
    composed, truths = compose_page(ALL, pitch=40)
    joined = "\n".join(truths)
    plain = cer([recognizer.recognize(composed, kind="paragraph").text], [joined])
    read = recognizer.recognize(on_a_desk(composed, degrees, room=40), kind="auto")
    assert read.kind == "paragraph" and len(read.lines) == len(truths)
    assert cer([read.text], [joined]) <= plain + 0.03


def test_pages_without_a_desk_are_left_whole() -> None:
    """A plain page, one written white on a dark board, and a line of bright ink (closed
    into a bar, much like a sheet) hold no sheet to cut to."""
    composed, _ = compose_page(ALL, pitch=40)
    for image in (composed, 255 - composed, 255 - on_margin(sample_line(3, scale=2.0))):
        rest, top, left = preprocessing.on_the_sheet(image)
        assert (rest.shape, top, left) == (image.shape, 0, 0)
