"""The bundled line model on real IAM lines, every decoding option, in one table.

IAM is the real-handwriting benchmark the line model's goal (CER <= 0.15) refers to; this
project's machines cannot download it, so whoever holds it runs this once and has every
figure worth reporting: greedy (the default), width search, beam search with the default
character LM, and all of them together, each with CER, WER, exact lines, how well the
confidence ranks right lines above wrong ones (AUROC) and the CER of the surest 80 %.

With ``--path`` (IAM as its authors distribute it, see ``docs/datasets/iam_lines.md``) the
table is printed for both transcriptions: the lines' text as written (the forms' XML)
and ``lines.txt``'s tokenised text (``said , and``), against which a model that writes
punctuation as written pays ~0.03 CER more (``iam_tokenisation.py``). Without it,
``iamdb.zip`` is downloaded (or read from ``data/iam/``) and its text is as written.

    python benchmarks/iam_report.py --path IAM                # IAM's own files
    python benchmarks/iam_report.py                           # the FSDL mirror's iamdb.zip
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.evaluate import evaluate

OPTIONS: dict[str, dict[str, Any]] = {
    "greedy (default)": {},
    "width search": {"width_search": True},
    "beam 10 + default LM": {"beam_size": 10, "lm": "default"},
    "width search + beam 10 + default LM": {"width_search": True, "beam_size": 10, "lm": "default"},
}
METRICS = ("cer", "wer", "line_accuracy", "confidence_auroc", "cer_most_confident_80pct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="bundled name, .onnx or run folder")
    parser.add_argument("--path", type=Path, help="IAM as its authors distribute it, extracted")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument("--limit", type=int, help="read only this many lines (a quick look)")
    args = parser.parse_args()

    transcriptions = ["xml", "lines.txt"] if args.path else ["xml"]
    print(f"| text | decoding | lines | {' | '.join(METRICS)} | s |")
    print(f"|---|---|---:|{'---:|' * len(METRICS)}---:|")
    for transcription in transcriptions:
        data_args: dict[str, Any] = {}
        if args.path:
            data_args = {"path": args.path, "transcription": transcription}
        for name, options in OPTIONS.items():
            decoder = CtcDecoder.from_options(options.get("beam_size", 1), options.get("lm"))
            start = time.perf_counter()
            report = evaluate(
                args.model,
                "iam_lines",
                args.split,
                data_args,
                limit=args.limit,
                decoder=decoder,
                width_search=options.get("width_search", False),
            )
            seconds = time.perf_counter() - start
            figures = " | ".join(
                "-" if report.metrics.get(key) is None else f"{report.metrics[key]:.4f}"
                for key in METRICS
            )
            print(
                f"| {transcription} | {name} | {report.num_samples} | {figures} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
