"""Atomic writes: the old file or the new, never half of one, and no temp file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from text_recognizer import files
from text_recognizer.files import write_text_atomic


def test_a_file_is_written_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "new" / "labels.tsv"
    write_text_atomic(path, "a\tb\n")
    write_text_atomic(path, "ü\n")
    assert path.read_text(encoding="utf-8") == "ü\n"
    assert [p.name for p in path.parent.iterdir()] == ["labels.tsv"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("old\n")

    def torn(self: Path, text: str, encoding: str) -> int:
        with self.open("w") as f:
            f.write(text[:2])
        raise OSError("disk full")

    monkeypatch.setattr(files.Path, "write_text", torn)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "new contents\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.tsv"]


def test_a_long_name_is_written_where_it_fits(tmp_path: Path) -> None:
    """The temp file ``.<name>.<pid>.tmp`` of a 245-byte name was over the 255 bytes a file
    name may have, so a file that fits could not be written (nor checked writable)."""
    from text_recognizer.files import check_writable

    names = ["a" * 241 + ".xml", "é" * 120 + "a.xml"]  # 245 bytes, ASCII and not
    for name in names:
        path = tmp_path / name
        check_writable(path)
        write_text_atomic(path, "x\n")
        assert path.read_text(encoding="utf-8") == "x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temp file left


def test_long_names_alike_but_at_their_ends_get_temp_files_of_their_own(tmp_path: Path) -> None:
    first, second = (files.temp_beside(tmp_path / ("b" * 250 + end)) for end in ("1", "2"))
    assert first != second
    assert max(len(os.fsencode(first.name)), len(os.fsencode(second.name))) <= files.NAME_MAX
