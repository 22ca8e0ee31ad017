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
``--path`` folder too; without them the table says what is missing. Likewise without the
forms' XML (``xml.tgz``) the table of text as written says so and the ``lines.txt`` rows
follow. Each dataset's cache is built before its rows are timed, so the ``s`` column is
the reading alone (building IAM's lines takes minutes, once).

    python benchmarks/iam_report.py --path IAM                # IAM's own files
    python benchmarks/iam_report.py                           # the FSDL mirror's iamdb.zip
    python benchmarks/iam_report.py --lm default --lm brown   # also Brown's LM (needs nltk)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from text_recognizer.data import DATASETS
from text_recognizer.decoding.decoder import CtcDecoder
from text_recognizer.errors import DataError, TextRecognizerError
from text_recognizer.evaluate import SPLITS, EvaluationReport, evaluate


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


def prepare(args: argparse.Namespace, data: str, data_args: dict[str, Any]) -> None:
    """Build the split's cache (as ``evaluate`` would) outside the timed rows: the first
    row's time once held the whole build, minutes on IAM, as if greedy were the slowest."""
    DATASETS.build(data, data_args).prepare_splits(SPLITS if args.split == "all" else [args.split])


def figures(report: EvaluationReport, keys: tuple[str, ...]) -> str:
    return " | ".join(
        "-" if report.metrics.get(key) is None else f"{report.metrics[key]:.4f}" for key in keys
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="bundled name, .onnx or run folder")
    parser.add_argument("--path", type=Path, help="IAM as its authors distribute it, extracted")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument(
        "--limit", type=int, help="read only this many lines, and pages (a quick look)"
    )
    parser.add_argument(
        "--lm",
        action="append",
        help="LM for the beam rows (repeatable; default: default). 'brown' (NLTK's Brown "
        "corpus, 1961 American prose) is nearer IAM's LOB text than the shipped corpus",
    )
    args = parser.parse_args()
    if args.path and not args.path.is_dir():
        sys.exit(
            f"error: --path {args.path} is no folder: name the one IAM's files were extracted into"
        )
    try:
        report(args)
    except TextRecognizerError as error:  # iamdb.zip not downloaded, the folder not IAM's
        here = "" if args.path else "\n(Here: python benchmarks/iam_report.py --path FOLDER.)"
        sys.exit(f"error: {error}{here}")


def report(args: argparse.Namespace) -> None:
    """Print the table of lines, then the table of pages."""
    transcriptions = ["xml", "lines.txt"] if args.path else ["xml"]
    print(f"| text | decoding | lines | {' | '.join(METRICS)} | s |")
    print(f"|---|---|---:|{'---:|' * len(METRICS)}---:|")
    rows = options(args.lm or ["default"])
    for transcription in transcriptions:
        data_args: dict[str, Any] = {}
        if args.path:
            data_args = {"path": args.path, "transcription": transcription}
        try:
            prepare(args, "iam_lines", data_args)
        except DataError as error:
            if not args.path:  # iamdb.zip is missing: the pages need it too
                raise
            print(f"no lines read ({transcription}): {error}", flush=True)
            continue  # IAM's own files without the forms' XML: lines.txt's text still reads
        for name, option in rows.items():
            lines, seconds = run(args, "iam_lines", data_args, option)
            print(f"| {transcription} | {name} | {lines.num_samples} | "
                  f"{figures(lines, METRICS)} | {seconds:.0f} |", flush=True)  # fmt: skip

    print(f"\n| text | decoding | pages | {' | '.join(PAGE_METRICS)} | lines found | s |")
    print(f"|---|---|---:|{'---:|' * len(PAGE_METRICS)}---:|---:|")
    page_args = {"path": args.path} if args.path else {}
    try:
        prepare(args, "iam_paragraphs", page_args)
    except DataError as error:  # IAM's own files without the forms' scans
        print(f"no pages read: {error}")
        return
    for name, option in rows.items():
        pages, seconds = run(args, "iam_paragraphs", page_args, option)
        found = f"{pages.metrics['lines_found']:.0f} of {pages.metrics['lines_truth']:.0f}"
        print(f"| xml | {name} | {pages.num_samples} | {figures(pages, PAGE_METRICS)} | "
              f"{found} | {seconds:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
