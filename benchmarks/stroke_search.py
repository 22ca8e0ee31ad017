"""Stroke search: read each line also with bolder and thinner strokes, keep the surest reading.

The shipped model loses 0.03-0.05 CER on validation when every stroke is a pixel bolder
or thinner (``line_robustness.py``), so reading a line at a few pen widths and keeping
the most probable reading, as width search does with widths, might help hands whose pen
is unlike the fonts'. Strokes are made half a pixel bolder or thinner: dilated or eroded
by 2x2 at twice the resolution, then scaled back. Each line is read at every width
factor of ``WIDTH_SEARCH`` and every stroke variant; each column keeps, per line, the
most probable reading among its cells:

- ``width 1``: no search; ``strokes``: the three pens at width 1;
- ``width search``: the three widths with the line's own pen (shipped, opt-in);
- ``widths + strokes``: both searches side by side (five readings);
- ``grid``: every width with every pen (nine readings).

Sets: the synthetic val and test splits, the lines of real characters (when
``../shared/realdata`` is there) and, with ``--fonts``, 40 lines (``--lines`` if fewer) in
every unseen hand of that folder (see ``unseen_hands.py``).

    python benchmarks/stroke_search.py --fonts /tmp/hands
    python benchmarks/stroke_search.py --lines 50    # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from line_confidence import split_sets
from unseen_hands import find_fonts, render_hand
from width_sensitivity import add_lines_argument, add_set_arguments, check_lines, real_sets

from text_recognizer.charset import Charset
from text_recognizer.decoding.greedy import greedy_ctc_decode
from text_recognizer.images import load_image
from text_recognizer.metrics import cer
from text_recognizer.preprocessing import prepare_line
from text_recognizer.recognizer import WIDTH_SEARCH, Model, Recognizer, _scale_width, pad_lines

HAND_LINES = 40  # per unseen hand, as unseen_hands.py reads them


def half_pixel(operation: Callable[..., np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Dilate or erode by 2x2 at twice the resolution: half a pixel at the line's own."""

    def apply(line: np.ndarray) -> np.ndarray:
        height, width = line.shape
        big = cv2.resize(line, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        big = operation(big, np.ones((2, 2), np.uint8))
        return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA)

    return apply


PENS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as is": lambda line: line,
    "bolder": half_pixel(cv2.dilate),
    "thinner": half_pixel(cv2.erode),
}
COLUMNS: dict[str, list[tuple[float, str]]] = {
    "width 1": [(1.0, "as is")],
    "strokes": [(1.0, pen) for pen in PENS],
    "width search": [(factor, "as is") for factor in WIDTH_SEARCH],
    "widths + strokes": [(factor, "as is") for factor in WIDTH_SEARCH]
    + [(1.0, "bolder"), (1.0, "thinner")],
    "grid": list(itertools.product(WIDTH_SEARCH, PENS)),
}


def read_all(model: Model, lines: list[np.ndarray]) -> dict[tuple[float, str], list]:
    """Greedy ``(text, confidence)`` of every line in every cell (width factor, pen)."""
    charset = Charset.from_tokens(model.meta["charset"])
    readings = {}
    for factor, pen in itertools.product(WIDTH_SEARCH, PENS):
        views = [_scale_width(PENS[pen](line), factor) for line in lines]
        out: list[tuple[str, float]] = []
        for start in range(0, len(views), 64):
            batch, widths = pad_lines(views[start : start + 64])
            out += greedy_ctc_decode(*model.line_log_probs(batch, widths), charset)
        readings[(factor, pen)] = out
    return readings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    add_lines_argument(parser)
    parser.add_argument("--fonts", type=Path, help="a folder of unseen handwriting fonts")
    args = parser.parse_args(argv)
    check_lines(parser, args.lines)
    fonts = find_fonts(args.fonts) if args.fonts else []
    if args.fonts and not fonts:  # before the splits are read, not as a row of 0 lines
        parser.error(f"no usable fonts under {args.fonts}")

    model = Recognizer.from_pretrained(args.model).models["line"]
    height = int(model.meta["input_height"])
    sets = split_sets(args.num_train, args.seed, args.lines)
    sets |= {f"real {k}": v for k, v in real_sets(args.realdata, args.lines).items()}
    if fonts:
        images, texts = [], []
        for font in fonts:
            hand = render_hand(font, min(HAND_LINES, args.lines or HAND_LINES), 0)
            images += hand[0]
            texts += hand[1]
        sets["unseen hands"] = (images, texts)
    print(f"| set | lines | {' | '.join(COLUMNS)} |\n|---|---:|{'---:|' * len(COLUMNS)}")
    for name, (images, truths) in sets.items():
        lines = [prepare_line(load_image(image), height) for image in images]  # as Recognizer
        readings = read_all(model, lines)
        row = []
        for cells in COLUMNS.values():
            picks = [
                max((readings[cell][i] for cell in cells), key=lambda r: r[1])[0]
                for i in range(len(truths))
            ]
            row.append(f"{cer(picks, truths):.4f}")
        print(f"| {name} | {len(truths)} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
