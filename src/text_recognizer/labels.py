"""Labels files: the transcription of every image in a folder.

One format for the bundled demo samples and for users' own data (``data/folder.py``):

* ``labels.tsv``: ``image<TAB>text`` per row (no header, no quoting), or
* ``labels.jsonl``: ``{"image": ..., "text": ...}`` per line,

with image paths relative to the labels file. Kept apart from ``data/`` so that reading
the demo's labels does not import the training stack.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from text_recognizer.errors import DataError

LABEL_FILES = ("labels.tsv", "labels.jsonl")


@dataclass(frozen=True)
class Labelled:
    """One row of a labels file: an image and its transcription."""

    image: Path
    text: str
    row: str  # "labels.tsv:12", for messages


def read_labels(folder: Path) -> list[Labelled]:
    """The rows of ``folder``'s labels file (``labels.tsv`` or ``labels.jsonl``)."""
    found = [folder / name for name in LABEL_FILES if (folder / name).is_file()]
    if not found:
        raise DataError(
            f"{folder} has no labels file: add labels.tsv (image<TAB>text per row) or "
            'labels.jsonl ({"image": ..., "text": ...} per line) beside the images'
        )
    if len(found) > 1:
        raise DataError(f"{folder} has both {' and '.join(LABEL_FILES)}: keep one of them")
    path = found[0]
    rows: list[Labelled] = []
    with io.StringIO(_read_utf8(path), newline="") as f:
        if path.suffix == ".tsv":
            for number, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if not row or row == [""]:
                    continue
                if len(row) != 2:
                    hint = (
                        "no tab after the image's name (spaces instead of a tab?)"
                        if len(row) < 2
                        else "a tab in the text? labels.tsv cannot hold one: write the "
                        "texts in labels.jsonl, or replace the tab with a space"
                    )
                    raise DataError(
                        f"{path}:{number}: expected 'image<TAB>text', got {len(row)} fields: {hint}"
                    )
                rows.append(Labelled(folder / row[0], row[1], f"{path.name}:{number}"))
        else:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    image, text = entry["image"], entry["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise DataError(
                        f"{path}:{number}: expected a JSON object with 'image' and 'text' ({error})"
                    ) from None
                for key, value, hint in (
                    ("image", image, "the image's path"),
                    ("text", text, 'a page\'s lines joined by "\\n" in one string'),
                ):
                    if not isinstance(value, str):  # a page's lines as a list, a number
                        raise DataError(
                            f"{path}:{number}: '{key}' is {_json_kind(value)}; it must be a "
                            f"string ({hint})"
                        )
                rows.append(Labelled(folder / image, text, f"{path.name}:{number}"))
    if not rows:
        raise DataError(f"{path} lists no images")
    return rows


def _json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words: ``an array``, ``null``, ``a number``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    kinds = {list: "an array", dict: "an object", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _read_utf8(path: Path) -> str:
    """``path``'s text, without the byte-order mark Notepad and Excel put first (it would
    be part of the first image's name); a clear error naming the line where it is not
    UTF-8."""
    data = path.read_bytes()
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[error.start]:02x}); save it as UTF-8"
        ) from None
