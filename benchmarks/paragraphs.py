"""Pages: how often their lines are all found, and what reading a page costs over its lines.

Synthetic pages (the default): composed as the ``synthetic_paragraphs`` dataset composes
its test pages (``text_recognizer.data.synthetic_paragraphs.compose_pages``): the
``synthetic_lines`` test split's lines (held-out hands), grouped by hand, ``--lines`` to a
page, pasted 0.95-1.4 line heights apart at twice their size on white paper and turned by
up to ``--tilt`` degrees; with the same seed and layout they are that dataset's test pages
(``--data-arg lines_per_page=6 --data-arg num_test=100``). Each page is read with
``Recognizer(kind="paragraph")`` and its lines one by one from their own images; the CER
of the pages (lines joined by newlines) against that of the lines alone is what finding
the lines costs.

IAM (``--iam data/iam/iamdb.zip``): the handwritten part of every test form of the IAM
lines split, whose lines the XML lists; the same lines read alone are the ``iam_lines``
crops. Needs the archive (``text-recognizer data download iam_lines``).

Pages of real handwriting's lines (``--line-folder DIR``): lines of a labelled folder,
such as the lines of real characters ``realdata_lines.py --write-folder`` writes, made
into pages as the synthetic ones.

Your own pages (``--folder DIR``): images and a ``labels.jsonl`` whose texts hold the
lines joined by newlines (``{"image": "page.jpg", "text": "first line\\nsecond"}``);
there are no line crops to read alone, so that column is left out.

Transcribed pages in PAGE XML (``--page-xml DIR``: a Transkribus or eScriptorium export):
each page's transcribed lines, in document order, are its truth, and the lines cut along
their polygons (as ``text-recognizer data import-page`` cuts them) are read alone.

    python benchmarks/paragraphs.py --pages 100 --lines 6
    python benchmarks/paragraphs.py --iam data/iam/iamdb.zip
    python benchmarks/paragraphs.py --line-folder /tmp/real/digits --pages 60 --lines 5
    python benchmarks/paragraphs.py --folder my_pages
    python benchmarks/paragraphs.py --page-xml my_export

``--scale F`` reads every page resized by F (composed pages' lines are 64 px high, so
``--scale 0.5`` gives lines of the line model's 32 px): what a page's resolution costs.
``--write-folder DIR`` also saves the pages (scaled, not turned), with a ``labels.jsonl``
of their texts, so that ``text-recognizer evaluate MODEL --data folder --data-arg path=DIR
--data-arg kind=paragraph --split all`` scores the same pages (its CER is the "pages read
whole" one, upright).

Which ways round: ``--turn 90`` (or 180, 270) gives every page, and every line read
alone, turned that many degrees counter-clockwise (``--turned``: 180). ``--orientation``
reads as ``recognize --orientation`` does (default ``sideways``, as the Recognizer's;
``--upside-down`` is ``any``); given several, each page is read in each, one after the
other, so that their times are measured side by side. Each prints how many pages and
lines alone were read from another way round than the one they were given in (told by
their lines' baselines: a false turn where it is upright), and the range of the pages'
edge ratio (``segmentation.sideways_evidence``: over 1 is a page on its side);
``--evidence-only`` prints that alone, reading nothing.

    python benchmarks/paragraphs.py --pages 100 --lines 6 --seed 11 --turn 90
    python benchmarks/paragraphs.py --seed 11 --orientation upright sideways any
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from text_recognizer.data.synthetic_paragraphs import (
    LineMaterial,
    PageLayout,
    SyntheticParagraphs,
    compose_pages,
    scale_page,
)
from text_recognizer.metrics import cer
from text_recognizer.recognizer import ORIENTATIONS, Recognizer, Result
from text_recognizer.segmentation import sideways_evidence

Page = tuple[np.ndarray, list[np.ndarray], list[str]]


def synthetic_lines() -> LineMaterial:
    """The synthetic test split's lines (the shipped line model's held-out hands), grouped
    by hand: those ``synthetic_paragraphs`` composes its test pages of."""
    return SyntheticParagraphs().material("test")


def folder_lines(folder: Path) -> LineMaterial:
    """A labelled folder's lines (e.g. ``realdata_lines.py --write-folder``), one group."""
    from text_recognizer.images import load_image
    from text_recognizer.labels import read_labels
    from text_recognizer.preprocessing import normalize_polarity

    rows = read_labels(folder)
    images = [255 - normalize_polarity(load_image(row.image)) for row in rows]
    return LineMaterial(images, [row.text for row in rows], {folder.name: list(range(len(rows)))})


def composed(material: LineMaterial, count: int, layout: PageLayout, seed: int) -> Iterator[Page]:
    """``synthetic_paragraphs``' pages (:func:`compose_pages`), with their lines' own images."""
    for page in compose_pages(material, count, layout, seed):
        yield page.image, page.lines, page.texts


def iam_pages(archive_path: Path) -> Iterator[Page]:
    from text_recognizer.data.sources.iam import IamArchive

    with IamArchive(archive_path) as archive:
        forms = archive.forms()
        splits = archive.splits(forms)
        for form in forms:
            if splits.get(form.id) == "test":
                page, _ = archive.paragraph(form)
                crops = list(archive.line_crops(form))
                yield page, [crop for _, crop in crops], [line.text for line, _ in crops]


def folder_pages(folder: Path) -> Iterator[Page]:
    from text_recognizer.images import load_image
    from text_recognizer.labels import read_labels

    for row in read_labels(folder):
        yield load_image(row.image), [], row.text.split("\n")


def page_xml_pages(folder: Path) -> Iterator[Page]:
    from text_recognizer.data.page_lines import cut_line, page_files, plain_text
    from text_recognizer.errors import ImageError
    from text_recognizer.images import load_image
    from text_recognizer.page_xml import read_page_xml
    from text_recognizer.preprocessing import prepare_line

    for file in page_files([folder]):
        page = read_page_xml(file)
        if page.image is None:
            raise SystemExit(f"{file}: its image {page.image_name!r} is not beside it")
        grey = load_image(page.image)
        crops, texts = [], []
        for line in page.lines_on((grey.shape[1], grey.shape[0])):
            text, crop = plain_text(line.text), cut_line(grey, line.polygon)
            try:
                if text and crop is not None and prepare_line(crop, 32) is not None:
                    crops.append(crop)
                    texts.append(text)
            except ImageError:  # a transcription over blank paper: the export's mistake
                print(f"{file}: line {line.id} holds no ink; left out", file=sys.stderr)
        if texts:
            yield grey, crops, texts


def read_turn(result: Result) -> int | None:
    """Which way round ``result`` was read: the degrees (0, 90, 180, 270, counter-clockwise)
    its lines' baselines, left to right, point in the image as given; None if no line."""
    vectors = [
        (x1 - x0, y0 - y1)  # rows grow downwards; angles counter-clockwise
        for line in result.lines or [result]
        if line.baseline is not None
        for (x0, y0), (x1, y1) in [line.baseline]
    ]
    if not vectors:
        return None
    dx, dy = np.sum(vectors, axis=0)
    return round(float(np.degrees(np.arctan2(dy, dx))) / 90) % 4 * 90


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    source = parser.add_mutually_exclusive_group()  # one source of pages, not the first given
    source.add_argument("--iam", type=Path, help="IAM's iamdb.zip: its test forms as pages")
    source.add_argument("--folder", type=Path, help="your pages: images and labels.jsonl")
    source.add_argument("--page-xml", type=Path, help="transcribed pages: a PAGE XML export")
    source.add_argument(
        "--line-folder", type=Path, help="compose pages of a labelled folder's line images"
    )
    parser.add_argument(
        "--pages",
        type=int,
        help="pages composed (default 100); of --iam, --folder or --page-xml: the first N "
        "(default: all)",
    )
    parser.add_argument("--lines", type=int, default=6, help="lines per synthetic page")
    parser.add_argument("--tilt", type=float, default=2.0, help="largest tilt, degrees")
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=2,
        default=(0.95, 1.4),
        metavar=("LOW", "HIGH"),
        help="composed pages: line pitch range, in line heights (under 1: lines overlap)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="read every page resized by this factor"
    )
    parser.add_argument(
        "--write-folder", type=Path, help="also save the pages and a labels.jsonl there"
    )
    parser.add_argument(
        "--orientation",
        nargs="+",
        choices=ORIENTATIONS,
        help="read as `recognize --orientation` does (default: sideways); several: each, "
        "side by side",
    )
    parser.add_argument(
        "--upside-down", action="store_true", help="`--orientation any`, as `recognize` takes it"
    )
    parser.add_argument(
        "--turn",
        type=int,
        nargs="+",
        choices=(0, 90, 180, 270),
        default=[0],
        help="give pages and lines turned this many degrees counter-clockwise; several: "
        "each page given each way, side by side",
    )
    parser.add_argument("--turned", action="store_true", help="--turn 180")
    parser.add_argument(
        "--evidence-only", action="store_true", help="only the pages' edge ratios: read nothing"
    )
    args = parser.parse_args(argv)
    turns = [180] if args.turned else args.turn
    orientations = args.orientation or ["any" if args.upside_down else "sideways"]

    recognizers = {o: Recognizer.from_pretrained(args.model, orientation=o) for o in orientations}
    composing = not (args.iam or args.folder or args.page_xml)
    if args.iam:
        pages = iam_pages(args.iam)
    elif args.folder:
        pages = folder_pages(args.folder)
    elif args.page_xml:
        pages = page_xml_pages(args.page_xml)
    else:
        material = folder_lines(args.line_folder) if args.line_folder else synthetic_lines()
        low, high = args.spacing
        layout = PageLayout((args.lines, args.lines), (low, high), args.tilt, args.scale)
        pages = composed(material, args.pages or 100, layout, args.seed)
    if args.pages is not None:
        pages = itertools.islice(pages, args.pages)
    tally = {(o, turn): Tally() for turn in turns for o in orientations}
    ratios: dict[int, list[float]] = {turn: [] for turn in turns}
    truths = []
    labels = []
    # IAM's test forms take minutes: show that pages are being read.
    for page, lines, texts in tqdm(pages, desc="pages", unit="page", leave=False):
        truths.append("\n".join(texts))
        if not composing:  # composed pages are scaled as they are composed
            page = scale_page(page, args.scale)
        if args.write_folder:
            labels.append(write_page(args.write_folder, len(truths) - 1, page, truths[-1]))
        for turn in turns:
            given, given_lines = turned(page, turn), [turned(line, turn) for line in lines]
            ratios[turn].append(sideways_evidence(given).edge_ratio)
            if args.evidence_only:
                continue
            for orientation, recognizer in recognizers.items():
                tally[orientation, turn].read(recognizer, given, given_lines, len(texts), turn)
    if not truths:
        raise SystemExit("no pages to read: the source holds none, or --pages is 0")
    if args.write_folder:
        (args.write_folder / "labels.jsonl").write_text("".join(labels))
    count = len(truths)
    print(f"{count} pages, {sum(t.count(chr(10)) + 1 for t in truths)} lines ({args.model})")
    for turn, values in ratios.items():
        low, middle, high = np.percentile(values, [0, 50, 100])
        print(f"given turned {turn} degrees: edge ratio {low:.2f} / {middle:.2f} / {high:.2f} "
              "(lowest / median / highest)")  # fmt: skip
    if args.evidence_only:
        return
    for (orientation, turn), counts in tally.items():
        print(f"--orientation {orientation}, given turned {turn} degrees")
        print(f"pages whose lines were all found: {counts.all_found / count:.3f}")
        print(f"CER, pages read whole:            {cer(counts.pages, truths):.4f}")
        print(f"pages read from another way round: {counts.pages_turned}")
        if args.folder:
            print(f"ms per page:                      {1000 * counts.seconds / count:.0f}")
            continue
        print(f"CER, their lines read alone:      {cer(counts.lines, truths):.4f}")
        print(f"lines alone read from another way round: {counts.lines_turned}")
        print(f"ms per page, whole / lines alone: {1000 * counts.seconds / count:.0f} / "
              f"{1000 * counts.lines_seconds / count:.0f}")  # fmt: skip


def write_page(folder: Path, index: int, page: np.ndarray, text: str) -> str:
    """Save ``page`` (lossless) in ``folder``; its ``labels.jsonl`` row."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"page_{index:04d}.png"
    cv2.imwrite(str(folder / name), page)
    return json.dumps({"image": name, "text": text}) + "\n"


def turned(image: np.ndarray, degrees: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image, degrees // 90)) if degrees else image


class Tally:
    """What one Recognizer read of the pages, and how long it took."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.lines: list[str] = []
        self.all_found = self.pages_turned = self.lines_turned = 0
        self.seconds = self.lines_seconds = 0.0

    def read(
        self,
        recognizer: Recognizer,
        page: np.ndarray,
        lines: list[np.ndarray],
        count: int,
        turn: int,
    ) -> None:
        start = time.perf_counter()
        result = recognizer.recognize(page, kind="paragraph")
        self.seconds += time.perf_counter() - start
        start = time.perf_counter()
        alone = recognizer.recognize_batch(lines, kind="line") if lines else []
        self.lines_seconds += time.perf_counter() - start
        self.all_found += len(result.lines) == count
        self.pages.append(result.text)
        self.lines.append("\n".join(r.text for r in alone))
        self.pages_turned += read_turn(result) not in (turn, None)
        self.lines_turned += sum(read_turn(r) not in (turn, None) for r in alone)


if __name__ == "__main__":
    main()
