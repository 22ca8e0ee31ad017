"""How far a line model's confidence can be trusted: ranking, calibration, and what
accepting only the surest lines buys.

Each line's confidence is the model's probability of the text it read, summed over
every CTC alignment (``text_recognizer.decoding.greedy``). A reader who sends the less
sure lines to a person needs two things from it: that it ranks wrong lines below right
ones (AUROC; 0.5 is chance), and that its value means what it says (a line read at 0.8
is exactly right about 80 % of the time). The script reads the synthetic val and test
splits (held-out hands) and, when ``../shared/realdata`` is there, the lines pasted from
real digits and vowels (``realdata_lines.py``), and prints for each:

- CER, the share of lines read exactly, and the AUROC of the confidence against
  "the line is exactly right"; beside it the AUROC of the same probability per
  character (``log p / (characters + 1)``), which forgives long lines;
- the CER of the 50 %, 80 % and 90 % of lines the model is surest of, and how many
  wrong lines it read at 0.9 or more;
- calibration: per confidence band, the lines in it, their mean confidence and the
  share of them read exactly;
- for words (each word's own confidence, ``Word.confidence``): the AUROC against "the
  word is read right" and how often words above 0.5 are, over the lines read with as
  many words as their truth.

    python benchmarks/line_confidence.py --model src/text_recognizer/assets/models/line.onnx
    python benchmarks/line_confidence.py --model ... --beam 10 --lm default
    python benchmarks/line_confidence.py --lines 50    # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from width_sensitivity import (
    add_lines_argument,
    add_set_arguments,
    check_lines,
    real_sets,
    synthetic_sets,
)

from text_recognizer.metrics import cer, confidence_auroc, most_confident
from text_recognizer.recognizer import Recognizer, Result

SHARES = (0.5, 0.8, 0.9)
BANDS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def split_sets(
    num_train: int, seed: int, lines: int | None = None
) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """The synthetic val and test splits whole (``synthetic_sets`` groups them by hand)."""
    merged: dict[str, tuple[list[np.ndarray], list[str]]] = {}
    for name, (images, texts) in synthetic_sets(num_train, seed, lines).items():
        split = name.split(":")[0]
        merged.setdefault(split, ([], []))
        merged[split][0].extend(images)
        merged[split][1].extend(texts)
    return merged


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_arguments(parser)
    add_lines_argument(parser)
    parser.add_argument(
        "--width-search", action="store_true", help="read as Recognizer(width_search=True)"
    )
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--lm", default=None, help="character LM for the beam, e.g. default")
    args = parser.parse_args(argv)
    check_lines(parser, args.lines)

    recognizer = Recognizer.from_pretrained(
        args.model, width_search=args.width_search, beam_size=args.beam, lm=args.lm
    )
    sets = split_sets(args.num_train, args.seed, args.lines)
    sets |= {f"real {k}": v for k, v in real_sets(args.realdata, args.lines).items()}

    shares = " | ".join(f"CER, surest {share:.0%}" for share in SHARES)
    print(
        f"| set | lines | CER | exact lines | AUROC | AUROC per character | {shares} "
        "| wrong lines read at >= 0.9 |"
    )
    print(f"|---|---:|---:|---:|---:|---:|{'---:|' * (len(SHARES) + 1)}")
    calibration, word_rows = [], []
    for name, (images, truths) in sets.items():
        results = recognizer.recognize_batch(images, "line")
        word_rows.append((name, *word_figures(results, truths)))
        texts = [r.text for r in results]
        confidence = np.array([r.confidence for r in results])
        right = np.array([p == t for p, t in zip(texts, truths, strict=True)])
        per_char = np.log(np.clip(confidence, 1e-300, 1.0)) / (np.array(list(map(len, texts))) + 1)
        surest = [most_confident(confidence, share) for share in SHARES]
        cers = " | ".join(
            f"{cer([texts[i] for i in pick], [truths[i] for i in pick]):.3f}" for pick in surest
        )
        sure_but_wrong = int(np.sum(~right & (confidence >= 0.9)))
        print(
            f"| {name} | {len(texts)} | {cer(texts, truths):.3f} | {right.mean():.3f} "
            f"| {fmt(confidence_auroc(confidence, right))} "
            f"| {fmt(confidence_auroc(per_char, right))} | {cers} | {sure_but_wrong} |"
        )
        band = np.digitize(confidence, BANDS[1:-1])
        calibration.append(
            (name, [(confidence[band == b], right[band == b]) for b in range(len(BANDS) - 1)])
        )

    print()
    heads = " | ".join(f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(BANDS))
    print(f"Lines / mean confidence / share read exactly, per confidence band\n\n| set | {heads} |")
    print(f"|---|{'---:|' * (len(BANDS) - 1)}")
    for name, bands in calibration:
        cells = [f"{len(c)} / {c.mean():.2f} / {r.mean():.2f}" if len(c) else "0" for c, r in bands]
        print(f"| {name} | {' | '.join(cells)} |")

    print(
        "\nWords of the lines read with as many words as the truth, each against the word in"
        " its place\n\n| set | words | read right | AUROC | right among words at > 0.5 "
        "(their share) |\n|---|---:|---:|---:|---:|"
    )
    for name, count, right_share, auroc, right_sure, sure_share in word_rows:
        print(
            f"| {name} | {count} | {right_share:.3f} | {fmt(auroc)} | {right_sure:.3f} "
            f"({sure_share:.3f}) |"
        )


def word_figures(
    results: list[Result], truths: list[str]
) -> tuple[int, float, float | None, float, float]:
    """Word confidence against "the word is read right", over the words of the lines read
    with as many words as their truth (the others cannot be paired word by word)."""
    sure, right = [], []
    for result, truth in zip(results, truths, strict=True):
        if len(result.words) == len(truth.split()):
            for word, true_word in zip(result.words, truth.split(), strict=True):
                sure.append(word.confidence)
                right.append(word.text == true_word)
    sure_array, right_array = np.array(sure), np.array(right, dtype=bool)
    above = sure_array > 0.5
    return (
        len(sure),
        float(right_array.mean()),
        confidence_auroc(sure, right),
        float(right_array[above].mean()),
        float(above.mean()),
    )


if __name__ == "__main__":
    main()
