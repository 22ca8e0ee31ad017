"""A partial real-handwriting signal for line models: lines pasted from real characters.

There are no real handwritten *lines* on this machine, only real characters (NIST SD19
vowels, MNIST digits, in ``../shared/realdata``; never train on them, never commit
them). This script pastes them into lines the way a person writes a number or a string
of letters: each character cropped to its ink, scaled to a cap height (lowercase to an
x-height, 'i' with its dot), sat on a common baseline with small random gaps, groups
separated by word spaces, dark ink on white. The line model then reads each line
through the Recognizer exactly as it would a user's scan.

It measures real pen strokes and real letter shapes, not real cursive joins or real
page texture: read it as a lower bound on the gap to real handwriting, not as IAM CER.

    python benchmarks/realdata_lines.py --model src/text_recognizer/assets/models/line.onnx

``--write-folder DIR`` also saves the lines as a labelled folder (never commit it: the
characters are ``../shared`` data), which ``text-recognizer evaluate`` reads directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).parent))
from realdata_chars import DEFAULT_REALDATA, _mnist_labels

from text_recognizer.metrics import cer, char_errors, wer
from text_recognizer.preprocessing import normalize_polarity
from text_recognizer.recognizer import Recognizer

CAP_HEIGHT = 28
X_HEIGHT = 18  # lowercase a e o u
I_HEIGHT = 25  # lowercase i: stem plus dot


def crop_ink(image: np.ndarray) -> np.ndarray:
    bright = normalize_polarity(image).astype(np.float32)
    bright = np.clip(bright - np.median(bright), 0, None)
    rows, cols = np.nonzero(bright > 0.25 * bright.max())
    return bright[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] / bright.max()


def glyph_height(char: str) -> int:
    if char == "i":
        return I_HEIGHT
    return X_HEIGHT if char.islower() else CAP_HEIGHT


def compose(text: str, pools: dict[str, list[np.ndarray]], rng: np.random.Generator) -> np.ndarray:
    """Paste one random real sample per character on a baseline; dark ink on white."""
    canvas = np.zeros((CAP_HEIGHT + 16, 16 + 4 * CAP_HEIGHT * len(text)), dtype=np.float32)
    baseline, x = CAP_HEIGHT + 8, 8
    for char in text:
        if char == " ":
            x += int(rng.integers(12, 20))
            continue
        ink = pools[char][int(rng.integers(len(pools[char])))]
        height = glyph_height(char)
        width = max(2, round(ink.shape[1] * height / ink.shape[0]))
        glyph = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA)
        top = baseline - height + int(rng.integers(-1, 2))
        region = canvas[top : top + height, x : x + width]
        np.maximum(region, glyph, out=region)
        x += width + int(rng.integers(2, 7))
    canvas = canvas[:, : x + 8]
    return (255 - np.clip(canvas * 255, 0, 255)).astype(np.uint8)


def random_text(alphabet: str, rng: np.random.Generator) -> str:
    groups = int(rng.integers(1, 4))
    return " ".join(
        "".join(rng.choice(list(alphabet), int(rng.integers(2, 6)))) for _ in range(groups)
    )


def load_pools(realdata: Path) -> dict[str, dict[str, list[np.ndarray]]]:
    pools: dict[str, dict[str, list[np.ndarray]]] = {}
    for name, filename in (("digits", "mnist_5k.npz"), ("vowels", "nist_sd19_vowels.npz")):
        path = realdata / filename
        if not path.is_file():  # as realdata_chars.py says it, not a numpy traceback
            raise SystemExit(f"{path} not found; pass --realdata pointing at shared/realdata")
        with np.load(path) as data:
            images, labels = data["images"], data["labels"]
        if name == "digits":
            images, labels = _mnist_labels(images, labels)
        pool: dict[str, list[np.ndarray]] = {}
        for image, label in zip(images, labels, strict=True):
            pool.setdefault(str(label), []).append(crop_ink(image))
        pools[name] = pool
    return pools


def real_lines(
    realdata: Path, lines: int, seed: int
) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """``lines`` digit lines and vowel lines: (images, texts) per set, a function of ``seed``."""
    rng = np.random.default_rng(seed)
    sets = {}
    for name, pool in load_pools(realdata).items():
        texts = [random_text("".join(sorted(pool)), rng) for _ in range(lines)]
        sets[name] = ([compose(text, pool, rng) for text in texts], texts)
    return sets


def real_lines_if_there(
    realdata: Path, lines: int, seed: int
) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """:func:`real_lines` where ``realdata`` is a folder; else none, saying so on stderr,
    so that a table missing its real rows is not read as the whole one."""
    if not realdata.is_dir():
        print(
            f"note: no real data at {realdata}: the rows of real characters are left out; "
            "pass --realdata pointing at shared/realdata to add them",
            file=sys.stderr,
        )
        return {}
    return real_lines(realdata, lines, seed)


def confusions(predictions: list[str], texts: list[str], top: int) -> list[list[object]]:
    """The commonest edits from truth to reading, ``[truth, read, count]`` ("" for an
    inserted or deleted character): which errors are shapes alike, which spacing."""
    counts: Counter[tuple[str, str]] = Counter()
    for prediction, text in zip(predictions, texts, strict=True):
        for op in Levenshtein.editops(text, prediction):
            truth = "" if op.tag == "insert" else text[op.src_pos]
            read = "" if op.tag == "delete" else prediction[op.dest_pos]
            counts[truth, read] += 1
    return [[truth, read, n] for (truth, read), n in counts.most_common(top)]


def write_folder(folder: Path, images: list[np.ndarray], texts: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, text) in enumerate(zip(images, texts, strict=True)):
        cv2.imwrite(str(folder / f"line_{i:04d}.png"), image)
        rows.append(f"line_{i:04d}.png\t{text}\n")
    (folder / "labels.tsv").write_text("".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="default", help="bundled name, .onnx, .ckpt or run folder"
    )
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--lines", type=int, default=300, help="lines per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--write-folder",
        type=Path,
        help="also write the lines as PNG + labels.tsv in DIR/digits and DIR/vowels, a "
        "`folder` dataset: text-recognizer evaluate MODEL --data folder "
        "--data-arg path=DIR/digits --split all scores them the same way",
    )
    args = parser.parse_args()

    recognizer = Recognizer.from_pretrained(args.model)
    report = {}
    for name, (images, texts) in real_lines(args.realdata, args.lines, args.seed).items():
        if args.write_folder:
            write_folder(args.write_folder / name, images, texts)
        predictions = [r.text for r in recognizer.recognize_batch(images, kind="line")]
        report[name] = {
            "lines": len(texts),
            "cer": round(cer(predictions, texts), 4),
            "cer_ignoring_case": round(
                cer([p.lower() for p in predictions], [t.lower() for t in texts]), 4
            ),
            "wer": round(wer(predictions, texts), 4),
            "examples": [[t, p] for t, p in zip(texts[:5], predictions[:5], strict=True)],
            "errors": char_errors(predictions, texts)[0],
            "top_confusions": confusions(predictions, texts, 12),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
