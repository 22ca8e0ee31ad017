"""A small IAM database laid out exactly as its authors distribute it, extracted.

Each form's lines are drawn with the package's own line renderer (dark ink, scaled to
IAM's ~90 px line height), pasted onto a full-resolution page (2479 px wide, 300 dpi),
and the archives' files are written as they extract into one folder:

- ``formsA-D.tgz`` ...: ``a01-000u.png`` (the page scans, flat);
- ``lines.tgz``: ``a01/a01-000u/a01-000u-00.png`` (each line's box cut from the scan);
- ``ascii.tgz``: ``forms.txt``, ``lines.txt`` (tokenised text, ``|`` between words),
  ``sentences.txt``, ``words.txt``;
- ``xml.tgz``: ``xml/a01-000u.xml`` (text as written, with every word's ink boxes);
- ``largeWriterIndependentTextLineRecognitionTask.zip``: ``trainset.txt``,
  ``testset.txt``, ``validationset1.txt``, ``validationset2.txt``.

:func:`iamdb_zip` packs the same forms as FSDL's ``iamdb.zip`` does.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image

from text_recognizer.data.line_render import LineRenderer
from text_recognizer.data.sources.fonts import list_fonts

PAGE_WIDTH, PAGE_HEIGHT = 2479, 3542  # IAM's scans, 300 dpi
LINE_HEIGHT = 90  # IAM's lines at 300 dpi (lines.txt: a01-000u-00 ... 408 746 1663 91)
FIRST_LINE_Y, LINE_PITCH, LEFT = 750, 170, 300

# form id -> (writer, lines as written). a02-000's writer also wrote the test form and
# a02-000 is in no LWITLRT set, so it is left out of training.
FORMS: dict[str, tuple[str, list[str]]] = {
    "a01-000u": (
        "000",
        ["A MOVE to stop Mr. Gaitskell", "from nominating any more, he", "Labour life; it's said"],
    ),
    "a01-003": ("001", ["Though they may gather", "some Left-wing support, a"]),
    "b01-014": ("002", ["He said he'd go.", "It is \"quite\" so; not"]),
    "c02-000": ("003", ["The house was quiet"]),
    "c02-001": ("003", ["and the night was cold"]),
    "a02-000": ("000", ["Nobody came that day"]),
}  # fmt: skip
TASKS = {
    "testset.txt": ["a01-000u-00", "a01-000u-01", "a01-000u-02"],
    "validationset1.txt": ["a01-003-00", "a01-003-01"],
    "validationset2.txt": ["b01-014-00"],
    "trainset.txt": ["c02-000-00", "c02-001-00"],
}
TEST_LINES = FORMS["a01-000u"][1]
QUOTE = {'"': "&quot;"}  # IAM's XML escapes quotes so


def tokenised(text: str) -> str:
    """``lines.txt``'s form of a line: punctuation and clitics are words of their own."""
    text = re.sub(r"([,;:!?\"])", r" \1 ", text)
    text = re.sub(r"(\w)('d|'s)\b", r"\1 \2", text)
    text = re.sub(r"\.$", " .", text)
    return "|".join(text.split())


def _render(renderer: LineRenderer, text: str, seed: int) -> np.ndarray:
    """``text`` drawn as a dark-ink line ``LINE_HEIGHT`` px high on white paper."""
    line = renderer.render(text, np.random.default_rng(seed)).image  # bright ink, 32 px
    dark = 255 - line
    scale = LINE_HEIGHT / dark.shape[0]
    return cv2.resize(dark, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def write_iam(folder: Path, leave_out: tuple[str, ...] = ()) -> None:
    """Write the fake IAM into ``folder``; ``leave_out`` names parts not extracted
    (``"forms"`` for the scans, ``"xml"``, ``"lines"``, ``"ascii"``, ``"task"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    renderer = LineRenderer(list_fonts("train"), [], texture_seed=0)
    lines_rows, forms_rows, words_rows = [], [], []
    for number, (form_id, (writer, texts)) in enumerate(FORMS.items()):
        page = np.full((PAGE_HEIGHT, PAGE_WIDTH), 250, np.uint8)
        xml_lines = []
        for row, text in enumerate(texts):
            line_id = f"{form_id}-{row:02d}"
            ink = _render(renderer, text, seed=100 * number + row)
            top = FIRST_LINE_Y + row * LINE_PITCH
            height, width = ink.shape
            width = min(width, PAGE_WIDTH - 2 * LEFT)
            page[top : top + height, LEFT : LEFT + width] = ink[:, :width]
            # Two ink components a line, IAM's word boxes in full-resolution pixels.
            middle = LEFT + width // 2
            cmps = [
                (LEFT, top, middle - LEFT, height),
                (middle, top, LEFT + width - middle, height),
            ]
            words = "".join(
                f'<word id="{line_id}-{i:02d}" tag="NN" text="w">'
                f'<cmp x="{x}" y="{y}" width="{w}" height="{h}"/></word>'
                for i, (x, y, w, h) in enumerate(cmps)
            )
            xml_lines.append(
                f'<line id="{line_id}" text="{escape(text, QUOTE)}" segmentation="ok" '
                f'threshold="154" asx="{LEFT}" asy="{top}" dsx="{LEFT}" dsy="{top + height}">'
                f"{words}</line>"
            )
            if "lines" not in leave_out:
                target = folder / form_id.split("-")[0] / form_id / f"{line_id}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(page[top : top + height, LEFT : LEFT + width]).save(target)
            lines_rows.append(f"{line_id} ok 154 2 {LEFT} {top} {width} {height} {tokenised(text)}")
            words_rows.append(f"{line_id}-00 ok 154 {LEFT} {top} {width} {height} NN w")
        forms_rows.append(f"{form_id} {writer} 2 prt {len(texts)} {len(texts)} 10 8")
        if "forms" not in leave_out:
            Image.fromarray(page).save(folder / f"{form_id}.png")
        if "xml" not in leave_out:
            (folder / "xml").mkdir(exist_ok=True)
            (folder / "xml" / f"{form_id}.xml").write_text(
                '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
                f'<form created="2002-03-20" height="{PAGE_HEIGHT}" id="{form_id}" '
                f'width="{PAGE_WIDTH}" writer-id="{writer}">\n<machine-printed-part>\n'
                + "".join(f'<machine-print-line text="{escape(t, QUOTE)}"/>\n' for t in texts)
                + "</machine-printed-part>\n<handwritten-part>\n"
                + "\n".join(xml_lines)
                + "\n</handwritten-part>\n</form>\n",
                encoding="latin-1",
            )
    if "ascii" not in leave_out:
        header = (
            "#--- lines.txt ---------------------------------------------------------------#\n"
            "# format: a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop|Mr.|Gaitskell|from\n"
        )
        (folder / "lines.txt").write_text(header + "\n".join(lines_rows) + "\n")
        (folder / "forms.txt").write_text("# forms.txt\n" + "\n".join(forms_rows) + "\n")
        (folder / "words.txt").write_text("# words.txt\n" + "\n".join(words_rows) + "\n")
        (folder / "sentences.txt").write_text("# sentences.txt\n")
    if "task" not in leave_out:
        for name, ids in TASKS.items():
            (folder / name).write_text("".join(f"{i}\n" for i in ids))


def iamdb_zip(folder: Path) -> bytes:
    """The forms of ``folder`` (written by :func:`write_iam`) as FSDL's ``iamdb.zip`` holds
    them: ``iamdb/forms/<form>.jpg`` at half resolution, ``iamdb/xml``, ``iamdb/task``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for form_id in FORMS:
            with Image.open(folder / f"{form_id}.png") as scan:
                half = scan.resize((scan.width // 2, scan.height // 2), Image.Resampling.LANCZOS)
            encoded = io.BytesIO()
            half.save(encoded, "JPEG", quality=90)
            archive.writestr(f"iamdb/forms/{form_id}.jpg", encoded.getvalue())
            archive.writestr(
                f"iamdb/xml/{form_id}.xml", (folder / "xml" / f"{form_id}.xml").read_bytes()
            )
        for name in TASKS:
            archive.writestr(f"iamdb/task/{name}", (folder / name).read_bytes())
    return out.getvalue()
