"""Width search: which of a line's readings at several widths to keep.

``Recognizer(width_search=True)`` reads each line at a few horizontal scales and keeps
the reading whose own probability is highest. The readings' probabilities come from
different inputs, so the rule is not the only one possible. This script reads the
synthetic val and test splits and, when ``../shared/realdata`` is there, the lines pasted
from real digits and vowels, and prints the CER of each rule:

- ``width 1``: no search;
- ``most probable`` (shipped): the reading with the highest ``P(reading | its width)``;
- ``per character``: the same probability per character, ``log p / (characters + 1)``;
- ``agreement``: the reading most probable at *every* width, summed in log space
  (``sum_w log P(reading | width w)``: a product of experts);
- ``mixture``: the reading with the highest ``mean_w P(reading | width w)``;
- ``oracle``: the reading closest to the truth (a bound, not a rule).

Every rule chooses among the same greedy readings; each candidate is scored at every
width by the CTC forward algorithm.

    python benchmarks/width_selection.py --model src/text_recognizer/assets/models/line.onnx
    python benchmarks/width_selection.py --lines 50    # a quick look
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).parent))
from line_confidence import split_sets
from width_sensitivity import add_lines_argument, add_set_arguments, check_lines, real_sets

from text_recognizer.charset import Charset
from text_recognizer.decoding.greedy import as_log_probs, greedy_ctc_decode, sequence_confidences
from text_recognizer.images import load_image
from text_recognizer.metrics import cer
from text_recognizer.preprocessing import prepare_line
from text_recognizer.recognizer import WIDTH_SEARCH, Recognizer, _scale_width, pad_lines

RULES = ("width 1", "most probable", "per character", "agreement", "mixture", "oracle")


def log_p(log_probs: np.ndarray, frames: int, text: str, charset: Charset) -> float:
    """``log P(text | one line's frames)`` by the CTC forward algorithm."""
    scores, lengths = as_log_probs(log_probs[None, :frames], [frames])
    p = sequence_confidences(scores, lengths, [charset.encode(text)], charset.blank)[0]
    return float(np.log(max(p, 1e-300)))


def choose(
    recognizer: Recognizer, lines: list[np.ndarray], truths: list[str], factors: list[float]
) -> dict[str, list[str]]:
    model = recognizer.models["line"]
    charset = Charset.from_tokens(model.meta["charset"])
    views = []  # per factor: every line's log-probabilities and frame count
    for factor in factors:
        scaled = [_scale_width(line, factor) for line in lines]
        outputs: list[tuple[np.ndarray, int]] = []
        for start in range(0, len(scaled), 64):
            batch, widths = pad_lines(scaled[start : start + 64])
            log_probs, lengths = model.line_log_probs(batch, widths)
            outputs += [(lp, int(n)) for lp, n in zip(log_probs, lengths, strict=True)]
        views.append(outputs)
    picks: dict[str, list[str]] = {rule: [] for rule in RULES}
    for i, truth in enumerate(truths):
        read = [greedy_ctc_decode(view[i][0][None], [view[i][1]], charset)[0][0] for view in views]
        candidates = list(dict.fromkeys(read))
        # scores[c, w]: log P(candidate c | line i at width w)
        scores = np.array([[log_p(*view[i], c, charset) for view in views] for c in candidates])
        own = [scores[candidates.index(text), w] for w, text in enumerate(read)]
        picks["width 1"].append(read[factors.index(1.0)])
        picks["most probable"].append(read[int(np.argmax(own))])
        per_char = [p / (len(text) + 1) for p, text in zip(own, read, strict=True)]
        picks["per character"].append(read[int(np.argmax(per_char))])
        picks["agreement"].append(candidates[int(np.argmax(scores.sum(axis=1)))])
        picks["mixture"].append(candidates[int(np.argmax(np.logaddexp.reduce(scores, axis=1)))])
        picks["oracle"].append(min(candidates, key=lambda c: Levenshtein.distance(c, truth)))
    return picks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(parser)
    add_lines_argument(parser)
    parser.add_argument("--factors", type=float, nargs="+", default=list(WIDTH_SEARCH))
    args = parser.parse_args(argv)
    if 1.0 not in args.factors:
        parser.error("--factors must include 1")
    check_lines(parser, args.lines)

    recognizer = Recognizer.from_pretrained(args.model)
    sets = split_sets(args.num_train, args.seed, args.lines)
    sets |= {f"real {k}": v for k, v in real_sets(args.realdata, args.lines).items()}
    print(f"factors {' / '.join(f'{f:g}' for f in args.factors)}\n")
    print(f"| set | {' | '.join(RULES)} |\n|---|{'---:|' * len(RULES)}")
    for name, (images, truths) in sets.items():
        height = int(recognizer.models["line"].meta["input_height"])
        lines = [prepare_line(load_image(image), height) for image in images]  # as Recognizer
        picks = choose(recognizer, lines, truths, args.factors)
        print(f"| {name} | {' | '.join(f'{cer(picks[r], truths):.4f}' for r in RULES)} |")


if __name__ == "__main__":
    main()
