from __future__ import annotations

from pathlib import Path

import pytest

from text_recognizer.errors import DataError
from text_recognizer.labels import read_labels


def test_tsv_and_jsonl_rows(tmp_path: Path) -> None:
    (tmp_path / "labels.tsv").write_text('a.png\tone "quoted", two\n\nsub/b.png\t  spaced  \n')
    rows = read_labels(tmp_path)
    assert [(r.image, r.text, r.row) for r in rows] == [
        (tmp_path / "a.png", 'one "quoted", two', "labels.tsv:1"),
        (tmp_path / "sub/b.png", "  spaced  ", "labels.tsv:3"),
    ]
    (tmp_path / "labels.tsv").unlink()
    (tmp_path / "labels.jsonl").write_text('{"image": "c.png", "text": "tab\\there"}\n')
    assert [(r.image.name, r.text) for r in read_labels(tmp_path)] == [("c.png", "tab\there")]


def test_malformed_labels_name_the_row(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has no labels file: add labels\.tsv"):
        read_labels(tmp_path)
    (tmp_path / "labels.tsv").write_text("")
    with pytest.raises(DataError, match="lists no images"):
        read_labels(tmp_path)
    (tmp_path / "labels.tsv").write_text("a.png\tone\ttwo\n")
    with pytest.raises(
        DataError,
        match=r"labels.tsv:1: expected 'image<TAB>text', got 3 fields: a tab in the "
        r"text\? .*write the texts in labels\.jsonl, or replace the tab with a space",
    ):
        read_labels(tmp_path)
    (tmp_path / "labels.tsv").write_text("a.png one\n")
    with pytest.raises(DataError, match=r"got 1 fields: no tab after the image's name \(spaces"):
        read_labels(tmp_path)
    (tmp_path / "labels.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="keep one of them"):
        read_labels(tmp_path)
    (tmp_path / "labels.tsv").unlink()
    with pytest.raises(DataError, match=r"labels.jsonl:1: expected a JSON object"):
        read_labels(tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"image": "p.png", "text": ["line one", "line two"]}', r"'text' is an array; .*\\n"),
        ('{"image": "p.png", "text": null}', "'text' is null; it must be a string"),
        ('{"image": 5, "text": "five"}', r"'image' is a number; it must be a string \(the image"),
    ],
)
def test_a_jsonl_value_that_is_no_string_names_the_row(
    tmp_path: Path, row: str, message: str
) -> None:
    """A page's lines given as a list (or a null text) crashed the folder's checks."""
    (tmp_path / "labels.jsonl").write_text(row + "\n")
    with pytest.raises(DataError, match=r"labels.jsonl:1: " + message):
        read_labels(tmp_path)


@pytest.mark.parametrize(
    ("name", "row"),
    [("labels.tsv", b"b.png\tcaf\xe9"), ("labels.jsonl", b'{"image": "b.png", "text": "caf\xe9"}')],
)
def test_a_labels_file_not_in_utf8_names_the_line_and_byte(
    tmp_path: Path, name: str, row: bytes
) -> None:
    """Latin-1 (as some editors save): one clear line, not a UnicodeDecodeError."""
    first = b"a.png\tok\n" if name.endswith(".tsv") else b'{"image": "a.png", "text": "ok"}\n'
    (tmp_path / name).write_bytes(first + row + b"\n")
    with pytest.raises(DataError, match=rf"{name}:2: not UTF-8 \(byte 0xe9\); save it as UTF-8"):
        read_labels(tmp_path)


def test_a_byte_order_mark_is_no_part_of_the_first_image_name(tmp_path: Path) -> None:
    """Notepad and Excel start UTF-8 files with one; Excel also ends lines with CRLF."""
    (tmp_path / "labels.tsv").write_bytes(b"\xef\xbb\xbfa.png\tone\r\nb.png\ttwo\r\n")
    rows = read_labels(tmp_path)
    assert [(r.image, r.text) for r in rows] == [
        (tmp_path / "a.png", "one"),
        (tmp_path / "b.png", "two"),
    ]
    (tmp_path / "labels.tsv").unlink()
    (tmp_path / "labels.jsonl").write_bytes(b'\xef\xbb\xbf{"image": "c.png", "text": "three"}\n')
    assert [r.image for r in read_labels(tmp_path)] == [tmp_path / "c.png"]
