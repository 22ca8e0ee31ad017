"""CER gain and cost of beam search (with and without a character LM) on a trained line model.

Runs the model once over a line dataset's test (or val) split, then decodes the same
log-probabilities greedily, with beam search, and with beam search plus a character
n-gram LM, printing CER, WER and decoding ms/line side by side.

The LM must not have seen the test sentences. Two LMs are measured:

- ``brown``: built from the Brown corpus in ``../shared/corpora`` (evaluation only), a
  text independent of the package's corpus that the synthetic test lines are cut from;
- ``corpus, held out``: what ``Recognizer(lm="default")`` uses — the shipped corpus —
  minus every sentence that shares a run of four words with a test line, so the LM
  knows the test lines' language but not their sentences.

The dataset is the one the model's training config names (same arguments and seed).
With ``--width-search`` every line is also read at 0.85x and 1.25x its width and each
decoder keeps its most confident reading, as ``Recognizer(width_search=True)`` does:
the figures of every option together (ms/line then counts the three decodings).

    python benchmarks/decoding_gain.py --model src/text_recognizer/assets/models/line.onnx
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from text_recognizer.charset import Charset
from text_recognizer.data.sources.corpus import load_sentences
from text_recognizer.decoding import CharNgramLm, beam_search_decode, greedy_ctc_decode
from text_recognizer.metrics import cer, wer
from text_recognizer.recognizer import WIDTH_SEARCH, OnnxModel, _scale_width
from text_recognizer.training.config import load_config
from text_recognizer.training.run import build_datamodule

BROWN = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "brown_sentences.txt.gz"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "lines_crnn.yaml"
RUN = 4  # words: a sentence sharing a run this long with a test line is left out of the LM


def word_runs(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + RUN]) for i in range(len(words) - RUN + 1)}


def corpus_without(lines: Iterable[str]) -> tuple[list[str], int]:
    """The shipped corpus minus sentences sharing a run of ``RUN`` words with ``lines``."""
    held_out = set().union(*(word_runs(line) for line in lines))
    sentences = load_sentences("default")
    kept = [s for s in sentences if held_out.isdisjoint(word_runs(s))]
    return kept, len(sentences) - len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="line .onnx")
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="the model's training config (its data)"
    )
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument(
        "--weights", type=float, nargs="+", default=[0.3, 0.6, 1.0, 1.5, 2.0], help="LM weights"
    )
    parser.add_argument(
        "--brown", type=Path, default=BROWN, help="gzipped Brown text, one sentence per line"
    )
    parser.add_argument("--order", type=int, default=6, help="n-gram order of both LMs (2-6)")
    parser.add_argument("--beam", type=int, default=10, help="beam size")
    parser.add_argument(
        "--width-search", action="store_true", help="read every line at WIDTH_SEARCH's widths"
    )
    args = parser.parse_args()
    if not args.brown.is_file():  # before the model reads every line, not after
        parser.error(f"{args.brown} not found; pass --brown (in shared/corpora)")
    factors = WIDTH_SEARCH if args.width_search else (1.0,)

    model = OnnxModel(args.model, threads=1)
    charset = Charset.from_tokens(model.meta["charset"])
    config = load_config(args.config)
    data = build_datamodule(config)
    # Loads (and builds, if missing) only this split: no training cache for a test score.
    data.setup({"val": "validate", "test": "test"}[args.split])
    dataset = getattr(data, f"data_{args.split}")
    items = [dataset[i] for i in range(min(args.lines, len(dataset)))]  # type: ignore[arg-type]
    references = [charset.decode(t.tolist()) for _, t in items]
    views = []  # per width factor, per line: (log-probabilities, frames)
    for factor in factors:
        view = []
        for image, _ in items:
            line = _scale_width(image.numpy()[0], factor)
            lp, n = model.line_log_probs(
                line[None, None], np.array([line.shape[-1]], dtype=np.int64)
            )
            view.append((lp[0], int(n[0])))
        views.append(view)

    with gzip.open(args.brown, "rt", encoding="utf-8") as f:
        brown = CharNgramLm.build((line.strip() for line in f), order=args.order)
    kept, dropped = corpus_without(references)
    shipped = CharNgramLm.build(kept, order=args.order)

    def run(name: str, decode) -> None:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        texts = []
        for i in range(len(references)):
            readings = [decode(view[i][0][None], np.array([view[i][1]]))[0] for view in views]
            texts.append(max(readings, key=lambda reading: reading[1])[0])  # most confident
        ms = (time.perf_counter() - start) * 1000 / len(texts)
        print(f"{name:<40}{cer(texts, references):>8.4f}{wer(texts, references):>8.4f}{ms:>10.2f}")

    print(
        f"{len(references)} {args.split} lines of {config.data.name}; {args.order}-gram LMs "
        f"from {args.brown.name} and from the shipped corpus minus {dropped} sentences "
        f"sharing {RUN} words with a {args.split} line"
        + (f"; best of widths {'/'.join(f'{f:g}' for f in factors)}" if args.width_search else "")
    )
    print(f"{'decoder':<40}{'CER':>8}{'WER':>8}{'ms/line':>10}")
    run("greedy", lambda lp, n: greedy_ctc_decode(lp, n, charset))
    beam = args.beam
    run(f"beam {beam}", lambda lp, n: beam_search_decode(lp, n, charset, beam_size=beam))
    for name, lm in (("brown", brown), ("corpus, held out", shipped)):
        for weight in args.weights:
            run(
                f"beam {beam} + LM {name} (weight {weight})",
                lambda lp, n, w=weight, lm=lm: beam_search_decode(
                    lp, n, charset, beam_size=beam, lm=lm, lm_weight=w
                ),
            )


if __name__ == "__main__":
    main()
