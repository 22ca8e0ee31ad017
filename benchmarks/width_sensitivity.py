"""How much a line model's CER depends on how wide the writing is: stretch inputs, re-read.

Every line of the synthetic validation and test splits (per held-out hand) and the lines
pasted from real characters (``realdata_lines.py``, when ``../shared/realdata`` is there)
is resized horizontally by each factor, keeping its height, and read by the Recognizer.
A model that only knows its fonts' proportions has a sharp minimum near 1.0 for its
training-like hands and a minimum elsewhere for hands that write narrower or wider.

    python benchmarks/width_sensitivity.py --model src/text_recognizer/assets/models/line.onnx
    python benchmarks/width_sensitivity.py --lines 50    # a quick look
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realdata_chars import DEFAULT_REALDATA
from realdata_lines import real_lines_if_there

from text_recognizer.data.cache import read_h5
from text_recognizer.data.synthetic_lines import SyntheticLines
from text_recognizer.metrics import cer
from text_recognizer.recognizer import Recognizer


def stretch(image: np.ndarray, factor: float) -> np.ndarray:
    width = max(8, round(image.shape[1] * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (width, image.shape[0]), interpolation=interpolation)


#: Lines read per real set without ``--lines`` (``realdata_lines.py``'s default).
REAL_LINES = 300


def synthetic_sets(
    num_train: int, seed: int, lines: int | None = None
) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """The val and test splits' lines grouped by hand (builds the caches if missing);
    ``lines``: splits of that many lines (their own, smaller caches) for a quick run."""
    sizes = {} if lines is None else {"num_val": lines, "num_test": lines}
    # stream: caches val/test only
    module = SyntheticLines(num_train=num_train, seed=seed, stream=True, **sizes)
    module.prepare_data()
    sets: dict[str, tuple[list[np.ndarray], list[str]]] = defaultdict(lambda: ([], []))
    for split in ("val", "test"):
        data = read_h5(module.cache_file(split))
        offsets = data["offsets"]
        for i, (text, source) in enumerate(zip(data["texts"], data["sources"], strict=True)):
            images, texts = sets[f"{split}: {source}"]
            images.append(data["images"][:, offsets[i] : offsets[i + 1]])
            texts.append(str(text))
    return dict(sets)


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and the sets it reads: shared with ``line_robustness.py``."""
    parser.add_argument("--model", default="default", help="bundled name, .onnx, .ckpt or run")
    parser.add_argument("--num-train", type=int, default=300_000, help="the splits' cache key")
    parser.add_argument("--seed", type=int, default=42, help="the synthetic data's seed")
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)


def add_lines_argument(parser: argparse.ArgumentParser) -> None:
    """``--lines``, the size of a run: the full sets take minutes to render and read."""
    parser.add_argument(
        "--lines",
        type=int,
        help="N lines per synthetic split and at most N per other set, for a quick run "
        f"(default: the whole splits, 2000 lines each, and {REAL_LINES} per real set)",
    )


def check_lines(parser: argparse.ArgumentParser, lines: int | None) -> None:
    if lines is not None and lines < 1:
        parser.error(f"--lines {lines}: give at least 1 line per set")


def real_sets(realdata: Path, lines: int | None) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """The lines pasted from real characters, ``REAL_LINES`` per set or ``lines`` if fewer."""
    return real_lines_if_there(realdata, min(REAL_LINES, lines or REAL_LINES), 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    add_lines_argument(parser)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.7, 0.85, 1.0, 1.2, 1.45])
    parser.add_argument(
        "--width-search", action="store_true", help="add a column: Recognizer(width_search=True)"
    )
    args = parser.parse_args(argv)
    check_lines(parser, args.lines)

    recognizer = Recognizer.from_pretrained(args.model)
    searching = Recognizer.from_pretrained(args.model, width_search=True)
    sets = synthetic_sets(args.num_train, args.seed, args.lines)
    sets |= {f"real: {k}": v for k, v in real_sets(args.realdata, args.lines).items()}
    columns = [f"x{f:g}" for f in args.factors] + (["width search"] if args.width_search else [])
    print(f"| set | lines | {' | '.join(columns)} |")
    print(f"|---|---:|{'---:|' * len(columns)}")
    for name, (images, texts) in sets.items():
        row = []
        for factor in args.factors:
            results = recognizer.recognize_batch([stretch(im, factor) for im in images], "line")
            row.append(f"{cer([r.text for r in results], texts):.3f}")
        if args.width_search:
            results = searching.recognize_batch(images, "line")
            row.append(f"{cer([r.text for r in results], texts):.3f}")
        print(f"| {name} | {len(texts)} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
