"""Transcribed pages in PAGE XML -> a folder of line images and ``labels.tsv``.

A Transkribus or eScriptorium export, or ``recognize --page-xml`` output corrected by
hand, becomes what the ``folder`` dataset reads (:mod:`text_recognizer.data.folder`): to
measure a model on those pages, or to fine-tune it on them. Each ``TextLine`` is cut
along its polygon (its bounding box, with the paper's local level outside the polygon, so a
neighbour's ascenders stay out) and turned so that its baseline runs left to right (a line
of a page lying on its side, or upside down, is cut upright); its text is written plainly
(curly quotes, dashes and the like as the charset has them, runs of spaces as one).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from text_recognizer.charset import DEFAULT_CHARSET, Charset
from text_recognizer.data.sources.download import bar_disabled
from text_recognizer.errors import DataError, ImageError
from text_recognizer.files import write_text_atomic
from text_recognizer.images import Pages, load_image
from text_recognizer.labels import LABEL_FILES
from text_recognizer.page_xml import MAX_COORDINATE, read_page_xml

log = logging.getLogger(__name__)

#: Typographic characters a transcription may use, as the models' charset writes them.
PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
    }
)


@dataclass
class ImportReport:
    """What an import wrote and what it left out, and why."""

    out: Path
    pages: int = 0
    lines: int = 0
    rescaled: int = 0  # pages whose image has another size than their coordinates
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines
    pages_skipped: list[Path] = field(default_factory=list)  # their image missing or unreadable
    unknown: Counter[str] = field(default_factory=Counter)  # character -> lines holding it

    def summary(self) -> str:
        text = f"{_count(self.lines, 'line')} of {_count(self.pages, 'page')} written to {self.out}"
        reasons = [f"{count} {reason}" for reason, count in sorted(self.skipped.items())]
        if reasons:
            text += "; left out: " + ", ".join(reasons)
        if self.unknown:
            shown = ", ".join(f"{c!r} ({n})" for c, n in self.unknown.most_common(10))
            text += f" (characters the models cannot write: {shown})"
        if self.pages_skipped:
            names = ", ".join(str(path) for path in self.pages_skipped[:3])
            more = f" and {len(self.pages_skipped) - 3} more" if len(self.pages_skipped) > 3 else ""
            text += (
                f"; {_count(len(self.pages_skipped), 'page')} left out, their image missing or "
                f"unreadable: {names}{more}"
            )
        if self.rescaled:
            text += (
                f"; the images of {_count(self.rescaled, 'page')} have another size than "
                "their PAGE files say (imageWidth, imageHeight): their coordinates were "
                "scaled to fit"
            )
        return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def plain_text(text: str) -> str:
    """``text`` with typographic characters as ``PLAIN`` says and whitespace runs as one space."""
    return " ".join(text.translate(PLAIN).split())


def cut_line(
    grey: np.ndarray, polygon: Sequence[tuple[int, int]], dark_ink: bool | None = None
) -> np.ndarray | None:
    """The polygon's bounding box of the page ``grey``, the paper's local level outside
    the polygon; ``None`` where the polygon encloses no area of the image.

    The paper's level is the crop with its ink closed over (``dark_ink``; by default told
    by the page's median: paper is most of a page) by a window half the box's height:
    wider than a stroke, so a neighbour's ink goes, and local, so a photo's uneven light
    leaves no edge along the polygon: the photographed sample page's lines, cut along the
    polygons ``recognize --page-xml`` wrote, read at CER 0.006 so and 0.047 with the
    page's median level outside (``benchmarks/paragraphs.py --page-xml``)."""
    if len(polygon) < 3 or any(abs(v) > MAX_COORDINATE for point in polygon for v in point):
        return None  # too few points, or one on no image (OpenCV's points are int32)
    points = np.array(polygon, np.int32)
    x0, y0 = np.maximum(points.min(axis=0), 0)
    x1, y1 = np.minimum(points.max(axis=0) + 1, (grey.shape[1], grey.shape[0]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    crop = grey[y0:y1, x0:x1].copy()
    inside = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(inside, [points - (x0, y0)], 1)
    if inside.sum() < 4:
        return None
    if dark_ink is None:
        dark_ink = bool(np.median(grey[::4, ::4]) > 127)
    size = max(3, min(crop.shape) // 2 | 1)
    window = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    paper = cv2.morphologyEx(crop, cv2.MORPH_CLOSE if dark_ink else cv2.MORPH_OPEN, window)
    crop[inside == 0] = paper[inside == 0]
    return crop


def upright(line: np.ndarray, baseline: Sequence[tuple[int, int]]) -> np.ndarray:
    """The cut ``line`` turned so that its ``baseline`` (first point to last, the way it
    is written) runs left to right: the lines of a page read on its side or upside down
    (``recognize`` turns such pages, and writes their places in the page as given) are
    written down or up its image. Without a baseline the line is kept as cut."""
    if len(baseline) < 2:
        return line
    dx = baseline[-1][0] - baseline[0][0]
    dy = baseline[-1][1] - baseline[0][1]
    if abs(dy) > abs(dx):  # written down the page (turned clockwise) or up it
        turn = cv2.ROTATE_90_COUNTERCLOCKWISE if dy > 0 else cv2.ROTATE_90_CLOCKWISE
        return cv2.rotate(line, turn)
    return cv2.rotate(line, cv2.ROTATE_180) if dx < 0 else line


def page_files(sources: Sequence[Path]) -> list[Path]:
    """The files among ``sources``, and the PAGE XML files in their folders (recursively;
    an export's other XML, such as Transkribus' ``mets.xml`` and ``metadata.xml``, left
    out), sorted."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files.extend(path for path in sorted(source.rglob("*.xml")) if _is_page_xml(path))
        elif source.is_file():
            files.append(source)
        else:
            raise DataError(f"{source}: no such file or folder")
    if not files:
        raise DataError(
            f"no PAGE XML files (*.xml) in {', '.join(map(str, sources))}: pass the folder "
            "of an export (Transkribus: its page/ folder, or the folder above it)"
        )
    return files


def _is_page_xml(path: Path) -> bool:
    """Whether the file's root element (within its first 4 kB) is PAGE's ``PcGts``."""
    with path.open("rb") as file:
        head = file.read(4096)
    return b"<PcGts" in head or b":PcGts" in head


def import_page_lines(
    sources: Sequence[Path], out: Path, charset: Charset = DEFAULT_CHARSET
) -> ImportReport:
    """Cut every transcribed line of the PAGE files in ``sources`` into ``out`` with a
    ``labels.tsv``. A line without text, or with a character ``charset`` lacks, is left
    out and counted; a page whose image is missing or unreadable is left out with a
    warning, and counted. ``labels.tsv`` is written last, whole or not at all: a stopped import
    leaves none, and can be run again into the same folder."""
    files = page_files(sources)
    held = [out / name for name in LABEL_FILES if (out / name).exists()]
    if held:
        raise DataError(f"{held[0]} exists: import into a new folder, or remove it first")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the folder {out} ({error.strerror or error}): choose another one"
        ) from None
    report = ImportReport(out)
    rows: list[str] = []
    used: set[str] = set()
    for file in tqdm(files, desc="PAGE files", unit="page", disable=bar_disabled()):
        page = read_page_xml(file)
        try:
            if page.image is None:
                raise DataError(
                    f"its image {page.image_name!r} is neither beside it nor one folder up"
                )
            grey = load_page(page.image, page.page)
        except (DataError, ImageError) as error:
            # One stray page of a large export should not cost the others.
            log.warning("%s left out: %s", file, error)
            report.pages_skipped.append(file)
            continue
        dark_ink = bool(np.median(grey[::4, ::4]) > 127)
        report.pages += 1
        size = (grey.shape[1], grey.shape[0])
        report.rescaled += bool(page.size and page.size != size)
        for line in page.lines_on(size):
            text = plain_text(line.text)
            missing = {c for c in text if c not in charset}
            image = cut_line(grey, line.polygon, dark_ink) if text and not missing else None
            if image is not None:
                image = upright(image, line.baseline)
            if not text:
                report.skipped["without text"] += 1
            elif missing:
                report.skipped["with characters the models cannot write"] += 1
                report.unknown.update(missing)
            elif image is None:
                report.skipped["without a polygon inside the image"] += 1
            else:
                name = _unique(f"{file.stem}_{_safe(line.id)}", used)
                if not cv2.imwrite(str(out / name), image):
                    raise DataError(f"could not write {out / name}")
                rows.append(f"{name}\t{text}\n")
                report.lines += 1
    if not rows:
        raise DataError(f"no transcribed line to import: {report.summary()}")
    write_text_atomic(out / "labels.tsv", "".join(rows))
    return report


def load_page(image: Path, page: int | None) -> np.ndarray:
    """The image a PAGE file describes: page ``page`` of a multi-page TIFF where it says
    which (``recognize --page-xml`` writes one file per page), else the image."""
    if page is None:
        return load_image(image)
    with Pages(image) as pages:
        return pages.load(page)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _unique(stem: str, used: set[str]) -> str:
    """``stem.png``, or ``stem-2.png``, ... where two pages share a file name."""
    name, number = f"{stem}.png", 1
    while name in used:
        number += 1
        name = f"{stem}-{number}.png"
    used.add(name)
    return name
