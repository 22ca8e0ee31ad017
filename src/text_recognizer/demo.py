"""``make demo``: read the bundled sample images and show predictions beside the truth."""

from __future__ import annotations

import csv
from pathlib import Path

from text_recognizer.metrics import cer
from text_recognizer.paths import SAMPLES_DIR
from text_recognizer.recognizer import Recognizer


def read_labels(folder: Path) -> list[tuple[Path, str]]:
    """``labels.tsv``: one ``filename<TAB>text`` row per sample image."""
    with (folder / "labels.tsv").open(newline="", encoding="utf-8") as f:
        return [
            (folder / row[0], row[1])
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]


def run_demo(model: str = "default", samples: Path = SAMPLES_DIR) -> tuple[list[list[str]], str]:
    recognizer = Recognizer.from_pretrained(model)
    rows = [["sample", "kind", "truth", "prediction", "confidence", "CER"]]
    summary = []
    for kind in ("char", "line"):
        folder = samples / f"{kind}s"
        if kind not in recognizer.kinds or not (folder / "labels.tsv").is_file():
            continue
        labelled = read_labels(folder)
        results = recognizer.recognize_batch([path for path, _ in labelled], kind=kind)
        truths = [text for _, text in labelled]
        predictions = [r.text for r in results]
        for (path, truth), result in zip(labelled, results, strict=True):
            rows.append(
                [
                    path.name,
                    kind,
                    truth,
                    result.text,
                    f"{result.confidence:.2f}",
                    f"{cer([result.text], [truth]):.3f}",
                ]
            )
        if kind == "char":
            correct = sum(p == t for p, t in zip(predictions, truths, strict=True))
            summary.append(f"characters: {correct}/{len(truths)} correct")
        else:
            summary.append(f"lines: CER {cer(predictions, truths):.3f} over {len(truths)} lines")
    return rows, "; ".join(summary) or "no bundled samples for the loaded models"
