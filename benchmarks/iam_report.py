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

A second table reads the same test forms as pages (``iam_paragraphs``: each form's
handwritten part, its lines found, then read), with each decoding option: CER and WER of
the pages (lines joined by newlines), how many of their lines were found and the share of
pages whose every line was. ``iamdb.zip`` holds the forms' scans; IAM's own files hold
them where ``formsA-D.tgz``, ``formsE-H.tgz`` and ``formsI-Z.tgz`` were extracted into the
``--path`` folder too; without them the table says what is missing.

    python benchmarks/iam_report.py --path IAM                # IAM's own files
    python benchmarks/iam_report.py                           # the FSDL mirror's iamdb.zip
    python benchmarks/iam_report.py --lm default --lm brown   # also Brown's LM (needs nltk)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.errors import DataError
from text_recognizer.evaluate import EvaluationReport, evaluate


def options(lms: list[str]) -> dict[str, dict[str, Any]]:
    """Decoding option rows: greedy, width search, then beam 10 with each LM, alone and
    with width search."""
    rows: dict[str, dict[str, Any]] = {
        "greedy (default)": {},
        "width search": {"width_search": True},
    }
    for lm in lms:
        rows[f"beam 10 + {lm} LM"] = {"beam_size": 10, "lm": lm}
        rows[f"width search + beam 10 + {lm} LM"] = {
            "width_search": True,
            "beam_size": 10,
            "lm": lm,
        }
    return rows


METRICS = ("cer", "wer", "line_accuracy", "confidence_auroc", "cer_most_confident_80pct")
PAGE_METRICS = ("cer", "wer", "pages_all_lines_found", "cer_most_confident_80pct")


def run(args: argparse.Namespace, data: str, data_args: dict[str, Any], option: dict[str, Any]
        ) -> tuple[EvaluationReport, float]:  # fmt: skip
    """One evaluation with one decoding option, and how long it took."""
    decoder = CtcDecoder.from_options(option.get("beam_size", 1), option.get("lm"))
    start = time.perf_counter()
    report = evaluate(
        args.model,
        data,
        args.split,
        data_args,
        limit=args.limit,
        decoder=decoder,
        width_search=option.get("width_search", False),
    )
    return report, time.perf_counter() - start


def figures(report: EvaluationReport, keys: tuple[str, ...]) -> str:
    return " | ".join(
        "-" if report.metrics.get(key) is None else f"{report.metrics[key]:.4f}" for key in keys
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="bundled name, .onnx or run folder")
    parser.add_argument("--path", type=Path, help="IAM as its authors distribute it, extracted")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument("--limit", type=int, help="read only this many lines (a quick look)")
    parser.add_argument(
        "--lm",
        action="append",
        help="LM for the beam rows (repeatable; default: default). 'brown' (NLTK's Brown "
        "corpus, 1961 American prose) is nearer IAM's LOB text than the shipped corpus",
    )
    args = parser.parse_args()

    transcriptions = ["xml", "lines.txt"] if args.path else ["xml"]
    print(f"| text | decoding | lines | {' | '.join(METRICS)} | s |")
    print(f"|---|---|---:|{'---:|' * len(METRICS)}---:|")
    rows = options(args.lm or ["default"])
    for transcription in transcriptions:
        data_args: dict[str, Any] = {}
        if args.path:
            data_args = {"path": args.path, "transcription": transcription}
        for name, option in rows.items():
            report, seconds = run(args, "iam_lines", data_args, option)
            print(f"| {transcription} | {name} | {report.num_samples} | "
                  f"{figures(report, METRICS)} | {seconds:.0f} |", flush=True)  # fmt: skip

    print(f"\n| text | decoding | pages | {' | '.join(PAGE_METRICS)} | lines found | s |")
    print(f"|---|---|---:|{'---:|' * len(PAGE_METRICS)}---:|---:|")
    page_args = {"path": args.path} if args.path else {}
    for name, option in rows.items():
        try:
            report, seconds = run(args, "iam_paragraphs", page_args, option)
        except DataError as error:  # IAM's own files without the forms' scans
            print(f"no pages read: {error}")
            break
        found = f"{report.metrics['lines_found']:.0f} of {report.metrics['lines_truth']:.0f}"
        print(f"| xml | {name} | {report.num_samples} | {figures(report, PAGE_METRICS)} | "
              f"{found} | {seconds:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
