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
    with pytest.raises(DataError, match=r"labels.tsv:1: expected 'image<TAB>text', got 3 fields"):
        read_labels(tmp_path)
    (tmp_path / "labels.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="keep one of them"):
        read_labels(tmp_path)
    (tmp_path / "labels.tsv").unlink()
    with pytest.raises(DataError, match=r"labels.jsonl:1: expected a JSON object"):
        read_labels(tmp_path)
