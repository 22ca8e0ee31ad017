"""CER gain and cost of beam search (with and without a character LM) on a trained line model.

Runs the model once over a line dataset's test split, then decodes the same
log-probabilities greedily, with beam search, and with beam search plus a character
n-gram LM, printing CER, WER and decoding ms/line side by side.

The LM must not have seen the test sentences: by default it is built from the Brown
corpus in ``../shared/corpora`` (evaluation only), a text independent of the package's
sentence corpus that the synthetic test lines are cut from.

    python benchmarks/decoding_gain.py --model src/text_recognizer/assets/models/line.onnx
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

from text_recognizer.charset import Charset
from text_recognizer.data import DATASETS
from text_recognizer.decoding import CharNgramLm, beam_search_decode, greedy_ctc_decode
from text_recognizer.metrics import cer, wer
from text_recognizer.recognizer import OnnxModel

BROWN = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "brown_sentences.txt.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="line .onnx")
    parser.add_argument("--data", default="synthetic_lines")
    parser.add_argument(
        "--seed", type=int, default=42, help="the dataset seed the model was trained with"
    )
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument(
        "--lm-text", type=Path, default=BROWN, help="gzipped text, one sentence per line"
    )
    parser.add_argument("--order", type=int, default=6)
    args = parser.parse_args()

    model = OnnxModel(args.model, threads=1)
    charset = Charset.from_tokens(model.meta["charset"])
    data = DATASETS.build(
        args.data, {"num_train": 200000, "num_val": 2000, "num_test": 2000}, seed=args.seed
    )
    data.prepare_data()
    data.setup("test")
    dataset = data.data_test
    items = [dataset[i] for i in range(min(args.lines, len(dataset)))]  # type: ignore[arg-type]
    references = [charset.decode(t.tolist()) for _, t in items]
    log_probs, lengths = [], []
    for image, _ in items:
        lp, n = model.line_log_probs(
            image.numpy()[None], np.array([image.shape[-1]], dtype=np.int64)
        )
        log_probs.append(lp[0])
        lengths.append(int(n[0]))

    with gzip.open(args.lm_text, "rt", encoding="utf-8") as f:
        lm = CharNgramLm.build((line.strip() for line in f), order=args.order)

    def run(name: str, decode) -> None:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        texts = [
            decode(lp[None], np.array([n]))[0][0] for lp, n in zip(log_probs, lengths, strict=True)
        ]
        ms = (time.perf_counter() - start) * 1000 / len(texts)
        print(f"{name:<32}{cer(texts, references):>8.4f}{wer(texts, references):>8.4f}{ms:>10.2f}")

    print(
        f"{len(references)} test lines of {args.data}; "
        f"LM: {args.order}-gram from {args.lm_text.name}"
    )
    print(f"{'decoder':<32}{'CER':>8}{'WER':>8}{'ms/line':>10}")
    run("greedy", lambda lp, n: greedy_ctc_decode(lp, n, charset))
    run("beam 10", lambda lp, n: beam_search_decode(lp, n, charset, beam_size=10))
    for weight in (0.3, 0.6, 1.0):
        run(
            f"beam 10 + LM (weight {weight})",
            lambda lp, n, w=weight: beam_search_decode(
                lp, n, charset, beam_size=10, lm=lm, lm_weight=w
            ),
        )


if __name__ == "__main__":
    main()
