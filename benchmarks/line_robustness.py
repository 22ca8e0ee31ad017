"""How a line model reads lines cut from a page the way real ones come, not as rendered.

Each transform below mimics something real line images have and rendered lines lack; the
table prints CER per set with every line transformed. Sets: samples of the synthetic
validation and test splits (held-out hands) and, when ``../shared/realdata`` is there,
the lines pasted from real characters (``realdata_lines.py``).

- **tilt 2 deg**: the line written at a slight angle; its bounding box is taller than the
  text, so the text shrinks once the box is resized to the model's height.
- **neighbours' ink**: the lowest 6 ink rows of another line over the top rows and the
  highest 6 over the bottom rows, as in a box cut from a page of lines.
- **mark above the box**: one short stroke a half line-height above the text, outside
  its box (a loosely cut line): the crop to the ink grows 1.5x.
- **slant +-**: shear the line right or left (a writer's lean beyond the renderer's).
- **low resolution**: through half the resolution and back (a coarse scan or photo).
- **bolder / thinner**: dilate or erode the strokes by one pixel (pen width).
- **fine pen 0.5 / 1 px**: strokes thinned by half a pixel or one pixel with their grey
  levels kept (``augment.thin_strokes``): a fine pen scanned at the model's height, whose
  strokes come out faint and about a pixel wide rather than broken up.

The Recognizer levels tilted lines (``deskew``) and shears strokes to the lean it reads
best (``deslant``), both on by default; ``--no-deskew`` and ``--no-deslant`` measure
without them.

    python benchmarks/line_robustness.py --model src/text_recognizer/assets/models/line.onnx
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realdata_lines import real_lines_if_there
from width_sensitivity import add_set_arguments, synthetic_sets

from text_recognizer.data.augment import thin_strokes
from text_recognizer.metrics import cer
from text_recognizer.preprocessing import rotate
from text_recognizer.recognizer import Recognizer

Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (line, another line) -> line
RNG = np.random.default_rng(0)  # for augment functions given a fixed amount: never drawn


def ink_rows(line: np.ndarray) -> np.ndarray:
    ink = line.astype(np.float32) - float(np.median(line))
    return np.nonzero(ink.max(axis=1) > 0.25 * max(float(ink.max()), 1.0))[0]


def neighbours(line: np.ndarray, other: np.ndarray, rows: int = 6) -> np.ndarray:
    out = line.copy()
    other_rows = ink_rows(other)
    background = float(np.median(other))
    ink = np.clip(other.astype(np.float32) - background, 0, None)
    above = ink[other_rows[-1] + 1 - rows : other_rows[-1] + 1]  # descenders of the line above
    below = ink[other_rows[0] : other_rows[0] + rows]  # ascenders of the line below
    width = min(line.shape[1], other.shape[1])
    for piece, target in ((above, out[:rows]), (below, out[-rows:])):
        region = target[: piece.shape[0], :width].astype(np.float32)
        merged = np.maximum(region, float(np.median(line)) + piece[:, :width])
        target[: piece.shape[0], :width] = np.clip(merged, 0, 255).astype(out.dtype)
    return out


def mark_above(line: np.ndarray) -> np.ndarray:
    height, width = line.shape
    out = np.full((height + height // 2, width), np.median(line), line.dtype)
    out[height // 2 :] = line
    cv2.line(out, (width // 2, 1), (min(width - 1, width // 2 + 10), 3), int(line.max()), 2)
    return out


def shear(line: np.ndarray, slant: float) -> np.ndarray:
    height, width = line.shape
    extra = int(abs(slant) * height) + 1
    matrix = np.float32([[1, -slant, max(0.0, slant * height)], [0, 1, 0]])
    return cv2.warpAffine(line, matrix, (width + extra, height), borderValue=int(np.median(line)))


def low_resolution(line: np.ndarray) -> np.ndarray:
    height, width = line.shape
    small = cv2.resize(
        line, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


TRANSFORMS: dict[str, Transform] = {
    "as is": lambda line, other: line,
    "tilt 2 deg": lambda line, other: rotate(line, 2.0, int(np.median(line))),
    "neighbours' ink": neighbours,
    "mark above the box": lambda line, other: mark_above(line),
    "slant +0.3": lambda line, other: shear(line, 0.3),
    "slant -0.2": lambda line, other: shear(line, -0.2),
    "low resolution": lambda line, other: low_resolution(line),
    "bolder": lambda line, other: cv2.dilate(line, np.ones((2, 2), np.uint8)),
    "thinner": lambda line, other: cv2.erode(line, np.ones((2, 2), np.uint8)),
    "fine pen 0.5 px": lambda line, other: thin_strokes(line, RNG, (0.5, 0.5)),
    "fine pen 1 px": lambda line, other: thin_strokes(line, RNG, (1.0, 1.0)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    parser.add_argument("--lines", type=int, default=500, help="lines sampled per synthetic split")
    parser.add_argument(
        "--only", nargs="+", choices=TRANSFORMS, metavar="TRANSFORM", help="these rows only"
    )
    parser.add_argument(
        "--no-deskew", action="store_true", help="read lines as they are: Recognizer(deskew=False)"
    )
    parser.add_argument(
        "--no-deslant",
        action="store_true",
        help="keep the strokes' lean as it is: Recognizer(deslant=False)",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sets: dict[str, tuple[list[np.ndarray], list[str]]] = {}
    by_hand = synthetic_sets(args.num_train, args.seed)
    for split in ("val", "test"):
        images, texts = [], []
        for name, (split_images, split_texts) in by_hand.items():
            if name.startswith(split):
                images += split_images
                texts += split_texts
        pick = rng.permutation(len(images))[: args.lines]
        sets[split] = ([images[i] for i in pick], [texts[i] for i in pick])
    for name, (images, texts) in real_lines_if_there(args.realdata, 300, 0).items():
        # Pasted dark on white; the transforms assume bright ink like the caches.
        sets[f"real {name}"] = ([255 - image for image in images], texts)

    recognizer = Recognizer.from_pretrained(
        args.model, deskew=not args.no_deskew, deslant=not args.no_deslant
    )
    print(f"| transform | {' | '.join(sets)} |")
    print(f"|---|{'---:|' * len(sets)}")
    for name, transform in TRANSFORMS.items():
        if args.only and name not in args.only:
            continue
        row = []
        for images, texts in sets.values():
            others = images[1:] + images[:1]
            lines = [transform(image, other) for image, other in zip(images, others, strict=True)]
            results = recognizer.recognize_batch(lines, "line")
            row.append(f"{cer([r.text for r in results], texts):.3f}")
        print(f"| {name} | {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
