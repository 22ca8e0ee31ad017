"""Paragraph → lines: pages made of the sample lines are cut back into those lines."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.pages import SAMPLE_NAMES, SAMPLES, TRUTHS, compose_page, sample_line
from text_recognizer.cli import app
from text_recognizer.errors import ImageError
from text_recognizer.metrics import cer
from text_recognizer.recognizer import Recognizer
from text_recognizer.segmentation import (
    SidewaysEvidence,
    line_pitch,
    segment_lines,
    sideways_evidence,
)

ALL = list(range(len(SAMPLE_NAMES)))


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained()


@pytest.fixture(scope="module")
def lines_read_alone(recognizer: Recognizer) -> float:
    """CER of the sample lines read from their own files, joined as one page."""
    read = recognizer.recognize_batch([SAMPLES / name for name in SAMPLE_NAMES], kind="line")
    return cer(["\n".join(r.text for r in read)], ["\n".join(TRUTHS[n] for n in SAMPLE_NAMES)])


@pytest.mark.parametrize(
    ("pitch", "scale", "tilt"),
    [
        (48, 2.0, 0.0),  # well apart
        (30, 2.0, 0.0),  # descenders reach the next line's ascenders
        (40, 2.0, 2.5),  # a tilted scan
        (40, 2.0, -2.0),
        (44, 4.0, 0.0),  # a phone photo's resolution
        (40, 1.0, 0.0),  # as small as the model's input
    ],
)
def test_pages_are_cut_into_their_lines_and_read_as_well(
    pitch: float,
    scale: float,
    tilt: float,
    recognizer: Recognizer,
    lines_read_alone: float,
) -> None:
    page, truths = compose_page(ALL, pitch=pitch, scale=scale, tilt=tilt)
    found = segment_lines(page)
    assert len(found.lines) == len(truths)
    tops = [line.box[1] for line in found.lines]
    assert tops == sorted(tops)
    assert (found.angle == 0.0) == (tilt == 0.0)
    assert found.angle == pytest.approx(-tilt, abs=0.75)
    result = recognizer.recognize(page, kind="paragraph")
    assert result.text.count("\n") == len(truths) - 1
    assert cer([result.text], ["\n".join(truths)]) <= lines_read_alone + 0.03


def test_a_line_a_character_and_a_blank_image() -> None:
    line = sample_line(0, scale=2.0)
    assert len(segment_lines(line).lines) == 1
    assert len(segment_lines(255 - line).lines) == 1  # either polarity
    char = np.full((60, 50), 255, np.uint8)
    char[10:50, 20:26] = 0  # an "i": stem and dot are one line
    char[2:7, 20:26] = 0
    assert len(segment_lines(char).lines) == 1
    with pytest.raises(ImageError, match="blank"):
        segment_lines(np.full((200, 300), 240, np.uint8))


def test_specks_between_lines_are_not_lines() -> None:
    page, truths = compose_page([0, 4, 6], pitch=60)
    page[95:99, 300:304] = 0  # a speck in the gap between the first two lines
    page[5:8, 700:703] = 0  # and one above the text
    found = segment_lines(page)
    assert len(found.lines) == len(truths)


def test_line_pitch_of_a_profile() -> None:
    rows = np.arange(400)
    lines = (np.sin(2 * np.pi * rows / 37) > 0.2).astype(float) * 100
    assert line_pitch(lines) == pytest.approx(37, abs=1)
    one_line = np.exp(-(((rows - 200) / 30.0) ** 2))
    assert line_pitch(one_line) is None
    assert line_pitch(np.zeros(50)) is None


def test_paragraph_results_and_auto_kind(recognizer: Recognizer) -> None:
    page, _ = compose_page([0, 2, 5], pitch=44)
    result = recognizer.recognize(page)  # auto: wide, but three lines read surer as lines
    assert result.kind == "paragraph" and len(result.lines) == 3
    assert result.text == "\n".join(line.text for line in result.lines)
    assert result.confidence == pytest.approx(np.mean([r.confidence for r in result.lines]))
    for line in result.lines:
        assert line.kind == "line" and line.box is not None
    as_dict = result.to_dict()
    assert set(as_dict["lines"][0]) == {
        "text",
        "confidence",
        "kind",
        "box",
        "polygon",
        "baseline",
        "words",
    }
    tall, _ = compose_page(ALL, pitch=40, scale=1.0)
    assert recognizer.recognize(tall).kind == "paragraph"  # narrower than a line
    assert recognizer.recognize(SAMPLES / SAMPLE_NAMES[0]).kind == "line"
    single = recognizer.recognize(SAMPLES / SAMPLE_NAMES[0])
    assert "lines" not in single.to_dict()
    assert {"box", "polygon", "baseline", "words", "size"} <= set(single.to_dict())
    char = recognizer.recognize(SAMPLES.parent / "chars" / "char_00.png")
    assert not {"box", "polygon", "baseline", "words"} & set(char.to_dict())
    assert char.kind == "char"


def test_auto_reads_one_line_with_wide_margins_as_a_line(recognizer: Recognizer) -> None:
    """A line photographed on its page, no wider than a character's image, once read as "t"."""
    line = sample_line(4)
    paper = np.full((line.shape[1], line.shape[1] * 3 // 2), 255, np.uint8)
    top, left = line.shape[1] // 3, line.shape[1] // 4
    paper[top : top + line.shape[0], left : left + line.shape[1]] = line
    assert paper.shape[1] < 2 * paper.shape[0]
    result = recognizer.recognize(paper)
    assert result.kind == "line"
    assert cer([result.text], [TRUTHS[SAMPLE_NAMES[4]]]) < 0.1


def test_cli_prints_a_row_per_line_of_a_paragraph(tmp_path: Path) -> None:
    page, truths = compose_page([0, 4], pitch=50)
    Image.fromarray(page).save(tmp_path / "page.png")
    runner = CliRunner()
    result = runner.invoke(app, ["recognize", "--kind", "paragraph", str(tmp_path / "page.png")])
    assert result.exit_code == 0, result.output
    rows = [row.split("\t") for row in result.output.splitlines()]
    assert [row[0] for row in rows] == [f"{tmp_path / 'page.png'}:1", f"{tmp_path / 'page.png'}:2"]
    assert cer([rows[0][1], rows[1][1]], truths) < 0.1
    result = runner.invoke(app, ["recognize", "--json", str(tmp_path / "page.png")])
    read = json.loads(result.output)
    assert read["kind"] == "paragraph" and read["text"].count("\n") == 1
    first, second = (line["box"] for line in read["lines"])
    assert first[3] <= second[1]  # (x0, y0, x1, y1): the second line starts below the first


def test_the_quick_test_for_several_lines() -> None:
    from text_recognizer.segmentation import may_hold_lines

    assert not any(may_hold_lines(sample_line(i)) for i in ALL)
    assert may_hold_lines(compose_page([0, 4], pitch=50)[0])
    assert may_hold_lines(compose_page(ALL, pitch=36)[0])
    assert not may_hold_lines(np.full((40, 300), 200, np.uint8))  # blank


@pytest.mark.parametrize("pitch", [24, 22])
def test_overlapping_lines_a_pitch_apart_are_cut(
    pitch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sample lines 32 px high set 22-24 px apart: descenders over the next ascenders, so
    the profile dips little between them; a shallower dip suffices a pitch apart."""
    from text_recognizer import segmentation

    page, truths = compose_page(ALL, pitch=pitch)
    assert len(segment_lines(page).lines) == len(truths)
    monkeypatch.setattr(segmentation, "MAX_TOUCHING_SHARE", segmentation.MAX_VALLEY_SHARE)
    monkeypatch.setattr(segmentation, "PITCH_CUT_SHARE", segmentation.MAX_VALLEY_SHARE)
    assert len(segment_lines(page).lines) < len(truths)


@pytest.mark.parametrize("order", [1, -1])
def test_lines_set_closer_than_their_height_are_cut_a_pitch_apart(order: int) -> None:
    """Sample lines 32 px high set 20 px apart (0.625 line heights): ascenders and
    descenders fill the rows between their cores, which dip too little to part them;
    their bands are cut every line pitch, and the pitch is found though the profile
    repeats more strongly every other line."""
    page, truths = compose_page(ALL[::order], pitch=20)
    assert len(segment_lines(page).lines) == len(truths)


def test_a_heading_written_larger_stays_one_line(recognizer: Recognizer) -> None:
    head = sample_line(0, scale=4.0)  # twice the size of the lines below it
    body = [sample_line(i, scale=2.0) for i in range(1, 7)]
    page = np.full((head.shape[0] + 30 + 80 * len(body) + 60, head.shape[1] + 80), 255, np.uint8)
    top = 20
    for line in [head, *body]:
        window = page[top : top + line.shape[0], 40 : 40 + line.shape[1]]
        np.minimum(window, line, out=window)
        top += int(line.shape[0] * 1.2)
    read = recognizer.recognize(page, kind="paragraph")
    assert len(read.lines) == 7
    assert cer([read.lines[0].text], [TRUTHS[SAMPLE_NAMES[0]]]) < 0.1


def test_tall_bands_are_split_only_where_their_middle_dips() -> None:
    from text_recognizer.segmentation import _split_tall_bands

    line = np.concatenate([np.linspace(1, 10, 15), np.linspace(10, 1, 15)])  # one line, 30 rows
    merged = np.concatenate([line[:28], line[2:]])  # two lines overlapping by 4 rows: cut at 87
    heading = np.concatenate([np.linspace(1, 10, 26), np.linspace(10, 1, 26)])  # one tall line
    for tall, expected in ((merged, [30, 60, 87, 116]), (heading, [30, 60, 112])):
        fine = np.concatenate([line, line, tall, line])
        assert _split_tall_bands([30, 60, 60 + len(tall)], fine) == expected


@pytest.mark.parametrize("tilt", [7.0, -12.0])
def test_pages_photographed_crooked_are_levelled(tilt: float, recognizer: Recognizer) -> None:
    page, truths = compose_page(ALL, pitch=40, tilt=tilt)
    found = segment_lines(page)
    assert found.angle == pytest.approx(-tilt, abs=1.0)
    assert len(found.lines) == len(truths)
    read = recognizer.recognize(page, kind="paragraph")
    assert cer([read.text], ["\n".join(truths)]) < 0.1


@pytest.mark.parametrize("tilt", [0.0, 4.0, -7.0])
def test_a_lines_polygon_finds_it_in_the_image_as_given(
    tilt: float, recognizer: Recognizer
) -> None:
    """Cut out along its polygon from the image as given (turned and framed), each line
    reads as it does on the page."""
    page, truths = compose_page([0, 3, 6], pitch=50, tilt=tilt)
    page = cv2.copyMakeBorder(page, 30, 12, 25, 8, cv2.BORDER_CONSTANT, value=20)  # a desk
    result = recognizer.recognize(page, kind="paragraph")
    assert result.size == (page.shape[1], page.shape[0])
    assert len(result.lines) == len(truths)
    for line, truth in zip(result.lines, truths, strict=True):
        assert line.polygon is not None and line.box is not None
        corners = np.array(line.polygon, np.float32)
        xs, ys = corners[:, 0], corners[:, 1]
        assert line.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        width = round(float(np.linalg.norm(corners[1] - corners[0]))) + 1
        height = round(float(np.linalg.norm(corners[3] - corners[0]))) + 1
        assert height < 0.2 * width
        target = np.array([(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)])
        matrix = cv2.getPerspectiveTransform(corners, target.astype(np.float32))
        cut = cv2.warpPerspective(page, matrix, (width, height), borderValue=255)
        cut_read = recognizer.recognize(cut, kind="line").text
        assert cer([cut_read], [truth]) <= cer([line.text], [truth]) + 0.1  # a wrong place: ~1


def _side_by_side(*pages: np.ndarray, gutter: int = 60, drop: int = 0) -> np.ndarray:
    """Pages pasted left to right ``gutter`` px apart (more their own margins), each
    ``drop`` px lower than the one before."""
    height = max(page.shape[0] + drop * i for i, page in enumerate(pages))
    width = sum(page.shape[1] for page in pages) + gutter * (len(pages) - 1)
    out = np.full((height, width), 255, np.uint8)
    left = 0
    for i, page in enumerate(pages):
        out[drop * i : drop * i + page.shape[0], left : left + page.shape[1]] = page
        left += page.shape[1] + gutter
    return out


@pytest.mark.parametrize("drop", [0, 40])
def test_columns_side_by_side_are_read_one_after_the_other(
    drop: int, recognizer: Recognizer
) -> None:
    """Two columns of four lines, level with each other or not: rows across the gutter
    once joined them into four lines of both (CER 0.70)."""
    left, left_truths = compose_page([0, 1, 2, 3], pitch=40)
    right, right_truths = compose_page([4, 5, 6, 7], pitch=40)
    page = _side_by_side(left, right, drop=drop)
    found = segment_lines(page)
    assert len(found.lines) == 8
    assert all(line.box[2] < left.shape[1] for line in found.lines[:4])
    assert all(line.box[0] > left.shape[1] for line in found.lines[4:])
    read = recognizer.recognize(page, kind="paragraph")
    assert cer([read.text], ["\n".join(left_truths + right_truths)]) < 0.1


def test_a_note_in_the_margin_is_a_line_of_its_own() -> None:
    body, _ = compose_page([0, 1, 2, 3, 4, 5], pitch=40)
    note = sample_line(7)[:, :150]  # a word or two, smaller than the body's writing
    page = np.full((body.shape[0], body.shape[1] + note.shape[1] + 60), 255, np.uint8)
    page[:, : body.shape[1]] = body
    page[200 : 200 + note.shape[0], body.shape[1] + 30 : body.shape[1] + 30 + note.shape[1]] = note
    found = segment_lines(page)
    assert len(found.lines) == 7
    assert found.lines[-1].box[0] > body.shape[1]  # the note, after the body's lines


def test_noise_over_the_page_does_not_stretch_the_lines_to_its_edges(
    recognizer: Recognizer,
) -> None:
    """Grain (a noise of 30 grey levels) leaves specks all over the page's ink mask: each
    line's box once reached from edge to edge, and the specks at its ends read as dashes
    (CER 0.199; the lines cut exactly from the noisy page read at 0.11)."""
    page, truths = compose_page(ALL, pitch=40)
    clean = [line.box for line in segment_lines(page).lines]
    noise = np.random.default_rng(2).normal(0, 30, page.shape)
    noisy = np.clip(page + noise, 0, 255).astype(np.uint8)
    found = [line.box for line in segment_lines(noisy).lines]
    assert len(found) == len(clean)
    for (x0, _, x1, _), (clean_x0, _, clean_x1, _) in zip(found, clean, strict=True):
        assert x0 >= clean_x0 - 60 and x1 <= clean_x1 + 60  # specks within half a line
    read = recognizer.recognize(noisy, kind="paragraph")
    assert cer([read.text], ["\n".join(truths)]) < 0.13


def test_small_letters_of_a_loosely_spaced_line_are_not_specks() -> None:
    """Lines 240 px apart (four line heights): the writing of a band was once the blobs
    0.15 of the band's height, so a line's small letters far from its tall ones were taken
    for specks and cut off ("me, 17/4/1963" of "me, 17/4/1963 confirm 39.86 intimacy")."""
    tight, _ = compose_page(ALL, pitch=40)
    loose, _ = compose_page(ALL, pitch=120)
    widths = [
        [x1 - x0 for x0, _, x1, _ in (ln.box for ln in segment_lines(page).lines)]
        for page in (tight, loose)
    ]
    assert widths[1] == pytest.approx(widths[0], abs=4)


def test_a_line_of_one_number_is_a_line_not_a_speck() -> None:
    """A page number below the text: a sliver of a line's ink (once dropped as a speck
    with 0.099 of the median line's), but as tall as its letters."""
    page, truths = compose_page(ALL, pitch=40)
    number = sample_line(1, scale=2.0)[:, :48]  # "19" of "1990 23/8/1992"
    paper = np.full((page.shape[0] + 120, page.shape[1]), 255, np.uint8)
    paper[: page.shape[0]] = page
    paper[page.shape[0] + 30 : page.shape[0] + 94, 500:548] = number
    found = segment_lines(paper)
    assert len(found.lines) == len(truths) + 1
    assert found.lines[-1].box[0] >= 500


@pytest.mark.parametrize(("pitch", "tilt"), [(48, 0.0), (30, 0.0), (40, 10.0), (40, -15.0)])
def test_the_edges_of_a_pages_writing_tell_whether_it_lies_on_its_side(
    pitch: float, tilt: float
) -> None:
    page, _ = compose_page(ALL, pitch=pitch, tilt=tilt)
    upright = sideways_evidence(page)
    assert upright.edge_ratio < 0.7 and upright.blobs > 20
    assert upright.ink_aspect == pytest.approx(page.shape[1] / page.shape[0], rel=0.5)
    for turns in (1, 3):
        turned = sideways_evidence(np.ascontiguousarray(np.rot90(page, turns)))
        assert turned.edge_ratio > 1.4
        assert turned.ink_aspect == pytest.approx(1 / upright.ink_aspect, rel=0.1)
    assert sideways_evidence(np.full((50, 80), 255, np.uint8)) == SidewaysEvidence(0.0, 0, 0.0)
