"""Lone lines and characters on their side: which the Recognizer turns, and what it costs.

A page lying on its side is measured by ``paragraphs.py --turn 90``; this script reads lone
images, each given upright and turned a quarter turn either way, with
``Recognizer(orientation="sideways")`` (the default) and ``orientation="upright"`` side by
side, as ``--kind`` (auto: as ``recognize`` reads by default; line). Sets: the synthetic
test split's lines (held-out hands), the bundled sample lines and characters, and, where
``--realdata`` holds them, lines pasted from real characters (``realdata_lines.py``) and
the real characters themselves (MNIST digits, NIST vowels: a tall "1" or "I" must stay a
character; characters with ``--kind auto`` only). Per set it prints the CER read upright
and turned, how many upright images were read otherwise than the upright Recognizer reads
them (a false turn), how many turned ones were read the right way round (told by the
line's baseline), the time of each way, side by side, and the lowest width / height of the
upright images' ink (a line's ink over twice as tall as wide is taken to lie on its side).

    python benchmarks/sideways.py --kind auto
    python benchmarks/sideways.py --kind line --limit 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from paragraphs import read_turn, synthetic_lines
from realdata_chars import DEFAULT_REALDATA, _mnist_labels
from realdata_lines import real_lines_if_there

from text_recognizer.images import load_image
from text_recognizer.labels import read_labels
from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer, _ink_aspect

Set = tuple[list[np.ndarray], list[str], bool]  # images, texts, lines (else characters)


def sets(realdata: Path, limit: int, chars: bool) -> dict[str, Set]:
    images, texts, _ = synthetic_lines()
    out: dict[str, Set] = {"synthetic test lines": (images[:limit], texts[:limit], True)}
    for kind in ("lines", "chars") if chars else ("lines",):
        rows = read_labels(SAMPLES_DIR / kind)
        out[f"sample {kind}"] = (
            [load_image(row.image) for row in rows],
            [row.text for row in rows],
            kind == "lines",
        )
    real = real_lines_if_there(realdata, min(limit, 300), 0)
    for name, (lines, line_texts) in real.items():
        out[f"real {name} lines"] = (lines, line_texts, True)
    if not real or not chars:
        return out
    with np.load(realdata / "mnist_5k.npz") as data:
        digits, labels = _mnist_labels(data["images"], data["labels"])
    with np.load(realdata / "nist_sd19_vowels.npz") as data:
        vowels, vowel_labels = data["images"], data["labels"]
    for name, chars, char_texts in (("MNIST", digits, labels), ("NIST", vowels, vowel_labels)):
        keep = np.linspace(0, len(chars) - 1, min(limit, len(chars))).astype(int)
        out[f"real {name} chars"] = (
            [chars[i] for i in keep],
            [str(char_texts[i]) for i in keep],
            False,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--kind", choices=("auto", "line"), default="auto")
    parser.add_argument("--limit", type=int, default=2000, help="images per set at most")
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    args = parser.parse_args()

    sideways = Recognizer.from_pretrained(args.model, orientation="sideways")
    upright = Recognizer.from_pretrained(args.model, orientation="upright")
    print(
        "| set | images | CER upright / turned (upright Recognizer) | CER upright / turned "
        "(sideways) | upright read otherwise | turned read the right way round | "
        "ms upright / sideways, upright images | ms, turned images (sideways) | ink width / "
        "height, lowest |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (images, texts, lines) in sets(
        args.realdata, args.limit, args.kind == "auto"
    ).items():
        read: dict[str, list[str]] = {"up": [], "up turned": [], "side": [], "side turned": []}
        seconds = {"up": 0.0, "side": 0.0, "side turned": 0.0}
        otherwise = right = 0
        for image in images:
            start = time.perf_counter()
            given = upright.recognize(image, kind=args.kind)
            seconds["up"] += time.perf_counter() - start
            start = time.perf_counter()
            result = sideways.recognize(image, kind=args.kind)
            seconds["side"] += time.perf_counter() - start
            read["up"].append(given.text)
            read["side"].append(result.text)
            otherwise += result.text != given.text
            for turns in (1, 3):
                turned = np.ascontiguousarray(np.rot90(image, turns))
                read["up turned"].append(upright.recognize(turned, kind=args.kind).text)
                start = time.perf_counter()
                result = sideways.recognize(turned, kind=args.kind)
                seconds["side turned"] += time.perf_counter() - start
                read["side turned"].append(result.text)
                right += lines and read_turn(result) == 90 * turns
        twice = [text for text in texts for _ in (1, 3)]
        count = len(images)
        ms = {key: 1000 * value / count for key, value in seconds.items()}
        print(
            f"| {name} | {count} | {cer(read['up'], texts):.4f} / "
            f"{cer(read['up turned'], twice):.4f} | {cer(read['side'], texts):.4f} / "
            f"{cer(read['side turned'], twice):.4f} | {otherwise} | "
            f"{f'{right} of {2 * count}' if lines else '-'} | "
            f"{ms['up']:.1f} / {ms['side']:.1f} | {ms['side turned'] / 2:.1f} | "
            f"{min(_ink_aspect(image) for image in images):.2f} |"
        )


if __name__ == "__main__":
    main()
