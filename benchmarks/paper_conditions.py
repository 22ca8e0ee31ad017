"""Paper as photographed: ruled lines, and uneven light, on the bundled sample lines.

Rules: each sample line is drawn twice as large on white paper with a grey rule two
pixels thick below it, through it (where the text sits) or above and below it, and read
with and without the rule eraser (``preprocessing.erase_rules``); then a page of all
eight lines with a rule under every line and more below the text, level and turned 2
degrees. Frames: a dark border round the lines and the page (a scanner's edge, the desk
under a photographed page), cut away or not (``preprocessing.trim_frame``). Light: the
lines and that page (without rules) lit unevenly, a gradient to half
brightness across the image or a shadow darkening a patch by 45 %, read with and without
the local paper level (``preprocessing.subtract_paper``). Black and white: the lines and
the page thresholded (Otsu), as a fax or a scanner's text mode writes them, and
dithered (Floyd-Steinberg).

    python benchmarks/paper_conditions.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pages: the page builders

from tests.pages import (
    SAMPLE_NAMES,
    TRUTHS,
    compose_page,
    draw_rules,
    lit,
    on_margin,
    sample_line,
)

from text_recognizer import preprocessing, segmentation
from text_recognizer import recognizer as recognizer_module
from text_recognizer.metrics import cer
from text_recognizer.preprocessing import rotate
from text_recognizer.recognizer import Recognizer


def lines(where: str) -> list[np.ndarray]:
    out = []
    for index in range(len(SAMPLE_NAMES)):
        line = on_margin(sample_line(index, scale=2.0))
        height = line.shape[0] - 30
        rows = {
            "none": [],
            "below": [15 + height + 5],
            "through": [15 + int(0.72 * height)],
            "above and below": [8, 15 + height + 5],
        }[where]
        out.append(draw_rules(line, rows))
    return out


def notebook(tilt: float) -> tuple[np.ndarray, str]:
    page, truths = compose_page(list(range(len(SAMPLE_NAMES))), pitch=40)
    paper = np.full((page.shape[0] + 200, page.shape[1]), 255, np.uint8)
    paper[: page.shape[0]] = page
    ruled = draw_rules(paper, list(range(32 + 56, paper.shape[0] - 2, 80)))
    if tilt:
        ruled = 255 - rotate(255 - ruled, tilt).astype(np.uint8)
    return ruled, "\n".join(truths)


def main(argv: list[str] | None = None) -> None:
    # No options, but ``--help`` should say what this runs rather than run it.
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    recognizer = Recognizer.from_pretrained()
    truths = [TRUTHS[name] for name in SAMPLE_NAMES]
    rules(recognizer, truths)
    print()
    light(recognizer, truths)
    print()
    frames(recognizer, truths)
    print()
    bilevel(recognizer, truths)


def bilevel(recognizer: Recognizer, truths: list[str]) -> None:
    """Black and white scans (a fax, a scanner's text mode): the lines at 1, 2 and 3 times
    their size (32 px high: the model's own height, then a scan's) and the page of all
    eight, thresholded by Otsu's method, against the same in grey."""

    def black_and_white(grey: np.ndarray) -> np.ndarray:
        return cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]

    def dithered(grey: np.ndarray) -> np.ndarray:  # Pillow's Floyd-Steinberg
        return np.asarray(Image.fromarray(grey).convert("1").convert("L"))

    converts = (lambda grey: grey, black_and_white, dithered)
    print("| image | grey | black and white (Otsu) | dithered |")
    print("|---|---:|---:|---:|")
    for scale in (1.0, 2.0, 3.0):
        images = [on_margin(sample_line(i, scale=scale)) for i in range(len(SAMPLE_NAMES))]
        row = []
        for convert in converts:
            read = recognizer.recognize_batch([convert(i) for i in images], kind="line")
            row.append(f"{cer([r.text for r in read], truths):.3f}")
        print(f"| lines at {scale:g}x | {' | '.join(row)} |")
    page, page_truths = compose_page(list(range(len(SAMPLE_NAMES))), pitch=40)
    page_truth = "\n".join(page_truths)
    row = []
    for convert in converts:
        whole = recognizer.recognize(convert(page), kind="paragraph")
        row.append(f"{cer([whole.text], [page_truth]):.3f} ({len(whole.lines)} lines)")
    print(f"| page of the 8 lines at 2x | {' | '.join(row)} |")


def frames(recognizer: Recognizer, truths: list[str]) -> None:
    """A dark frame (level 50) round the lines (``width`` px) and the page (4x as wide)."""
    page, page_truths = compose_page(list(range(len(SAMPLE_NAMES))), pitch=40)
    page_truth = "\n".join(page_truths)
    # Lines are trimmed with trim_frame, pages with trim_page (the sheet found, then
    # trim_frame): both are switched off for the "kept" columns, wherever imported.
    where = [(module, name) for module in (preprocessing, segmentation, recognizer_module)
             for name in ("trim_frame", "trim_page") if hasattr(module, name)]  # fmt: skip
    trims = [getattr(module, name) for module, name in where]

    def untrimmed(grey: np.ndarray) -> tuple[np.ndarray, int, int]:
        return grey, 0, 0

    print("| dark frame | lines: cut away | lines: kept | page: cut away | page: kept |")
    print("|---|---:|---:|---:|---:|")
    for width in (0, 1, 15):
        images = [frame(on_margin(sample_line(i, scale=2.0)), width) for i in range(8)]
        row = []
        for kept in (False, True):
            for (module, name), trim in zip(where, trims, strict=True):
                setattr(module, name, untrimmed if kept else trim)
            read = recognizer.recognize_batch(images, kind="line")
            whole = recognizer.recognize(frame(page, 4 * width), kind="paragraph")
            row += [
                f"{cer([r.text for r in read], truths):.3f}",
                f"{cer([whole.text], [page_truth]):.3f} ({len(whole.lines)} lines)",
            ]
        for (module, name), trim in zip(where, trims, strict=True):
            setattr(module, name, trim)
        print(f"| {width} px / {4 * width} px | {row[0]} | {row[2]} | {row[1]} | {row[3]} |")


def frame(image: np.ndarray, width: int) -> np.ndarray:
    out = np.full((image.shape[0] + 2 * width, image.shape[1] + 2 * width), 50, np.uint8)
    out[width : width + image.shape[0], width : width + image.shape[1]] = image
    return out


def light(recognizer: Recognizer, truths: list[str]) -> None:
    page, page_truths = compose_page(list(range(len(SAMPLE_NAMES))), pitch=40)
    page_truth = "\n".join(page_truths)
    level = preprocessing.subtract_paper

    def one_level(ink: np.ndarray, window: int | None = None) -> np.ndarray:
        return np.clip(ink - float(np.median(ink)), 0, None)

    print("| light | lines: local paper | lines: one level | page: local paper | page: one level |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("even", "gradient", "shadow"):
        images = [lit(on_margin(sample_line(i, scale=2.0)), kind) for i in range(len(SAMPLE_NAMES))]
        row = []
        for subtract in (level, one_level):
            preprocessing.subtract_paper = subtract
            segmentation.subtract_paper = subtract
            read = recognizer.recognize_batch(images, kind="line")
            whole = recognizer.recognize(lit(page, kind), kind="paragraph")
            row += [
                f"{cer([r.text for r in read], truths):.3f}",
                f"{cer([whole.text], [page_truth]):.3f} ({len(whole.lines)} lines)",
            ]
        preprocessing.subtract_paper = segmentation.subtract_paper = level
        print(f"| {kind} | {row[0]} | {row[2]} | {row[1]} | {row[3]} |")


def rules(recognizer: Recognizer, truths: list[str]) -> None:
    erase = preprocessing.erase_rules
    print("| rules | CER, rules erased | CER, rules kept |")
    print("|---|---:|---:|")
    for where in ("none", "below", "through", "above and below"):
        images = lines(where)
        figures = []
        for eraser in (erase, lambda ink, min_length=None: ink):
            preprocessing.erase_rules = eraser
            read = recognizer.recognize_batch(images, kind="line")
            figures.append(cer([r.text for r in read], truths))
        preprocessing.erase_rules = erase
        print(f"| {where} | {figures[0]:.3f} | {figures[1]:.3f} |")
    for tilt in (0.0, 2.0):
        page, truth = notebook(tilt)
        read = recognizer.recognize(page, kind="paragraph")
        print(
            f"| notebook page, tilt {tilt:g} | {cer([read.text], [truth]):.3f} "
            f"({len(read.lines)} lines found of {truth.count(chr(10)) + 1}) | |"
        )


if __name__ == "__main__":
    main()
