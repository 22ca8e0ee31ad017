"""Where each word of a reading is: boxes that find the words' ink, on lines and pages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.pages import SAMPLES, compose_page, sample_line
from text_recognizer.recognizer import Recognizer


def ink_words(line: np.ndarray, gap: int = 5) -> list[tuple[int, int]]:
    """Column ranges of ink separated by at least ``gap`` empty columns."""
    dark = 255 - line.astype(np.float32)
    columns = np.flatnonzero(dark.max(axis=0) > 0.4 * dark.max())
    breaks = np.flatnonzero(np.diff(columns) > gap)
    starts = [columns[0], *columns[breaks + 1]]
    ends = [*columns[breaks], columns[-1]]
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    overlap = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return overlap / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


def test_the_ground_truth_is_what_the_ink_says() -> None:
    """line_00.png, "the heart, he would have cared": its six words stand apart."""
    assert len(ink_words(sample_line(0))) == 6


@pytest.mark.parametrize(
    "options", [{}, {"beam_size": 5}, {"width_search": True}], ids=["greedy", "beam", "widths"]
)
def test_each_word_box_finds_its_words_ink(options: dict[str, object]) -> None:
    result = Recognizer.from_pretrained(**options).recognize(SAMPLES / "line_00.png")  # type: ignore[arg-type]
    assert [word.text for word in result.words] == result.text.split()
    truth = ink_words(sample_line(0))
    assert len(result.words) == len(truth)
    for word, (start, end) in zip(result.words, truth, strict=True):
        xs = [x for x, _ in word.polygon]
        assert iou((min(xs), max(xs)), (start, end)) > 0.7, (word, start, end)
        # From the word's own top ink row to its lowest ("would" reaches lower than "the").
        dark = 255 - sample_line(0)[:, start : end + 1].astype(np.float32)
        rows = np.flatnonzero((dark > 0.4 * dark.max()).any(axis=1))
        ys = [y for _, y in word.polygon]
        assert abs(min(ys) - rows[0]) <= 3 and abs(max(ys) - rows[-1]) <= 3, (word, rows)


def test_on_a_turned_page_words_lie_in_their_lines_in_reading_order(
    recognizer: Recognizer,
) -> None:
    page, _ = compose_page([0, 3, 6], pitch=50, tilt=-5.0)
    page = cv2.copyMakeBorder(page, 30, 12, 25, 8, cv2.BORDER_CONSTANT, value=20)
    result = recognizer.recognize(page, kind="paragraph")
    for line in result.lines:
        assert line.polygon is not None
        outline = np.array(line.polygon, np.float32)
        assert [word.text for word in line.words] == line.text.split()
        centres = [np.mean(word.polygon, axis=0) for word in line.words]
        for centre in centres:
            assert cv2.pointPolygonTest(outline, (float(centre[0]), float(centre[1])), False) >= 0
        along = [c @ np.array([np.cos(np.radians(5)), -np.sin(np.radians(5))]) for c in centres]
        assert along == sorted(along)  # left to right along the turned line
    as_dict = result.to_dict()["lines"][0]["words"][0]
    assert set(as_dict) == {"text", "polygon", "confidence"} and len(as_dict["polygon"]) == 4


def test_characters_have_no_words(recognizer: Recognizer) -> None:
    result = recognizer.recognize(SAMPLES.parent / "chars" / "char_00.png")
    assert result.words == [] and "words" not in result.to_dict()


def test_a_misread_word_is_less_sure(recognizer: Recognizer) -> None:
    """line_00 is read right, every word sure; line_06 "such a way that at a later" reads
    "a later" as "o loter", and the "o" is the doubtful one."""
    clear = recognizer.recognize(SAMPLES / "line_00.png")
    assert min(word.confidence for word in clear.words) > 0.8
    misread = recognizer.recognize(SAMPLES / "line_06.png")
    sure = {word.text: word.confidence for word in misread.words}
    assert sure["o"] < 0.5 < min(sure["such"], sure["that"])


def test_a_lone_line_on_a_sheet_is_found_where_it_is(recognizer: Recognizer) -> None:
    """A line pasted onto a larger sheet: its polygon and baseline point at it."""
    line = sample_line(0)
    sheet = np.full((200, 700), 255, np.uint8)
    sheet[80 : 80 + line.shape[0], 150 : 150 + line.shape[1]] = line
    result = recognizer.recognize(sheet, kind="line")
    assert result.box is not None and result.baseline is not None
    rows, cols = np.nonzero(sheet < 128)  # the ink
    x0, y0, x1, y1 = result.box
    assert x0 <= cols.min() and cols.max() < x1 and y0 <= rows.min() and rows.max() < y1
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert x1 - x0 < 1.15 * width and y1 - y0 < 1.6 * height  # tight
    (_, left_y), (_, right_y) = result.baseline
    assert rows.min() + 0.5 * height < left_y == right_y <= rows.max()
